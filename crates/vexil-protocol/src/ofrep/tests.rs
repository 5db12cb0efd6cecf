//! Tests of `ofrep`.

use serde_json::json;
use vexil_engine::{Format, Snapshot, ValueType};

use super::*;
use crate::json::encode;

// What the server wrote before this crate (vexil-server at 673518c,
// `api/eval.rs` and `output.rs`), kept to compare bytes with.
pub(crate) mod before {
    use serde::Serialize;
    use serde_json::{Map, Value, json};
    use vexil_engine::Evaluation;

    #[derive(Serialize)]
    pub(crate) struct Success<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<&'a Value>,
        reason: &'static str,
        variant: Option<&'a str>,
        metadata: &'a Map<String, Value>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Failed<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<&'a str>,
        error_code: &'static str,
        error_details: &'a str,
    }

    #[derive(Serialize)]
    #[serde(untagged)]
    pub(crate) enum Entry<'a> {
        Success(Success<'a>),
        Failed(Failed<'a>),
    }

    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

    pub(crate) fn entry<'a>(key: Option<&'a str>, e: &'a Evaluation<'a>) -> Entry<'a> {
        match &e.error {
            Some(err) => Entry::Failed(Failed {
                key,
                error_code: err.code.as_str(),
                error_details: &err.details,
            }),
            None => Entry::Success(Success {
                key,
                value: e.value,
                reason: e.reason.as_str(),
                variant: e.variant,
                metadata: e.metadata().unwrap_or(&EMPTY),
            }),
        }
    }

    pub(super) fn bulk(evals: &[Evaluation<'_>], event_streams: Vec<Value>) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Bulk<'a> {
            flags: Vec<Entry<'a>>,
            metadata: &'a Map<String, Value>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            event_streams: Vec<Value>,
        }
        let flags: Vec<Entry<'_>> = evals
            .iter()
            .map(|e| entry(Some(e.key().unwrap_or("")), e))
            .collect();
        serde_json::to_vec(&Bulk {
            flags,
            metadata: &EMPTY,
            event_streams,
        })
        .unwrap_or_default()
    }

    pub(super) fn ofrep_error(key: Option<&str>, code: &str, details: &str) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Failure<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            key: Option<&'a str>,
            error_code: &'a str,
            error_details: &'a str,
        }
        serde_json::to_vec(&Failure {
            key,
            error_code: code,
            error_details: details,
        })
        .unwrap_or_default()
    }

    pub(super) fn event_streams(public_url: Option<&str>, key: &str) -> Vec<Value> {
        let mut url = public_url.map(str::to_owned).unwrap_or_default();
        url.push_str("/ofrep/v1/events?key=");
        for b in key.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    url.push(b as char)
                }
                _ => {
                    let _ = std::fmt::Write::write_fmt(&mut url, format_args!("%{b:02X}"));
                }
            }
        }
        vec![json!({
            "type": "sse",
            "url": url,
            "inactivityDelaySec": 120,
        })]
    }

    pub(super) fn evaluation_json(key: &str, eval: &Evaluation<'_>) -> Value {
        let mut out = Map::new();
        out.insert("key".into(), json!(key));
        if let Some(v) = eval.value {
            out.insert("value".into(), v.clone());
        }
        if let Some(v) = eval.variant {
            out.insert("variant".into(), json!(v));
        }
        out.insert("reason".into(), json!(eval.reason.as_str()));
        if let Some(e) = &eval.error {
            out.insert("errorCode".into(), json!(e.code.as_str()));
            out.insert("errorDetails".into(), json!(e.details));
        }
        out.insert(
            "metadata".into(),
            Value::Object(eval.metadata().cloned().unwrap_or_default()),
        );
        Value::Object(out)
    }
}

