//! Tests of `context`: names as lookups compare them, and parsing.

use super::*;
use fast::MAX_NESTING;
use serde_json::Value;

/// The head as its definition says: length, then the first 16 bytes
/// zero-padded.
fn naive_head(s: &str) -> Head {
    let mut bytes = [0u8; HEAD];
    let n = s.len().min(HEAD);
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    Head {
        len: s.len(),
        bytes,
    }
}

#[test]
fn heads_hold_the_first_bytes_zero_padded() {
    let text = "abcdefghijklmnopqrstuvwxyzé0123456789";
    for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        let s = &text[..end];
        assert_eq!(Head::of(s), naive_head(s), "{s:?}");
        let name = Name::new(s);
        assert_eq!(name.as_str(), s);
        assert!(name.is_str(s));
        assert!(name.same(&Name::new(s)));
    }
}

#[test]
fn names_differ_past_the_head() {
    let a = "a-very-long-attribute-name-1";
    let b = "a-very-long-attribute-name-2";
    assert_eq!(Head::of(a), Head::of(b));
    assert!(!Name::new(a).same(&Name::new(b)));
    assert!(!Name::new(a).is_str(b));
    assert!(!Name::new("ab").is_str("ab\0"));
    // A short name is not a longer one padded with zeros.
    assert!(!Name::new("ab").same(&Name::new("ab\0")));
}

/// The serde path alone, as the fast path must match it.
fn slow(text: &[u8]) -> Result<Value, ContextError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let ctx = <Context as serde::Deserialize>::deserialize(&mut de).map_err(context_error)?;
    de.end().map_err(|e| ContextError::Syntax(e.to_string()))?;
    Ok(described(&ctx))
}

/// A context as JSON, with its targeting key (which the JSON does not
/// tell apart from a lost one).
fn described(ctx: &Context) -> Value {
    serde_json::json!([ctx.to_json(), ctx.targeting_key()])
}

/// Checks that the fast path, when it answers, answers as serde does, and
/// that parsing (fast or not) gives serde's result or error.
/// `fast` says whether the fast path must answer.
fn check(text: &[u8], fast: bool) {
    let got = fast::context(text).map(|c| described(&c));
    assert_eq!(
        got.is_some(),
        fast,
        "fast path on {:?}",
        String::from_utf8_lossy(text)
    );
    let want = slow(text);
    if let Some(got) = got {
        assert_eq!(Ok(got), want, "{:?}", String::from_utf8_lossy(text));
    }
    assert_eq!(Context::from_json_slice(text).map(|c| described(&c)), want);
}

#[test]
fn the_fast_path_reads_what_serde_reads() {
    let fast = [
        r#"{"targetingKey":"user-1234567","country":"CA","plan":"pro","email":"someone@example.com","appVersion":"4.2.0"}"#,
        "{}",
        " \n{ \t} \r\n",
        r#" { "a" : 1 , "b" :true,"c":false, "d" : null } "#,
        r#"{"n": [0, -0, 1.5, -1.5e3, 1E+2, 2e-2, 0.0]}"#,
        r#"{"a": 0, "b": -0, "c": -0.0, "d": 1.0, "e": 1e2, "f": 12345678901234567890}"#,
        r#"{"big": 18446744073709551615, "bigger": 18446744073709551616, "huge": 1e300}"#,
        r#"{"min": -9223372036854775808, "below": -9223372036854775809}"#,
        r#"{"long": 123456789012345678901234567890123456789}"#,
        r#"{"a": {"b": [1, {"c": null}], "d": {}}, "e": [], "f": "x"}"#,
        r#"{"é": "ünïcödé ✓ 😀", "a-very-long-attribute-name": "a-very-long-attribute-value"}"#,
        r#"{"": "", "x": "dup", "x": "last wins"}"#,
        r#"{"targetingKey": 5, "a": 1}"#,
        r#"{"targetingKey": "a", "targetingKey": 5}"#,
        r#"{"targetingKey": 5, "targetingKey": "b"}"#,
        r#"{"targetingKey": "a", "b": 1, "targetingKey": "c"}"#,
        r#"{"targetingKey": null}"#,
        r#"{"targetingKey": ""}"#,
    ];
    for text in fast {
        check(text.as_bytes(), true);
    }
    // Left to serde: valid but rarer forms, and every error.
    let slow = [
        "null",
        " null ",
        r#"{"a\"b": 1}"#,
        r#"{"a": "line\nbreak"}"#,
        r#"{"a": "\u00e9"}"#,
        r#"{"a": "\ud83d\ude00"}"#,
        "{\"a\": \"raw\u{1}control\"}",
        "{\"a\u{1f}\": 1}",
        "",
        "   ",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{} x",
        "{}}",
        "{\"a\": tru}",
        "{\"a\": truex}",
        "{\"a\": nul}",
        "{\"a\": 01}",
        "{\"a\": 1.}",
        "{\"a\": .5}",
        "{\"a\": -}",
        "{\"a\": +1}",
        "{\"a\": 1e}",
        "{\"a\": 1e+}",
        "{\"a\": 1e400}",
        "{\"a\": -1e400}",
        "{\"a\": NaN}",
        "{\"a\": [1,]}",
        "{\"a\": {\"b\" 1}}",
        "{\"a\": [1}",
        "{\"a\": 'x'}",
        "{a: 1}",
        "[1]",
        "\"x\"",
        "5",
        "true",
        "x",
    ];
    for text in slow {
        check(text.as_bytes(), false);
    }
    // Not UTF-8: refused either way.
    check(b"{\"a\": \"\xff\"}", false);
    check(b"{\"\xc3\": 1}", false);
}

