//! Value comparisons shared by native clauses and JsonLogic: lenient
//! semantic versions, dates, and JSON equality that treats `1` and `1.0` as
//! the same number.

use std::cmp::Ordering;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// String equality, inlined for short strings: keys and attribute values
/// are mostly under 16 bytes, where a call to `memcmp` costs more than the
/// comparison itself.
#[inline(always)]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

/// [`str_eq`] on bytes.
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        return word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8);
    }
    if (4..8).contains(&n) {
        return word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4);
    }
    if n < 4 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

#[inline(always)]
fn word8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[inline(always)]
fn word4(s: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// Parses a semantic version the way flagd accepts them: an optional `v`
/// prefix, and partial versions (`1`, `1.2`) padded with zeros.
pub(crate) fn parse_semver(text: &str) -> Option<semver::Version> {
    let text = text.trim();
    let text = text
        .strip_prefix('v')
        .or_else(|| text.strip_prefix('V'))
        .unwrap_or(text);
    if text.is_empty() {
        return None;
    }
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, suffix) = text.split_at(core_end);
    let parts = core.split('.').count();
    let padded;
    let full = match parts {
        3 => text,
        1 | 2 => {
            padded = format!("{core}{}{suffix}", ".0".repeat(3 - parts));
            &padded
        }
        _ => return None,
    };
    semver::Version::parse(full).ok()
}

/// Semantic version precedence: build metadata does not count.
pub(crate) fn cmp_semver(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// Reads a date: an RFC 3339 string or a number of seconds since the Unix
/// epoch. Returns seconds.
pub(crate) fn parse_date(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => {
            let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
            Some(t.unix_timestamp_nanos() as f64 / 1e9)
        }
        _ => None,
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_eq(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    x.as_f64() == y.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn semver_is_lenient_like_flagd() {
        let v = |s| parse_semver(s).map(|v| v.to_string());
        assert_eq!(v("v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(v("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(v("1").as_deref(), Some("1.0.0"));
        assert_eq!(v("1.2-beta.1").as_deref(), Some("1.2.0-beta.1"));
        assert_eq!(v("1.2.3.4"), None);
        assert_eq!(v("x.y"), None);
        assert_eq!(v(""), None);
        assert_eq!(v("v"), None);
        let a = parse_semver("1.0.0-alpha").unwrap();
        let b = parse_semver("1.0.0").unwrap();
        assert_eq!(cmp_semver(&a, &b), Ordering::Less);
        let c = parse_semver("1.0.0+build.5").unwrap();
        assert_eq!(cmp_semver(&b, &c), Ordering::Equal);
    }

    #[test]
    fn dates_read_rfc3339_and_epoch_seconds() {
        assert_eq!(parse_date(&json!("1970-01-01T00:01:00Z")), Some(60.0));
        assert_eq!(parse_date(&json!("1970-01-01T01:00:00+01:00")), Some(0.0));
        assert_eq!(parse_date(&json!(1.5)), Some(1.5));
        assert_eq!(parse_date(&json!("yesterday")), None);
        assert_eq!(parse_date(&json!(true)), None);
    }

    #[test]
    fn short_string_equality() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for a in words {
            for b in words {
                assert_eq!(str_eq(a, b), a == b, "{a:?} {b:?}");
            }
            let mut changed = a.as_bytes().to_vec();
            for i in 0..changed.len() {
                changed[i] ^= 1;
                assert!(
                    !str_eq(a, std::str::from_utf8(&changed).unwrap_or("\u{0}")),
                    "{a:?} at {i}"
                );
                changed[i] ^= 1;
            }
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1]}), &json!({"a": [1.0]})));
        assert!(!json_eq(&json!(1), &json!("1")));
    }
}