/// Flags giving every shape of answer.
pub(crate) fn snapshot() -> Snapshot {
    let doc = json!({
        "metadata": {"owner": "web"},
        "flags": {
            "banner": {
                "variants": {"on": true, "off": false},
                "defaultServe": {"variant": "on"},
                "metadata": {"team": "growth", "n": 1}
            },
            "dark": {"variants": {"a": "x"}, "enabled": false},
            "dark-off": {"variants": {"a": "x", "b": "y"}, "enabled": false, "offVariant": "b"},
            "split": {
                "variants": {"a": {"n": [1.5, "q\"uote\n"]}, "b": {"n": []}},
                "defaultServe": {"rollout": {"weights": {"a": 50, "b": 50}}}
            },
            "rules": {
                "variants": {"on": true, "off": false},
                "defaultServe": {"variant": "off"},
                "rules": [{
                    "clauses": [{"attribute": "country", "op": "in", "values": ["US"]}],
                    "serve": {"variant": "on"}
                }]
            },
            "text.v2:x": {"variants": {"v": "ü\n\"q\""}, "defaultServe": {"variant": "v"}}
        }
    });
    vexil_engine::load(&doc.to_string(), Format::Native)
        .unwrap()
        .snapshot
}

/// Evaluations of every kind: success with and without value and variant,
/// metadata or none, each error code the engine gives here.
pub(crate) fn evaluations(snap: &Snapshot) -> Vec<Evaluation<'_>> {
    let user = Context::new()
        .with_targeting_key("u-1")
        .with("country", "US");
    let anonymous = Context::new();
    let mut out = snap.evaluate_all(&user);
    out.extend(snap.evaluate_all(&anonymous));
    out.push(snap.evaluate("missing", &user, ValueType::Any));
    out.push(snap.evaluate("banner", &user, ValueType::String));
    out
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn entries_are_written_as_before() {
    let snap = snapshot();
    let evals = evaluations(&snap);
    // Every shape is there.
    assert!(evals.iter().any(|e| e.error.is_some()));
    assert!(evals.iter().any(|e| e.error.is_none() && e.value.is_none()));
    assert!(evals.iter().any(|e| e.metadata().is_none()));
    for e in &evals {
        for key in [None, Some("the-key"), e.key()] {
            assert_eq!(
                text(&encode(&Entry::new(key, e))),
                text(&encode(&before::entry(key, e))),
                "{e:?}"
            );
        }
    }
}

#[test]
fn entries_have_the_ofrep_shape() {
    let snap = snapshot();
    let user = Context::new().with_targeting_key("u-1");
    let check = |key: Option<&str>, flag: &str, ty: ValueType, expect: &str| {
        let e = snap.evaluate(flag, &user, ty);
        assert_eq!(text(&encode(&Entry::new(key, &e))), expect);
    };
    check(
        Some("banner"),
        "banner",
        ValueType::Any,
        r#"{"key":"banner","value":true,"reason":"STATIC","variant":"on","metadata":{"owner":"web","team":"growth","n":1}}"#,
    );
    check(
        None,
        "dark",
        ValueType::Any,
        r#"{"reason":"DISABLED","variant":null,"metadata":{"owner":"web"}}"#,
    );
    check(
        Some("nope"),
        "nope",
        ValueType::Any,
        r#"{"key":"nope","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag `nope` not found"}"#,
    );
}

