//! Unit tests of the OpenFeature mapping: contexts, structures, dates.

use std::sync::Arc;

use serde_json::json;

use super::*;

#[test]
fn contexts_carry_the_targeting_key_and_every_field() {
    let when = time::OffsetDateTime::from_unix_timestamp(1_714_564_800).unwrap();
    let ctx = EvaluationContext::default()
        .with_targeting_key("u1")
        .with_custom_field("plan", "pro")
        .with_custom_field("age", 42)
        .with_custom_field("score", 0.5)
        .with_custom_field("beta", true)
        .with_custom_field("since", when)
        .with_custom_field(
            "json",
            EvaluationContextFieldValue::Struct(Arc::new(json!({"a": 1}))),
        )
        .with_custom_field("opaque", EvaluationContextFieldValue::Struct(Arc::new(3u8)));
    let c = to_context(&ctx);
    assert_eq!(c.targeting_key(), Some("u1"));
    assert_eq!(c.get("plan"), Some(&json!("pro")));
    assert_eq!(c.get("age"), Some(&json!(42)));
    assert_eq!(c.get("score"), Some(&json!(0.5)));
    assert_eq!(c.get("beta"), Some(&json!(true)));
    assert_eq!(c.get("since"), Some(&json!("2024-05-01T12:00:00Z")));
    assert_eq!(c.get("json"), Some(&json!({"a": 1})));
    assert_eq!(c.get("opaque"), None);
}

#[test]
fn dates_are_rfc3339_in_utc() {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_714_564_800_250_000_000).unwrap();
    let t = t.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
    assert_eq!(rfc3339(t), "2024-05-01T12:00:00.25Z");
}

#[test]
fn structures_leave_nulls_out() {
    let s = to_struct(
        json!({"a": 1, "b": null, "c": [1, null, "x"], "d": {"e": 1.5}})
            .as_object()
            .unwrap(),
    );
    assert_eq!(s.fields.len(), 3);
    assert_eq!(
        s.fields["c"],
        open_feature::Value::Array(vec![
            open_feature::Value::Int(1),
            open_feature::Value::String("x".into())
        ])
    );
    assert_eq!(
        struct_json(&s),
        json!({"a": 1, "c": [1, "x"], "d": {"e": 1.5}})
    );
}
