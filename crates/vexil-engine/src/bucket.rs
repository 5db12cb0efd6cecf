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
#[inline]
pub fn murmur3_32(parts: &[&[u8]], seed: u32) -> u32 {
    let mut m = Murmur3::new(seed);
    for p in parts {
        m.update(p);
    }
    m.finish()
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline(always)]
fn mix_h(h: u32, k: u32) -> u32 {
    (h ^ mix_k(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Streaming MurmurHash3 x86 32-bit. Being `Copy`, the state after a
/// constant prefix (a flag key, a salt) is computed once at compile time
/// and resumed for every evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Murmur3 {
    h: u32,
    /// Bytes not yet forming a 4-byte block, little-endian.
    tail: u32,
    tail_len: u32,
    /// Total length, modulo 2^32 as the reference mixes it.
    len: u32,
}

impl Murmur3 {
    pub(crate) const fn new(seed: u32) -> Self {
        Murmur3 {
            h: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u32);
        while self.tail_len > 0 {
            let Some((&b, rest)) = data.split_first() else {
                return;
            };
            self.tail |= u32::from(b) << (8 * self.tail_len);
            self.tail_len += 1;
            data = rest;
            if self.tail_len == 4 {
                self.h = mix_h(self.h, self.tail);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            self.h = mix_h(
                self.h,
                u32::from_le_bytes([block[0], block[1], block[2], block[3]]),
            );
        }
        for &b in blocks.remainder() {
            self.tail |= u32::from(b) << (8 * self.tail_len);
            self.tail_len += 1;
        }
    }

    #[inline]
    pub(crate) fn finish(self) -> u32 {
        let mut h = self.h;
        if self.tail_len > 0 {
            h ^= mix_k(self.tail);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        h
    }
}

/// The hash states after a constant prefix, for both encodings: the
/// prefix's bytes (flagd v2), or the start of the CBOR array
/// `[prefix, …]` of two items (flagd v3).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix {
    concat: Murmur3,
    cbor: Murmur3,
}

impl Prefix {
    pub(crate) fn new(prefix: &str) -> Self {
        let mut concat = Murmur3::new(0);
        concat.update(prefix.as_bytes());
        let mut cbor = Murmur3::new(0);
        let mut head = [0u8; 9];
        let n = crate::cbor::text_head(prefix.len(), &mut head);
        cbor.update(&[0x82]);
        cbor.update(&head[..n]);
        cbor.update(prefix.as_bytes());
        Prefix { concat, cbor }
    }

    /// Hashes (prefix, value) under `bucketing`.
    #[inline]
    pub(crate) fn hash(&self, bucketing: crate::model::Bucketing, value: &str) -> u32 {
        match bucketing {
            crate::model::Bucketing::Concat => {
                let mut m = self.concat;
                m.update(value.as_bytes());
                m.finish()
            }
            crate::model::Bucketing::Cbor => {
                let mut m = self.cbor;
                let mut head = [0u8; 9];
                let n = crate::cbor::text_head(value.len(), &mut head);
                m.update(&head[..n]);
                m.update(value.as_bytes());
                m.finish()
            }
        }
    }

    /// Hashes the CBOR array `[prefix, item]` for any JSON item (flagd v3).
    pub(crate) fn hash_cbor_item(&self, item: &serde_json::Value) -> u32 {
        let mut m = self.cbor;
        let mut bytes = Vec::with_capacity(16);
        crate::cbor::encode(item, &mut bytes);
        m.update(&bytes);
        m.finish()
    }
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

/// flagd v3 hashing of any JSON value.
pub(crate) fn hash_cbor(value: &serde_json::Value) -> u32 {
    let mut bytes = Vec::with_capacity(32);
    crate::cbor::encode(value, &mut bytes);
    murmur3_32(&[&bytes], 0)
}

#[cfg(test)]
mod tests;
