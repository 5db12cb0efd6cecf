//! Tests of `Definition`.

use serde_json::json;

use super::Definition;

#[test]
fn equality_is_json_equality() {
    let a = Definition::from_text(r#"{"a":1,"b":[true,null]}"#).unwrap();
    let b = Definition::from_text(r#"{"b": [true, null], "a": 1}"#).unwrap();
    let c = Definition::from_text(r#"{"a":2,"b":[true,null]}"#).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a, json!({"b": [true, null], "a": 1}));
}

#[test]
fn text_is_kept_and_embedded_as_is() {
    let d = Definition::to_json(&json!({"z": 1, "a": "x"})).unwrap();
    assert_eq!(d.as_str(), r#"{"z":1,"a":"x"}"#);
    let outer = serde_json::to_string(&json!({"definition": d})).unwrap();
    assert_eq!(outer, r#"{"definition":{"z":1,"a":"x"}}"#);
    let direct = serde_json::to_string(&[&d]).unwrap();
    assert_eq!(direct, r#"[{"z":1,"a":"x"}]"#);
    let back: Definition = serde_json::from_str(r#" {"z": 1} "#).unwrap();
    assert_eq!(back.as_str(), r#"{"z": 1}"#);
}

#[test]
fn refuses_what_is_not_json() {
    assert!(Definition::from_text("{").is_err());
    assert!(Definition::from_text("{} x").is_err());
}

#[test]
fn reads_from_a_json_tree_too() {
    let d: Definition = serde_json::from_value(json!({"a": [1, "x"]})).unwrap();
    assert_eq!(d, json!({"a": [1, "x"]}));
}
