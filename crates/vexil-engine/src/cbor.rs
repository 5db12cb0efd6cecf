//! Deterministic CBOR (RFC 8949 §4.2.1, "core deterministic encoding") of
//! JSON values, as hashed by flagd's newer `fractional` bucketing.
//!
//! Integral numbers become integers (so `1`, `1.0` and `-0.0` hash alike),
//! other floats take the shortest of half, single or double precision that
//! keeps their value, and map keys are sorted by their encoded bytes.

use serde_json::Value;

const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;

/// Writes the head of a data item: major type and argument, shortest form.
/// Returns the number of bytes written into `out` (at most 9).
pub(crate) fn head(major: u8, arg: u64, out: &mut [u8; 9]) -> usize {
    let m = major << 5;
    if arg < 24 {
        out[0] = m | arg as u8;
        1
    } else if arg <= u64::from(u8::MAX) {
        out[0] = m | 24;
        out[1] = arg as u8;
        2
    } else if arg <= u64::from(u16::MAX) {
        out[0] = m | 25;
        out[1..3].copy_from_slice(&(arg as u16).to_be_bytes());
        3
    } else if arg <= u64::from(u32::MAX) {
        out[0] = m | 26;
        out[1..5].copy_from_slice(&(arg as u32).to_be_bytes());
        5
    } else {
        out[0] = m | 27;
        out[1..9].copy_from_slice(&arg.to_be_bytes());
        9
    }
}

/// The head of a text string of `len` bytes.
pub(crate) fn text_head(len: usize, out: &mut [u8; 9]) -> usize {
    head(TEXT, len as u64, out)
}

/// The head of an array of `len` items.
pub(crate) fn array_head(len: usize, out: &mut [u8; 9]) -> usize {
    head(ARRAY, len as u64, out)
}

/// Appends the deterministic encoding of `value`.
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) {
    let mut h = [0u8; 9];
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                let k = head(UNSIGNED, u, &mut h);
                out.extend_from_slice(&h[..k]);
            } else if let Some(i) = n.as_i64() {
                // Negative: argument is -1 - i.
                let k = head(NEGATIVE, !(i as u64), &mut h);
                out.extend_from_slice(&h[..k]);
            } else if let Some(f) = n.as_f64() {
                encode_float(f, out);
            }
        }
        Value::String(s) => {
            let k = text_head(s.len(), &mut h);
            out.extend_from_slice(&h[..k]);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            let k = array_head(items.len(), &mut h);
            out.extend_from_slice(&h[..k]);
            for item in items {
                encode(item, out);
            }
        }
        Value::Object(map) => {
            let mut entries: Vec<(Vec<u8>, &Value)> = map
                .iter()
                .map(|(k, v)| {
                    let mut key = Vec::with_capacity(k.len() + 2);
                    encode(&Value::String(k.clone()), &mut key);
                    (key, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let k = head(MAP, entries.len() as u64, &mut h);
            out.extend_from_slice(&h[..k]);
            for (key, v) in entries {
                out.extend_from_slice(&key);
                encode(v, out);
            }
        }
    }
}

fn encode_float(f: f64, out: &mut Vec<u8>) {
    let mut h = [0u8; 9];
    if f == f.trunc() && f.is_finite() {
        // Integral floats are written as integers, -0.0 as 0.
        if f >= 0.0 && f <= u64::MAX as f64 {
            let k = head(UNSIGNED, f as u64, &mut h);
            out.extend_from_slice(&h[..k]);
            return;
        }
        if f < 0.0 && f >= i64::MIN as f64 {
            let k = head(NEGATIVE, !(f as i64 as u64), &mut h);
            out.extend_from_slice(&h[..k]);
            return;
        }
    }
    if f.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
        return;
    }
    let single = f as f32;
    if f64::from(single) == f {
        if let Some(half) = f32_to_f16_exact(single) {
            out.push(0xf9);
            out.extend_from_slice(&half.to_be_bytes());
        } else {
            out.push(0xfa);
            out.extend_from_slice(&single.to_bits().to_be_bytes());
        }
    } else {
        out.push(0xfb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    }
}

/// The IEEE half-precision bits of `f` when the conversion loses nothing.
fn f32_to_f16_exact(f: f32) -> Option<u16> {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x007f_ffff;
    if exp == 0xff {
        // Infinity (NaN is handled by the caller).
        return (mant == 0).then_some(sign | 0x7c00);
    }
    if exp == 0 && mant == 0 {
        return Some(sign);
    }
    let unbiased = exp - 127;
    if (-14..=15).contains(&unbiased) {
        // Normal half: 10 mantissa bits, the low 13 must be zero.
        if mant & 0x1fff != 0 {
            return None;
        }
        let e = (unbiased + 15) as u16;
        return Some(sign | (e << 10) | (mant >> 13) as u16);
    }
    if (-24..-14).contains(&unbiased) {
        // Subnormal half: value = m * 2^-24 with m < 1024.
        let full = mant | 0x0080_0000; // implicit leading one, 24 bits
        let shift = (-14 - unbiased) + 13;
        if full & ((1u32 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (full >> shift) as u16);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(v: Value) -> String {
        let mut out = Vec::new();
        encode(&v, &mut out);
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc8949_appendix_a_examples() {
        assert_eq!(hex(json!(0)), "00");
        assert_eq!(hex(json!(23)), "17");
        assert_eq!(hex(json!(24)), "1818");
        assert_eq!(hex(json!(1000)), "1903e8");
        assert_eq!(hex(json!(1000000)), "1a000f4240");
        assert_eq!(hex(json!(1000000000000u64)), "1b000000e8d4a51000");
        assert_eq!(hex(json!(-1)), "20");
        assert_eq!(hex(json!(-1000)), "3903e7");
        assert_eq!(hex(json!(1.5)), "f93e00");
        assert_eq!(hex(json!(65504.5)), "fa477fe080");
        assert_eq!(hex(json!(100000.5)), "fa47c35040");
        assert_eq!(hex(json!(1.1)), "fb3ff199999999999a");
        assert_eq!(hex(json!(5.960464477539063e-8)), "f90001");
        assert_eq!(hex(json!(0.00006103515625)), "f90400");
        assert_eq!(hex(json!(-4.1)), "fbc010666666666666");
        assert_eq!(hex(json!(false)), "f4");
        assert_eq!(hex(json!(true)), "f5");
        assert_eq!(hex(json!(null)), "f6");
        assert_eq!(hex(json!("")), "60");
        assert_eq!(hex(json!("IETF")), "6449455446");
        assert_eq!(hex(json!("\u{00fc}")), "62c3bc");
        assert_eq!(hex(json!([1, [2, 3], [4, 5]])), "8301820203820405");
        assert_eq!(
            hex(json!({"b": [2, 3], "a": 1})),
            "a261610161628202 03".replace(' ', "")
        );
    }

    #[test]
    fn integral_floats_are_integers() {
        assert_eq!(hex(json!(1.0)), hex(json!(1)));
        assert_eq!(hex(json!(-0.0)), hex(json!(0)));
        assert_eq!(hex(json!(-2.0)), hex(json!(-2)));
    }
}
