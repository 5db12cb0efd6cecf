//! No input, however malformed, makes loading or evaluation panic, and
//! explain mode agrees with evaluation on all of it.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vexil_engine::{Context, Format, ValueType, evaluate_all, load};

use crate::explain::agrees;

const OPS: &[&str] = &[
    "var",
    "if",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "and",
    "or",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "min",
    "max",
    "in",
    "cat",
    "substr",
    "merge",
    "missing",
    "missing_some",
    "map",
    "filter",
    "reduce",
    "all",
    "none",
    "some",
    "fractional",
    "sem_ver",
    "starts_with",
    "ends_with",
    "$ref",
    "?:",
    "log",
];

/// Arbitrary JSON, biased towards JsonLogic shapes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(OPS).prop_map(|s| Value::String(s.to_owned())),
        "[a-z0-9.~^=<>!-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            (prop::sample::select(OPS), inner.clone()).prop_map(|(op, v)| {
                let mut m = Map::new();
                m.insert(op.to_owned(), v);
                Value::Object(m)
            }),
            prop::collection::btree_map("[a-zA-Z$]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn contexts() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (json_value(), json_value(), "[a-z]{0,6}")
            .prop_map(|(a, b, k)| json!({"targetingKey": k, "a": a, "b": b, "version": a})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_flagd_targeting_evaluates_without_panic(targeting in json_value(), ctx in contexts(), cbor in any::<bool>()) {
        let doc = json!({
            "bucketing": if cbor { "cbor" } else { "concat" },
            "$evaluators": {"e": targeting.clone()},
            "flags": {
                "f": {"state": "ENABLED", "variants": {"a": 1, "b": 2, "true": 3, "null": 4}, "defaultVariant": "a", "targeting": targeting},
                "g": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"if": [{"$ref": "e"}, "a", null]}}
            }
        });
        let compiled = load(&doc.to_string(), Format::Flagd).unwrap();
        if let Ok(ctx) = Context::from_json(ctx) {
            let ctx = ctx.with_timestamp(1_700_000_000);
            let _ = evaluate_all(&compiled.snapshot, &ctx);
            let _ = compiled.snapshot.evaluate("f", &ctx, ValueType::Int);
            prop_assert_eq!(agrees(&compiled.snapshot, "f", &ctx, ValueType::Int), Ok(()));
        }
    }

    #[test]
    fn any_document_loads_or_fails_cleanly(doc in json_value(), flag in json_value(), yaml in any::<bool>()) {
        for candidate in [doc.clone(), json!({"flags": {"f": flag.clone()}}), json!({"flags": {"f": {"state": "ENABLED", "variants": flag}}})] {
            let text = if yaml { serde_yaml_ng::to_string(&candidate).unwrap() } else { candidate.to_string() };
            if let Ok(c) = load(&text, Format::Auto) {
                let _ = evaluate_all(&c.snapshot, &Context::new());
                prop_assert_eq!(agrees(&c.snapshot, "f", &Context::new(), ValueType::Any), Ok(()));
            }
        }
    }

    #[test]
    fn any_context_evaluates_native_rules_without_panic(ctx in contexts(), attr in "[a-z]{1,3}(\\.[a-z0-9]{1,3}){0,2}") {
        let clauses: Vec<Value> = ["in", "notIn", "startsWith", "endsWith", "contains", "matches", "lt", "lte", "gt", "gte",
            "semverEq", "semverLt", "semverLte", "semverGt", "semverGte", "before", "after"]
            .iter()
            .map(|op| {
                let values = match *op {
                    "lt" | "lte" | "gt" | "gte" | "before" | "after" => json!([1, 2.5]),
                    "semverEq" | "semverLt" | "semverLte" | "semverGt" | "semverGte" => json!(["1.2.3", "v2"]),
                    _ => json!(["a", "1"]),
                };
                json!({"attribute": attr, "op": op, "values": values})
            })
            .collect();
        let rules: Vec<Value> = clauses
            .into_iter()
            .map(|c| json!({"clauses": [c], "serve": {"rollout": {"weights": {"on": 50, "off": 50}, "bucketBy": attr}}}))
            .collect();
        let doc = json!({"flags": {"f": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"}, "rules": rules}}});
        let compiled = load(&doc.to_string(), Format::Native).unwrap();
        if let Ok(ctx) = Context::from_json(ctx) {
            let _ = evaluate_all(&compiled.snapshot, &ctx);
            prop_assert_eq!(agrees(&compiled.snapshot, "f", &ctx, ValueType::Bool), Ok(()));
        }
    }
}

#[test]
fn deeply_nested_input_is_refused_not_overflowed() {
    let depth = 100_000;
    let json = format!("{{\"flags\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    assert!(load(&json, Format::Auto).is_err());
    let yaml = format!("flags: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    assert!(load(&yaml, Format::Auto).is_err());
    let ctx = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(Context::from_json_str(&ctx).is_err());
    let targeting = format!("{}1{}", "{\"!\":".repeat(depth), "}".repeat(depth));
    let doc = format!(
        "{{\"flags\": {{\"f\": {{\"state\": \"ENABLED\", \"variants\": {{\"a\": 1}}, \"defaultVariant\": \"a\", \"targeting\": {targeting}}}}}}}"
    );
    assert!(load(&doc, Format::Auto).is_err());
}

#[test]
fn contexts_must_be_objects_with_string_targeting_keys() {
    assert_eq!(
        Context::from_json(json!([1])).unwrap_err().to_string(),
        "evaluation context must be a JSON object, found array"
    );
    // issue 12, item 6: a targeting key that is not a string is absent,
    // as flagd treats it.
    let ctx = Context::from_json(json!({"targetingKey": 7, "a": 1})).unwrap();
    assert_eq!(ctx.targeting_key(), None);
    assert_eq!(ctx.get("targetingKey"), None);
    assert_eq!(ctx.get("a"), Some(&json!(1)));
    let ctx = Context::new()
        .with_targeting_key("u")
        .with("targetingKey", 7);
    assert_eq!((ctx.targeting_key(), ctx.get("targetingKey")), (None, None));
    assert!(Context::from_json(Value::Null).is_ok());
    assert!(Context::from_json_str("{not json").is_err());
}

#[test]
fn oversized_regexes_are_refused() {
    let doc = json!({"flags": {"f": {"variants": {"a": 1}, "defaultServe": {"variant": "a"},
        "rules": [{"clauses": [{"attribute": "x", "op": "matches", "values": ["(a{1000}){1000}"]}], "serve": {"variant": "a"}}]}}});
    let err = load(&doc.to_string(), Format::Native)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/flags/f/rules/0/clauses/0/values/0: invalid regular expression"),
        "{err}"
    );
}

#[test]
fn large_contexts_are_indexed_and_still_found() {
    let mut attrs = serde_json::Map::new();
    for i in 0..40 {
        attrs.insert(format!("attr{i}"), json!(i));
    }
    attrs.insert("country".into(), json!("CA"));
    let ctx = Context::from_json(Value::Object(attrs))
        .unwrap()
        .with("late", "yes");
    assert_eq!(ctx.get("attr39"), Some(&json!(39)));
    assert_eq!(ctx.get("late"), Some(&json!("yes")));
    assert_eq!(ctx.get("nope"), None);
    let doc = json!({"flags": {"f": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"},
        "rules": [{"clauses": [{"attribute": "country", "op": "in", "values": ["CA"]}, {"attribute": "late", "op": "exists"}], "serve": {"variant": "on"}}]}}});
    let snapshot = load(&doc.to_string(), Format::Native).unwrap().snapshot;
    assert_eq!(
        snapshot.evaluate("f", &ctx, ValueType::Bool).value,
        Some(&json!(true))
    );
}

proptest! {
    #[test]
    fn parsing_a_context_directly_equals_parsing_a_value(v in json_value(), key in proptest::option::of("[a-z]{0,5}")) {
        let mut value = match v {
            Value::Object(m) => Value::Object(m),
            other => json!({"a": other}),
        };
        if let Some(k) = key {
            value["targetingKey"] = json!(k);
        }
        let text = value.to_string();
        let direct = Context::from_json_str(&text).unwrap();
        let via_value = Context::from_json(value).unwrap();
        prop_assert_eq!(direct.targeting_key(), via_value.targeting_key());
        prop_assert_eq!(direct.to_json(), via_value.to_json());
    }
}

#[test]
fn direct_context_parsing_reports_shapes_and_keeps_the_last_duplicate() {
    assert_eq!(
        Context::from_json_str("[1, 2]").unwrap_err(),
        vexil_engine::ContextError::NotAnObject("array")
    );
    // issue 12, item 6: not a string, so absent; a later string wins.
    let ctx = Context::from_json_str(r#"{"a": 1, "targetingKey": true}"#).unwrap();
    assert_eq!((ctx.targeting_key(), ctx.get("targetingKey")), (None, None));
    let ctx = Context::from_json_str(r#"{"targetingKey": "x", "targetingKey": 5}"#).unwrap();
    assert_eq!((ctx.targeting_key(), ctx.get("targetingKey")), (None, None));
    let ctx = Context::from_json_str(r#"{"targetingKey": 5, "targetingKey": "y"}"#).unwrap();
    assert_eq!(ctx.targeting_key(), Some("y"));
    assert!(
        Context::from_json_str("null")
            .unwrap()
            .attributes()
            .next()
            .is_none()
    );
    let ctx =
        Context::from_json_str(r#"{"a": 1, "targetingKey": "x", "a": 2, "targetingKey": "y"}"#)
            .unwrap();
    assert_eq!(ctx.get("a"), Some(&json!(2)));
    assert_eq!(ctx.targeting_key(), Some("y"));
    assert_eq!(ctx.attributes().count(), 2);
    let many: serde_json::Map<String, Value> =
        (0..5000).map(|i| (format!("k{i}"), json!(i))).collect();
    let ctx = Context::from_json_str(&Value::Object(many).to_string()).unwrap();
    assert_eq!(ctx.get("k4999"), Some(&json!(4999)));
}
