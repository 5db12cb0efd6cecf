//! Compiling a changed document by reusing the previous snapshot gives
//! exactly what compiling it from scratch gives: the same problems when it
//! does not compile, the same evaluations for every flag when it does.
//! Documents change the way the server changes them: the unchanged
//! definitions are shared with the previous document, the changed ones are
//! new.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use proptest::prelude::*;
use serde_json::{Value, json};
use vexil_engine::model::{Document, FlagDef, SegmentDef};
use vexil_engine::{Context, Keyed, Snapshot, compile, compile_reusing};

const FLAGS: usize = 8;
const SEGMENTS: usize = 3;

/// A flag definition drawn from a small space that still covers what a
/// compiled flag can hold by position: prerequisites (some naming missing
/// flags or variants) and segment clauses (some naming missing segments).
fn flag_def() -> impl Strategy<Value = Value> {
    (
        1usize..=3,
        any::<bool>(),
        prop::option::of((0..FLAGS + 1, 0usize..4)),
        prop::option::of(prop_oneof![
            (0..SEGMENTS + 1).prop_map(|s| json!({"op": "inSegment", "values": [format!("s{s}")]})),
            prop::sample::select(vec!["US", "CA", "GB"])
                .prop_map(|c| json!({"attribute": "country", "op": "in", "values": [c]})),
            Just(json!({"attribute": "email", "op": "matches", "values": ["^a.*@example\\.com$"]})),
        ]),
        any::<bool>(),
    )
        .prop_map(|(variants, enabled, prerequisite, clause, rollout)| {
            let names = ["a", "b", "c"];
            let variants: serde_json::Map<String, Value> = names[..variants]
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), json!(i)))
                .collect();
            let mut def = json!({
                "variants": variants,
                "enabled": enabled,
                "offVariant": "a",
                "defaultServe": if rollout {
                    json!({"rollout": {"weights": {"a": 50, "b": 50}}})
                } else {
                    json!({"variant": "a"})
                },
            });
            if let Some((f, v)) = prerequisite {
                let variant = ["a", "b", "c", "z"][v];
                def["prerequisites"] = json!([{"flag": format!("f{f}"), "variant": variant}]);
            }
            if let Some(clause) = clause {
                def["rules"] = json!([{"clauses": [clause], "serve": {"variant": "a"}}]);
            }
            def
        })
}

fn segment_def() -> impl Strategy<Value = Value> {
    (prop::option::of(0..SEGMENTS + 1), any::<bool>()).prop_map(|(nested, by_country)| {
        let mut clauses = Vec::new();
        if let Some(s) = nested {
            clauses.push(json!({"op": "inSegment", "values": [format!("s{s}")]}));
        }
        if by_country {
            clauses.push(json!({"attribute": "country", "op": "in", "values": ["CA"]}));
        }
        json!({"included": ["user-1"], "rules": [{"clauses": clauses}]})
    })
}

/// One change: set or delete a flag or a segment.
#[derive(Debug, Clone)]
enum Change {
    Flag(usize, Option<Value>),
    Segment(usize, Option<Value>),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0..FLAGS, prop::option::weighted(0.8, flag_def())).prop_map(|(k, d)| Change::Flag(k, d)),
        1 => (0..SEGMENTS, prop::option::weighted(0.7, segment_def())).prop_map(|(k, d)| Change::Segment(k, d)),
    ]
}

/// `prior` with `changes`, sharing every definition they do not touch, in
/// key order (as the server keeps documents).
fn apply(prior: &Document, changes: &[Change]) -> Document {
    fn set<T: serde::de::DeserializeOwned>(
        map: &Keyed<T>,
        key: String,
        def: &Option<Value>,
    ) -> Keyed<T> {
        let mut pairs: Vec<(String, Arc<T>)> = map
            .shared()
            .iter()
            .filter(|(k, _)| *k != key)
            .cloned()
            .collect();
        if let Some(def) = def {
            pairs.push((key, Arc::new(serde_json::from_value(def.clone()).unwrap())));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Keyed::from_shared(pairs)
    }
    let mut doc = prior.clone();
    for c in changes {
        match c {
            Change::Flag(k, def) => doc.flags = set::<FlagDef>(&doc.flags, format!("f{k}"), def),
            Change::Segment(k, def) => {
                doc.segments = set::<SegmentDef>(&doc.segments, format!("s{k}"), def)
            }
        }
    }
    doc
}

/// What every flag gives every context, as text (values, variants,
/// reasons, errors and what matched).
fn answers(s: &Snapshot) -> Vec<String> {
    let contexts = [
        json!({"targetingKey": "user-1", "country": "CA"}),
        json!({"targetingKey": "user-2", "country": "US", "email": "ann@example.com"}),
        json!({"targetingKey": "user-3"}),
    ];
    let mut out = Vec::new();
    for c in contexts {
        let ctx = Context::from_json(c).unwrap();
        for e in s.evaluate_all(&ctx) {
            out.push(format!(
                "{:?} {:?} {:?} {:?} {:?} {:?}",
                e.key(),
                e.value,
                e.variant,
                e.reason,
                e.error,
                e.matched
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reusing_compiles_what_compiling_from_scratch_does(
        steps in prop::collection::vec(prop::collection::vec(change(), 1..4), 1..12)
    ) {
        let never = AtomicBool::new(false);
        let mut prior = Document::default();
        let mut prior_snapshot = compile(&prior).unwrap().snapshot;
        for changes in &steps {
            let doc = apply(&prior, changes);
            let scratch = compile(&doc);
            let reused = compile_reusing(&doc, &prior, &prior_snapshot, &never);
            match (scratch, reused) {
                (Ok(scratch), Ok(reused)) => {
                    prop_assert_eq!(answers(&scratch.snapshot), answers(&reused.snapshot));
                    prior = doc;
                    prior_snapshot = reused.snapshot;
                }
                (Err(a), Err(b)) => {
                    let (mut a, mut b) = (a.0, b.0);
                    a.sort_by_key(|x| x.to_string());
                    b.sort_by_key(|x| x.to_string());
                    prop_assert_eq!(a, b);
                }
                (a, b) => prop_assert!(
                    false,
                    "from scratch: {:?}; reusing: {:?}",
                    a.map(|_| ()),
                    b.map(|_| ())
                ),
            }
        }
    }
}

/// A changed flag that gains a prerequisite can close a cycle with flags
/// that did not change: the whole graph is checked again.
#[test]
fn a_new_prerequisite_closing_a_cycle_is_refused() {
    let def = |prerequisite: Option<&str>| {
        let mut d = json!({"variants": {"a": 0, "b": 1}, "defaultServe": {"variant": "a"}});
        if let Some(p) = prerequisite {
            d["prerequisites"] = json!([{"flag": p, "variant": "a"}]);
        }
        d
    };
    let prior = apply(
        &Document::default(),
        &[
            Change::Flag(0, Some(def(Some("f1")))),
            Change::Flag(1, Some(def(None))),
        ],
    );
    let prior_snapshot = compile(&prior).unwrap().snapshot;
    let doc = apply(&prior, &[Change::Flag(1, Some(def(Some("f0"))))]);
    let problems = compile_reusing(&doc, &prior, &prior_snapshot, &AtomicBool::new(false))
        .map(|_| ())
        .unwrap_err();
    assert!(problems.to_string().contains("cycle"), "{problems}");
}
