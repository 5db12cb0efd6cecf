//! Tests of `url`.

use proptest::prelude::*;

use super::*;

/// The server's `event_streams` and the CLI's `urlencode`, as written
/// before this crate (vexil-server at 673518c): the encoder must agree.
fn urlencode_before(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The server's `percent_decode` (`api/eval.rs`) before this crate.
fn percent_decode_before(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_encode(input: &str, expect: &str) {
    assert_eq!(percent_encode(input), expect, "{input:?}");
    assert_eq!(urlencode_before(input), expect, "{input:?}");
    assert_eq!(percent_decode(expect), input, "{expect:?}");
}

#[test]
fn unreserved_characters_are_kept_and_the_rest_escaped() {
    check_encode("", "");
    check_encode("AZaz09-_.~", "AZaz09-_.~");
    check_encode("a b", "a%20b");
    check_encode("a+b", "a%2Bb");
    check_encode(
        ":/?#[]@!$&'()*,;=%",
        "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2C%3B%3D%25",
    );
    check_encode("vx_client_Ab9/+=", "vx_client_Ab9%2F%2B%3D");
    check_encode("é", "%C3%A9");
    check_encode("日本", "%E6%97%A5%E6%9C%AC");
    check_encode("🚩", "%F0%9F%9A%A9");
    check_encode("\0\n\r\t\u{7f}", "%00%0A%0D%09%7F");
}

fn check_decode(input: &str, expect: &str) {
    assert_eq!(percent_decode(input), expect, "{input:?}");
}

#[test]
fn decoding_keeps_what_is_not_an_escape() {
    check_decode("plain", "plain");
    check_decode("%41%42", "AB");
    check_decode("%c3%a9", "é");
    check_decode("%C3%a9", "é");
    // Not form decoding.
    check_decode("a+b", "a+b");
    // Invalid or cut-short escapes stay as written.
    check_decode("%", "%");
    check_decode("%4", "%4");
    check_decode("a%", "a%");
    check_decode("%zz", "%zz");
    check_decode("%4g", "%4g");
    check_decode("100%", "100%");
    check_decode("%%41", "%A");
    // `u8::from_str_radix` reads "+1" as 1: the server's decoder took
    // `%+1` for the byte 0x01.
    check_decode("%+1", "%+1");
    assert_eq!(percent_decode_before("%+1"), "\u{1}");
    check_decode("%-1", "%-1");
    // A multi-byte character after `%` is not cut in two.
    check_decode("%é", "%é");
    check_decode("%1é", "%1é");
}

#[test]
fn bytes_that_are_not_utf8_become_replacement_characters() {
    check_decode("%FF", "\u{FFFD}");
    check_decode("a%C3", "a\u{FFFD}");
    check_decode("%C3%28", "\u{FFFD}(");
}

proptest! {
    #[test]
    fn decoding_undoes_encoding(s in any::<String>()) {
        let encoded = percent_encode(&s);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        prop_assert_eq!(&encoded, &urlencode_before(&s));
        prop_assert_eq!(percent_decode(&encoded), s);
    }

    /// The decoder agrees with the server's, except where that one read
    /// `%+1` as an escape.
    #[test]
    fn decoding_agrees_with_the_servers_decoder(s in "[%0-9a-fA-Fz+é]{0,16}") {
        prop_assume!(!s.contains("%+"));
        prop_assert_eq!(percent_decode(&s), percent_decode_before(&s));
    }

    #[test]
    fn text_without_escapes_decodes_to_itself(s in "[^%]{0,16}") {
        prop_assert_eq!(percent_decode(&s), s);
    }
}