#[test]
fn a_bulk_answer_is_written_as_before_and_decodes() {
    let snap = snapshot();
    let evals = snap.evaluate_all(&Context::new().with_targeting_key("u-1"));
    let url = events_url(None, "vx_client_abc/+");
    let streams = [EventStream::sse(url.as_str())];
    for (streams, before_streams) in [
        (&[][..], Vec::new()),
        (&streams[..], before::event_streams(None, "vx_client_abc/+")),
    ] {
        let bulk = BulkAnswer {
            evaluations: &evals,
            metadata: None,
            event_streams: streams,
        };
        let bytes = encode(&bulk);
        assert_eq!(text(&bytes), text(&before::bulk(&evals, before_streams)));
        let owned: BulkAnswerOwned = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(owned.flags.len(), evals.len());
        for (answer, e) in owned.flags.iter().zip(&evals) {
            assert_eq!(answer.key.as_deref(), e.key());
            assert_eq!(answer.value.as_ref(), e.value);
            assert_eq!(answer.variant.as_deref(), e.variant);
        }
        assert_eq!(owned.metadata, Map::new());
        assert_eq!(owned.event_streams, streams);
    }
    assert_eq!(
        text(&encode(&BulkAnswer {
            evaluations: &[],
            metadata: None,
            event_streams: &streams,
        })),
        r#"{"flags":[],"metadata":{},"eventStreams":[{"type":"sse","url":"/ofrep/v1/events?key=vx_client_abc%2F%2B","inactivityDelaySec":120}]}"#
    );
    let metadata: Map<String, Value> = [("a".to_owned(), json!(1))].into_iter().collect();
    assert_eq!(
        text(&encode(&BulkAnswer {
            evaluations: &[],
            metadata: Some(&metadata),
            event_streams: &[],
        })),
        r#"{"flags":[],"metadata":{"a":1}}"#
    );
}

#[test]
fn answers_decode_to_what_was_evaluated() {
    let snap = snapshot();
    for e in evaluations(&snap) {
        let answer: EvaluationAnswer =
            serde_json::from_slice(&encode(&Entry::new(Some("k"), &e))).unwrap();
        let expect = match &e.error {
            Some(err) => EvaluationAnswer {
                key: Some("k".into()),
                error_code: Some(err.code.as_str().into()),
                error_details: Some(err.details.to_string()),
                ..EvaluationAnswer::default()
            },
            None => EvaluationAnswer {
                key: Some("k".into()),
                value: e.value.cloned(),
                reason: Some(e.reason.as_str().into()),
                variant: e.variant.map(str::to_owned),
                metadata: e.metadata().cloned().unwrap_or_default(),
                ..EvaluationAnswer::default()
            },
        };
        assert_eq!(answer, expect);
        assert_eq!(answer.is_error(), e.error.is_some());
    }
}

#[test]
fn error_bodies_are_written_as_before_and_decode() {
    for (key, code, details) in [
        (None, "GENERAL", "unknown or revoked API key"),
        (
            Some("checkout"),
            "INVALID_CONTEXT",
            "request body must be a JSON object",
        ),
        (Some("é\"\n"), "GENERAL", "a \"quoted\" detail"),
    ] {
        let body = ErrorBody::new(key, code, details);
        let bytes = encode(&body);
        assert_eq!(text(&bytes), text(&before::ofrep_error(key, code, details)));
        let back: ErrorBody<'static> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, body);
    }
    assert_eq!(
        text(&encode(&ErrorBody::new(Some("k"), "GENERAL", "no"))),
        r#"{"key":"k","errorCode":"GENERAL","errorDetails":"no"}"#
    );
    assert_eq!(
        text(&encode(&ErrorBody::new(None, "GENERAL", "no"))),
        r#"{"errorCode":"GENERAL","errorDetails":"no"}"#
    );
}

#[test]
fn the_events_url_is_built_as_before() {
    for base in [
        None,
        Some("https://flags.example.com"),
        Some("http://h:8080/p"),
    ] {
        for key in ["vx_client_abc", "a b/c?d=e&f#g", "é", ""] {
            let url = events_url(base, key);
            let before = before::event_streams(base, key);
            assert_eq!(json!([EventStream::sse(url.as_str())]), json!(before));
            assert_eq!(encode(&[EventStream::sse(url)]), encode(&before));
        }
    }
    assert_eq!(
        events_url(Some("https://flags.example.com/"), "k+1"),
        "https://flags.example.com/ofrep/v1/events?key=k%2B1"
    );
    let url = events_url(None, "a b/é");
    assert_eq!(url, "/ofrep/v1/events?key=a%20b%2F%C3%A9");
    let key = url.split_once("key=").unwrap().1;
    assert_eq!(crate::url::percent_decode(key), "a b/é");
}