#[test]
fn the_fast_path_gives_up_where_serde_stops_nesting() {
    // serde_json refuses values nested past its recursion limit; the fast
    // path hands nested values to it one by one and must count the levels
    // above them.
    let mut outcomes = std::collections::BTreeSet::new();
    for levels in MAX_NESTING - 4..=MAX_NESTING + 1 {
        let text = format!(r#"{{"a": {}1{}}}"#, "[".repeat(levels), "]".repeat(levels));
        let fast = fast::context(text.as_bytes()).is_some();
        check(text.as_bytes(), fast);
        assert_eq!(fast, slow(text.as_bytes()).is_ok(), "{levels} levels");
        outcomes.insert(("context", fast));
        let text = format!(
            r#"{{"context": {{"a": {}1{}}}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        );
        let fast = fast::member(text.as_bytes(), "context").is_some();
        assert_eq!(
            fast,
            serde_member(text.as_bytes()).is_ok(),
            "{levels} levels"
        );
        outcomes.insert(("member", fast));
    }
    // Both sides of the limit were tried.
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
}

/// A request body read by serde, as `vexil-protocol` reads it.
fn serde_member(body: &[u8]) -> Result<Value, String> {
    #[derive(serde::Deserialize)]
    struct Request {
        #[serde(default)]
        context: Context,
    }
    serde_json::from_slice::<Request>(body)
        .map(|r| described(&r.context))
        .map_err(|e| e.to_string())
}

#[test]
fn the_fast_path_reads_request_bodies_as_serde_does() {
    let fast = [
        "{}",
        r#" {"context": null} "#,
        r#"{"context": {}}"#,
        r#"{ "context" : {"targetingKey": "u", "plan": {"tier": 2}} }"#,
    ];
    for body in fast {
        let got = fast::member(body.as_bytes(), "context").map(|c| described(&c));
        assert_eq!(
            got.ok_or(()),
            serde_member(body.as_bytes()).map_err(|_| ()),
            "{body}"
        );
    }
    let slow = [
        r#"{"context": {}, "other": 1}"#,
        r#"{"other": 1, "context": {}}"#,
        r#"{"context": {}, "context": {}}"#,
        r#"{"context": 5}"#,
        r#"{"context": "x"}"#,
        r#"{"context": []}"#,
        r#"{"cont\u0065xt": {}}"#,
        r#"{"context": {"a": "\n"}}"#,
        r#"{"context": {}} x"#,
        r#"{"context": {}"#,
        r#"{"context": }"#,
        "[]",
        "",
    ];
    for body in slow {
        assert!(fast::member(body.as_bytes(), "context").is_none(), "{body}");
    }
}
