//! Unit tests of `Followed`: applying change events to the typed document
//! as the server does, strict compilation, bootstrap documents.

use serde_json::json;
use vexil_engine::{Context, ValueType};
use vexil_protocol::event::{Action, Change, ChangeEvent, ItemKind};

use super::*;

fn doc(value: serde_json::Value) -> Bytes {
    Bytes::from(value.to_string())
}

fn flag(variant: bool) -> serde_json::Value {
    json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": if variant {"on"} else {"off"}}})
}

fn change(
    version: i64,
    changes: Vec<(ItemKind, &str, Option<serde_json::Value>, bool)>,
) -> ChangeEvent {
    ChangeEvent {
        version,
        changes: changes
            .into_iter()
            .map(|(kind, key, definition, archived)| Change {
                kind,
                key: key.to_owned(),
                action: Action::Update,
                definition,
                archived,
            })
            .collect(),
    }
}

fn value(f: &Followed, key: &str) -> Option<serde_json::Value> {
    f.snapshot()
        .evaluate(key, &Context::new(), ValueType::Any)
        .value
        .cloned()
}

#[test]
fn a_change_replaces_deletes_and_archives_items_and_keeps_key_order() {
    let v1 = Followed::from_json(
        1,
        Origin::Upstream,
        doc(json!({"flags": {"b": flag(true), "d": flag(true)}})),
        None,
    )
    .unwrap();
    let v2 = v1
        .apply(&change(
            2,
            vec![
                (ItemKind::Flag, "c", Some(flag(true)), false),
                (ItemKind::Flag, "a", Some(flag(false)), false),
                (ItemKind::Flag, "b", None, false),
                (ItemKind::Flag, "d", Some(flag(false)), true),
                (
                    ItemKind::Segment,
                    "s",
                    Some(json!({"included": ["u1"]})),
                    false,
                ),
            ],
        ))
        .unwrap();
    assert_eq!(v2.version(), 2);
    assert_eq!(v2.origin(), Origin::Upstream);
    let keys: Vec<&str> = v2.document().flags.keys().collect();
    assert_eq!(keys, ["a", "c"]);
    assert_eq!(value(&v2, "a"), Some(json!(false)));
    assert_eq!(value(&v2, "b"), None);
    assert_eq!(value(&v2, "d"), None);
    assert_eq!(v2.document().segments.len(), 1);
    // The JSON is the typed document's, as the server serialises it.
    assert_eq!(
        v2.json().unwrap().as_ref(),
        serde_json::to_vec(v2.document().as_ref()).unwrap()
    );
    // The version before is untouched.
    assert_eq!(value(&v1, "b"), Some(json!(true)));
}

#[test]
fn versions_that_do_not_compile_or_parse_are_refused() {
    let bad = Followed::from_json(
        3,
        Origin::Upstream,
        doc(json!({"flags": {"x": {"variants": {"a": 1}, "defaultServe": {"variant": "zzz"}}}})),
        None,
    )
    .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Invalid);
    assert!(
        bad.message().contains("version 3 does not compile"),
        "{bad}"
    );
    assert!(bad.message().contains("/flags/x"), "{bad}");

    let v1 = Followed::from_json(1, Origin::Upstream, doc(json!({"flags": {}})), None).unwrap();
    let err = v1
        .apply(&change(
            2,
            vec![(ItemKind::Flag, "x", Some(json!({"nope": 1})), false)],
        ))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.message().contains("flag `x` does not parse"), "{err}");

    let err = Followed::from_json(
        1,
        Origin::Upstream,
        Bytes::from_static(b"{\"flags\":"),
        None,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn bootstrap_documents_are_native_or_flagd_json_or_yaml_and_not_resumable() {
    let flagd = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "b"}}}"#;
    let f = Followed::bootstrap(flagd).unwrap();
    assert_eq!(
        (f.version(), f.origin(), f.is_resumable()),
        (0, Origin::Bootstrap, false)
    );
    assert_eq!(value(&f, "f"), Some(json!("B")));
    let yaml = "flags:\n  g:\n    variants: {on: true}\n    defaultServe: {variant: on}\n";
    let g = Followed::bootstrap(yaml).unwrap();
    assert_eq!(value(&g, "g"), Some(json!(true)));
    // The native JSON of a flagd bootstrap is a native document.
    let again = Followed::from_json(1, Origin::Cache, f.json().unwrap().clone(), None).unwrap();
    assert_eq!(value(&again, "f"), Some(json!("B")));
    assert!(again.is_resumable());
    let err = Followed::bootstrap("{").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn only_targeting_that_may_read_the_time_asks_for_a_timestamp() {
    let plain = Followed::bootstrap(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"if": [{"==": [{"var": "x"}, 1]}, "a", null]}}}}"#).unwrap();
    assert!(!plain.uses_time());
    let keyed = Followed::bootstrap(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["a", 100]]}}}}"#).unwrap();
    assert!(!keyed.uses_time());
    let timed = Followed::bootstrap(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 1]}, "a", null]}}}}"#).unwrap();
    assert!(timed.uses_time());
    let dynamic = Followed::bootstrap(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"if": [{"var": {"cat": ["x", "y"]}}, "a", null]}}}}"#).unwrap();
    assert!(dynamic.uses_time());
}

#[test]
fn seeds_round_trip_with_their_keys() {
    let keys = KeysEvent {
        project: "p".into(),
        environment: "e".into(),
        keys: Vec::new(),
    };
    let f = Followed::from_json(
        7,
        Origin::Upstream,
        doc(json!({"flags": {"a": flag(true)}})),
        Some(Arc::new(keys.clone())),
    )
    .unwrap();
    let seed = f.seed().unwrap();
    assert_eq!((seed.version, seed.keys.as_ref()), (7, Some(&keys)));
    let back = Followed::from_seed(seed).unwrap();
    assert_eq!((back.version(), back.origin()), (7, Origin::Cache));
    assert_eq!(back.keys().map(|k| k.as_ref()), Some(&keys));
}
