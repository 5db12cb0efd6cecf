//! Between protobuf's `Struct`/`Value` and JSON: evaluation contexts in,
//! object values and metadata out.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PValue};
use serde_json::{Map, Number, Value};
use tonic::Status;
use vexil_engine::Context;

/// A protobuf value as JSON. Numbers that are whole and within ±2^53 come
/// out as integers, so that `age: 30` compares as people expect.
pub(super) fn to_json(v: &PValue) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_map(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(to_json).collect()),
    }
}

fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// A protobuf struct as a JSON object.
pub(super) fn struct_to_map(s: &Struct) -> Map<String, Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect()
}

/// JSON as a protobuf value.
pub(super) fn from_json(v: &Value) -> PValue {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(ListValue {
            values: a.iter().map(from_json).collect(),
        }),
        Value::Object(m) => Kind::StructValue(map_to_struct(m)),
    };
    PValue { kind: Some(kind) }
}

/// A JSON object as a protobuf struct.
pub(super) fn map_to_struct(m: &Map<String, Value>) -> Struct {
    Struct {
        fields: m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect(),
    }
}

/// The evaluation context of a request (`targetingKey` is the targeting
/// key), stamped with the time for `$flagd.timestamp`.
pub(super) fn context(s: Option<&Struct>, now_seconds: i64) -> Result<Context, Status> {
    let map = s.map(struct_to_map).unwrap_or_default();
    Context::from_json(Value::Object(map))
        .map(|c| c.with_timestamp(now_seconds))
        .map_err(|e| Status::invalid_argument(format!("INVALID_CONTEXT: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_numbers_come_in_as_integers_and_the_rest_round_trips() {
        let v =
            json!({"age": 30, "ratio": 0.5, "tags": ["a", null, true], "nested": {"big": 1e300}});
        let back = to_json(&from_json(&v));
        assert_eq!(back, v);
        assert!(back["age"].is_i64());
        assert!(back["nested"]["big"].is_f64());
    }

    #[test]
    fn the_targeting_key_comes_from_targeting_key() {
        let s = map_to_struct(
            json!({"targetingKey": "u1", "plan": "pro"})
                .as_object()
                .unwrap(),
        );
        let ctx = context(Some(&s), 0).unwrap();
        assert_eq!(ctx.targeting_key(), Some("u1"));
        assert_eq!(ctx.get("plan"), Some(&json!("pro")));
    }
}