#[test]
fn the_cli_report_is_written_as_before() {
    let snap = snapshot();
    for e in evaluations(&snap) {
        let key = e.key().unwrap_or("missing");
        let bytes = encode(&Report::new(key, &e));
        assert_eq!(
            text(&bytes),
            before::evaluation_json(key, &e).to_string(),
            "{e:?}"
        );
        let answer: EvaluationAnswer = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(answer.key.as_deref(), Some(key));
        assert_eq!(answer.reason.as_deref(), Some(e.reason.as_str()));
        assert_eq!(answer.is_error(), e.error.is_some());
    }
    let e = snap.evaluate("missing", &Context::new(), ValueType::Any);
    assert_eq!(
        text(&encode(&Report::new("missing", &e))),
        r#"{"key":"missing","reason":"ERROR","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag `missing` not found","metadata":{}}"#
    );
}

/// Parses `body` as an OFREP request and compares the context (as JSON)
/// or the error message.
fn check_context(body: &str, expect: Result<Value, &str>) {
    let got = parse_context(body.as_bytes()).map(|c| c.to_json());
    assert_eq!(got, expect.map_err(str::to_owned), "{body:?}");
}

#[test]
fn the_request_context_is_read_with_todays_rules() {
    check_context("", Ok(json!({})));
    check_context(" \r\n\t", Ok(json!({})));
    check_context("{}", Ok(json!({})));
    check_context(r#"{"context": null}"#, Ok(json!({})));
    check_context(r#"{"context": {}}"#, Ok(json!({})));
    check_context(
        r#" {"context": {"targetingKey": "u", "plan": {"tier": 2}}, "other": [1]}"#,
        Ok(json!({"targetingKey": "u", "plan": {"tier": 2}})),
    );
    // A targeting key that is not a string is treated as absent.
    check_context(
        r#"{"context": {"targetingKey": 5, "a": 1}}"#,
        Ok(json!({"a": 1})),
    );
    let ctx = parse_context(br#"{"context": {"targetingKey": "u"}}"#).unwrap();
    assert_eq!((ctx.targeting_key(), ctx.timestamp()), (Some("u"), None));
}

#[test]
fn every_request_error_has_todays_message() {
    for body in ["[1]", "null", "\"x\"", "1", "true", "x", " [{}]"] {
        check_context(body, Err("request body must be a JSON object"));
    }
    check_context(
        "{",
        Err("request body is not valid JSON: EOF while parsing an object at line 1 column 1"),
    );
    check_context(
        r#"{"context": }"#,
        Err("request body is not valid JSON: expected value at line 1 column 13"),
    );
    check_context(
        "{} x",
        Err("request body is not valid JSON: trailing characters at line 1 column 4"),
    );
    check_context(
        r#"{"context": {}, "context": {}}"#,
        Err("request body is not valid JSON: duplicate field `context` at line 1 column 25"),
    );
    check_context(
        r#"{"context": {"a": tru}}"#,
        Err("request body is not valid JSON: expected ident at line 1 column 22"),
    );
    for (context, found) in [
        ("[1]", "array"),
        ("5", "number"),
        ("-1.5", "number"),
        ("\"u-1\"", "string"),
        ("true", "boolean"),
    ] {
        check_context(
            &format!(r#"{{"context": {context}}}"#),
            Err(&format!(
                "evaluation context must be a JSON object, found {found}"
            )),
        );
    }
}

#[test]
fn a_request_round_trips() {
    let ctx = Context::new()
        .with_targeting_key("u-1")
        .with("plan", json!({"tier": 2, "name": "pro\n\"x\""}))
        .with("é", 1.5);
    let body = encode(&EvalRequest {
        context: ctx.clone(),
    });
    assert_eq!(parse_context(&body).unwrap().to_json(), ctx.to_json());
    assert_eq!(text(&encode(&EvalRequest::default())), r#"{"context":{}}"#);
}
