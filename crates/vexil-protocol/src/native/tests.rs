//! Tests of `native`.

use serde_json::{Value, json};
use vexil_engine::ValueType;

use super::*;
use crate::json::encode;
use crate::ofrep::tests::{evaluations, snapshot};

// What the server wrote before this crate (vexil-server at 673518c,
// `api/eval.rs`), kept to compare bytes with.
mod before {
    use serde::Serialize;
    use vexil_engine::Evaluation;

    use crate::ofrep::tests::before::entry;

    pub(super) fn answer(version: i64, evals: &[(Option<&str>, Evaluation<'_>)]) -> Vec<u8> {
        struct Flags<'a>(&'a [(Option<&'a str>, Evaluation<'a>)]);
        impl Serialize for Flags<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (key, e) in self.0 {
                    let key = key.or(e.key()).unwrap_or("");
                    map.serialize_entry(key, &entry(None, e))?;
                }
                map.end()
            }
        }
        #[derive(Serialize)]
        struct Answer<'a> {
            version: i64,
            flags: Flags<'a>,
        }
        serde_json::to_vec(&Answer {
            version,
            flags: Flags(evals),
        })
        .unwrap_or_default()
    }

    pub(super) fn stale(version: i64, min: i64) -> Vec<u8> {
        let body = serde_json::json!({
            "code": "stale",
            "message": format!("this server has version {} of the environment, not yet {min}; retry", version),
            "version": version,
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// A request as (context, flags, minVersion).
type Parsed<'a> = (Value, Option<Vec<&'a str>>, Option<i64>);

/// Parses `body` and compares it with `expect`, or the error message.
fn check(body: &str, expect: Result<Parsed<'_>, &str>) {
    let got = parse_native_request(body.as_bytes())
        .map(|r| (r.context.to_json(), r.flags, r.min_version));
    let expect = expect
        .map(|(c, f, v)| (c, f.map(|f| f.into_iter().map(str::to_owned).collect()), v))
        .map_err(str::to_owned);
    assert_eq!(got, expect, "{body:?}");
}

#[test]
fn requests_are_read_with_todays_rules() {
    check("", Ok((json!({}), None, None)));
    check(" \n", Ok((json!({}), None, None)));
    check("{}", Ok((json!({}), None, None)));
    check(
        r#"{"context": null, "flags": null, "minVersion": null}"#,
        Ok((json!({}), None, None)),
    );
    check(
        r#"{"context": {"targetingKey": "u", "plan": "pro"}, "flags": ["a", "b"], "minVersion": 7}"#,
        Ok((
            json!({"targetingKey": "u", "plan": "pro"}),
            Some(vec!["a", "b"]),
            Some(7),
        )),
    );
    check(r#"{"flags": []}"#, Ok((json!({}), Some(vec![]), None)));
}

#[test]
fn min_version_is_an_integer_also_with_a_zero_fraction() {
    check(r#"{"minVersion": 161}"#, Ok((json!({}), None, Some(161))));
    check(r#"{"minVersion": 161.0}"#, Ok((json!({}), None, Some(161))));
    check(
        r#"{"minVersion": 1.61e2}"#,
        Ok((json!({}), None, Some(161))),
    );
    check(r#"{"minVersion": -2}"#, Ok((json!({}), None, Some(-2))));
    check(
        r#"{"minVersion": 1.5}"#,
        Err("invalid request body: expected an integer, got 1.5 at line 1 column 19"),
    );
    check(
        r#"{"minVersion": "x"}"#,
        Err(
            "invalid request body: invalid type: string \"x\", expected a JSON number at line 1 column 18",
        ),
    );
    check(
        r#"{"minVersion": 18446744073709551615}"#,
        Err(
            "invalid request body: expected an integer, got 18446744073709551615 at line 1 column 36",
        ),
    );
    check(
        r#"{"minVersion": 1e19}"#,
        Err("invalid request body: expected an integer, got 1e+19 at line 1 column 20"),
    );
}

#[test]
fn every_request_error_has_todays_message() {
    for body in ["[1]", "null", "\"x\"", "7"] {
        check(body, Err("request body must be a JSON object"));
    }
    check(
        "{",
        Err("invalid request body: EOF while parsing an object at line 1 column 1"),
    );
    check(
        r#"{"contxt": {}}"#,
        Err(
            "invalid request body: unknown field `contxt`, expected one of `context`, `flags`, `minVersion`, `explain` at line 1 column 9",
        ),
    );
    check(
        r#"{"flags": "a"}"#,
        Err(
            "invalid request body: invalid type: string \"a\", expected a sequence at line 1 column 13",
        ),
    );
    check(
        r#"{"flags": [1]}"#,
        Err(
            "invalid request body: invalid type: integer `1`, expected a string at line 1 column 12",
        ),
    );
    check(
        "{} {}",
        Err("invalid request body: trailing characters at line 1 column 4"),
    );
    check(
        r#"{"context": [1]}"#,
        Err("evaluation context must be a JSON object, found array"),
    );
    check(
        r#"{"context": "u"}"#,
        Err("evaluation context must be a JSON object, found string"),
    );
}

#[test]
fn a_request_round_trips() {
    let req = NativeRequest {
        context: Context::new().with_targeting_key("u").with("n", 2),
        flags: Some(vec!["a".into(), "é\"".into()]),
        min_version: Some(161),
        explain: true,
    };
    let back = parse_native_request(&encode(&req)).unwrap();
    assert!(back.explain);
    assert_eq!(
        (back.context.to_json(), back.flags, back.min_version),
        (req.context.to_json(), req.flags, req.min_version)
    );
    assert_eq!(
        text(&encode(&NativeRequest::default())),
        r#"{"context":{}}"#
    );
}

#[test]
fn the_answer_is_written_as_before_and_decodes() {
    let snap = snapshot();
    let ctx = Context::new().with_targeting_key("u-1");
    // Evaluating all flags: each under its own key.
    let all: Vec<(Option<&str>, Evaluation<'_>)> =
        evaluations(&snap).into_iter().map(|e| (None, e)).collect();
    // Asked for by name, missing ones included.
    let named: Vec<(Option<&str>, Evaluation<'_>)> =
        ["banner", "missing", "dark", "é-ü", "text.v2:x"]
            .into_iter()
            .map(|k| (Some(k), snap.evaluate(k, &ctx, ValueType::Any)))
            .collect();
    for evals in [&all, &named] {
        let bytes = encode(&NativeAnswer {
            version: 12,
            flags: evals,
            traces: None,
        });
        assert_eq!(text(&bytes), text(&before::answer(12, evals)));
    }
    let bytes = encode(&NativeAnswer {
        version: 12,
        flags: &named,
        traces: None,
    });
    assert_eq!(
        text(&bytes),
        concat!(
            r#"{"version":12,"flags":{"#,
            r#""banner":{"value":true,"reason":"STATIC","variant":"on","metadata":{"owner":"web","team":"growth","n":1}},"#,
            r#""missing":{"errorCode":"FLAG_NOT_FOUND","errorDetails":"flag `missing` not found"},"#,
            r#""dark":{"reason":"DISABLED","variant":null,"metadata":{"owner":"web"}},"#,
            r#""é-ü":{"errorCode":"FLAG_NOT_FOUND","errorDetails":"flag `é-ü` not found"},"#,
            r#""text.v2:x":{"value":"ü\n\"q\"","reason":"STATIC","variant":"v","metadata":{"owner":"web"}}"#,
            "}}"
        )
    );
    let owned: NativeAnswerOwned = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(owned.version, 12);
    assert_eq!(
        owned.flags.keys().collect::<Vec<_>>(),
        ["banner", "dark", "missing", "text.v2:x", "é-ü"]
    );
    assert_eq!(owned.flags["banner"].value, Some(json!(true)));
    assert_eq!(
        owned.flags["missing"].error_code.as_deref(),
        Some("FLAG_NOT_FOUND")
    );
    assert_eq!(owned.flags["dark"].variant, None);
}

#[test]
fn the_stale_body_is_written_as_before_and_decodes() {
    let stale = Stale::new(4, 161);
    let bytes = encode(&stale);
    assert_eq!(
        text(&bytes),
        r#"{"code":"stale","message":"this server has version 4 of the environment, not yet 161; retry","version":4}"#
    );
    assert_eq!(bytes, before::stale(4, 161));
    assert_eq!(serde_json::from_slice::<Stale>(&bytes).unwrap(), stale);
}

#[test]
fn explain_may_be_null_or_absent() {
    for body in [r#"{"explain": null}"#, "{}", r#"{"explain": false}"#] {
        assert!(
            !parse_native_request(body.as_bytes()).unwrap().explain,
            "{body}"
        );
    }
    assert!(
        parse_native_request(br#"{"explain": true}"#)
            .unwrap()
            .explain
    );
    assert!(parse_native_request(br#"{"explain": 1}"#).is_err());
}
