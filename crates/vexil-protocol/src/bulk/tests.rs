//! Tests of `bulk`: the prepared answer is byte for byte the serialised one.

use vexil_engine::{Context, Format, Snapshot};

use super::Prepared;
use crate::json::encode;
use crate::ofrep::tests::snapshot;
use crate::ofrep::{BulkAnswer, EventStream, events_url};

fn contexts() -> Vec<Context> {
    vec![
        Context::new(),
        Context::new().with_targeting_key("u-1"),
        Context::new()
            .with_targeting_key("u-2")
            .with("country", "US"),
        Context::new()
            .with_targeting_key("another user")
            .with("country", "CA"),
    ]
}

fn assert_same(snap: &Snapshot) {
    let prepared = Prepared::new(snap);
    let url = events_url(None, "vx_client_abc/+");
    let streams = [EventStream::sse(url.as_str())];
    for ctx in contexts() {
        let evals = snap.evaluate_all(&ctx);
        for event_streams in [&[][..], &streams[..]] {
            let answer = BulkAnswer {
                evaluations: &evals,
                metadata: None,
                event_streams,
            };
            let mut out = Vec::new();
            prepared.write_bulk(&mut out, &answer);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(encode(&answer)).unwrap()
            );
        }
        // The native answer for every flag, and for fewer.
        for evals in [&evals[..], &evals[evals.len().min(1)..]] {
            let flags: Vec<_> = evals.iter().map(|e| (None, e.clone())).collect();
            let native = crate::native::NativeAnswer {
                version: 42,
                flags: &flags,
                traces: None,
            };
            let mut out = Vec::new();
            prepared.write_native(&mut out, 42, evals);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(encode(&native)).unwrap()
            );
        }
    }
}

#[test]
fn prepared_answers_are_the_serialised_ones() {
    assert_same(&snapshot());
    assert_same(&Snapshot::empty());
}

#[test]
fn flagd_flags_and_their_errors_are_answered_alike() {
    let doc = r#"{"flags": {
        "on": {"state": "ENABLED", "variants": {"a": 1, "b": 2.5}, "defaultVariant": "a"},
        "off": {"state": "DISABLED", "variants": {"a": "x"}, "defaultVariant": "a"},
        "split": {"state": "ENABLED", "variants": {"red": "r", "blue": "b"}, "defaultVariant": "red",
                  "targeting": {"fractional": [["red", 50], ["blue", 50]]}},
        "broken": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a",
                   "targeting": {"no-such-operator": [1]}},
        "nodefault": {"state": "ENABLED", "variants": {"a": true, "b": false}, "defaultVariant": null,
                      "targeting": {"if": [{"==": [{"var": "country"}, "US"]}, "b", null]}}
    }}"#;
    let snap = vexil_engine::load(doc, Format::Flagd).unwrap().snapshot;
    let evals = snap.evaluate_all(&Context::new());
    assert!(evals.iter().any(|e| e.error.is_some()), "{evals:?}");
    assert!(evals.iter().any(|e| e.value.is_none()), "{evals:?}");
    assert_same(&snap);
}

#[test]
fn answers_not_of_this_snapshot_are_serialised() {
    let snap = snapshot();
    let prepared = Prepared::new(&snap);
    let evals = snap.evaluate_all(&Context::new());
    // Fewer evaluations than flags, and an answer with metadata.
    let metadata: serde_json::Map<String, serde_json::Value> =
        [("a".to_owned(), serde_json::json!(1))]
            .into_iter()
            .collect();
    for answer in [
        BulkAnswer {
            evaluations: &evals[1..],
            metadata: None,
            event_streams: &[],
        },
        BulkAnswer {
            evaluations: &evals,
            metadata: Some(&metadata),
            event_streams: &[],
        },
    ] {
        let mut out = Vec::new();
        prepared.write_bulk(&mut out, &answer);
        assert_eq!(out, encode(&answer));
    }
}

#[test]
fn every_successful_answer_is_written_from_the_fragments() {
    let snap = snapshot();
    let prepared = Prepared::new(&snap);
    for ctx in contexts() {
        for (eval, flag) in snap.evaluate_all(&ctx).iter().zip(&prepared.flags) {
            let mut out = Vec::new();
            assert_eq!(
                super::write_entry(&mut out, eval, flag, super::Keyed::Field),
                eval.error.is_none(),
                "{eval:?}"
            );
        }
    }
}
