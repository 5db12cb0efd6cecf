//! Consistent hashing for percentage rollouts.
//!
//! One hash for every rollout, native or flagd: MurmurHash3 x86 32-bit with
//! seed 0, read as unsigned. A bucket in `0..total` is
//! `(hash * total) >> 32`, walked against cumulative integer weights. The
//! arithmetic is scale-free: weights 50/50 out of 100 and 50 000/50 000 out
//! of 100 000 put every user in the same variant, and growing the first
//! weight only ever moves users into the first variant.

/// MurmurHash3, x86 32-bit variant, over the concatenation of `parts`,
/// without allocating.
pub fn murmur3_32(parts: &[&[u8]], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    #[inline(always)]
    fn mix_k(k: u32) -> u32 {
        k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    let mut h = seed;
    let mut len: usize = 0;
    // Bytes left over from the previous part, waiting to fill a 4-byte block.
    let mut carry = [0u8; 4];
    let mut carried = 0usize;

    for part in parts {
        len += part.len();
        let mut bytes: &[u8] = part;
        if carried > 0 {
            let take = (4 - carried).min(bytes.len());
            carry[carried..carried + take].copy_from_slice(&bytes[..take]);
            carried += take;
            bytes = &bytes[take..];
            if carried < 4 {
                continue;
            }
            h ^= mix_k(u32::from_le_bytes(carry));
            h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        }
        let mut blocks = bytes.chunks_exact(4);
        for block in &mut blocks {
            let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            h ^= mix_k(k);
            h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        }
        let rest = blocks.remainder();
        carry[..rest.len()].copy_from_slice(rest);
        carried = rest.len();
    }

    if carried > 0 {
        let mut k: u32 = 0;
        for (i, b) in carry[..carried].iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= mix_k(k);
    }

    // The length is mixed in modulo 2^32, as the reference does.
    h ^= len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The bucket of a hash among `total` buckets: `(hash * total) >> 32`.
#[inline]
pub fn bucket(hash: u32, total: u64) -> u64 {
    (u64::from(hash) * total) >> 32
}

/// Picks the index of the weight whose cumulative range holds `bucket`.
/// Returns `None` only when `bucket` lies beyond the sum of the weights.
#[inline]
pub fn pick(weights: &[u64], bucket: u64) -> Option<usize> {
    let mut upper = 0u64;
    for (i, w) in weights.iter().enumerate() {
        upper += w;
        if bucket < upper {
            return Some(i);
        }
    }
    None
}

/// flagd v2 hashing of a bucketing string given in two parts
/// (e.g. flag key and targeting key), without allocating.
#[inline]
pub(crate) fn hash_concat(a: &str, b: &str) -> u32 {
    murmur3_32(&[a.as_bytes(), b.as_bytes()], 0)
}

/// flagd v3 hashing of the array `[a, b]` of two strings, without allocating.
#[inline]
pub(crate) fn hash_cbor_pair(a: &str, b: &str) -> u32 {
    let (mut ha, mut hb) = ([0u8; 9], [0u8; 9]);
    let na = crate::cbor::text_head(a.len(), &mut ha);
    let nb = crate::cbor::text_head(b.len(), &mut hb);
    murmur3_32(
        &[&[0x82], &ha[..na], a.as_bytes(), &hb[..nb], b.as_bytes()],
        0,
    )
}

/// flagd v3 hashing of any JSON value.
pub(crate) fn hash_cbor(value: &serde_json::Value) -> u32 {
    let mut bytes = Vec::with_capacity(32);
    crate::cbor::encode(value, &mut bytes);
    murmur3_32(&[&bytes], 0)
}

#[cfg(test)]
mod tests;
