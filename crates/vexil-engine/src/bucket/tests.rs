//! Tests of `bucket`.

use super::*;

fn check(input: &str, expect: u32) {
    assert_eq!(
        murmur3_32(&[input.as_bytes()], 0),
        expect,
        "murmur3({input:?})"
    );
    // Any split of the input into parts hashes the same.
    for at in 0..=input.len() {
        let (a, b) = input.as_bytes().split_at(at);
        assert_eq!(murmur3_32(&[a, b], 0), expect, "split at {at}");
        for at2 in at..=input.len() {
            let (b1, b2) = b.split_at(at2 - at);
            assert_eq!(murmur3_32(&[a, b1, b2], 0), expect, "split at {at},{at2}");
        }
    }
}

#[test]
fn murmur3_reference_vectors() {
    check("", 0);
    check("hello", 0x248b_fa47);
    check("The quick brown fox jumps over the lazy dog", 0x2e4f_f723);
    assert_eq!(murmur3_32(&[b""], 1), 0x514e_28b7);
    assert_eq!(murmur3_32(&[b"\xff\xff\xff\xff"], 0), 0x7629_3b50);
    assert_eq!(murmur3_32(&[b"\x21\x43\x65\x87"], 0), 0xf55b_516b);
    assert_eq!(murmur3_32(&[b"\x21\x43\x65"], 0), 0x7e4a_8634);
    assert_eq!(murmur3_32(&[b"\x21\x43"], 0), 0xa0f7_b07a);
    assert_eq!(murmur3_32(&[b"\x21"], 0), 0x7266_1cf4);
}

#[test]
fn bucket_arithmetic_is_scale_free() {
    for hash in [0u32, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 123_456_789] {
        let small = pick(&[50, 50], bucket(hash, 100));
        let large = pick(&[50_000, 50_000], bucket(hash, 100_000));
        assert_eq!(small, large, "hash {hash}");
    }
    assert_eq!(bucket(u32::MAX, 100), 99);
    assert_eq!(pick(&[0, 10], 0), Some(1));
    assert_eq!(pick(&[10], 10), None);
}

#[test]
fn prefix_states_hash_like_whole_inputs() {
    use crate::model::Bucketing;
    for (a, b) in [
        ("flag", "user-1"),
        ("", ""),
        ("k", &"x".repeat(300) as &str),
        ("abcde", "fgh"),
    ] {
        let p = Prefix::new(a);
        assert_eq!(
            p.hash(Bucketing::Cbor, b),
            hash_cbor(&serde_json::json!([a, b]))
        );
        assert_eq!(
            p.hash(Bucketing::Concat, b),
            murmur3_32(&[format!("{a}{b}").as_bytes()], 0)
        );
        assert_eq!(
            p.hash_cbor_item(&serde_json::json!(b)),
            hash_cbor(&serde_json::json!([a, b]))
        );
    }
}
