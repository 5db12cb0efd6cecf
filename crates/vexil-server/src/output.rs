//! JSON shapes of evaluation results, in OpenFeature / OFREP field names.

use serde_json::{Map, Value, json};
use vexil_engine::Evaluation;

/// One evaluation as `{key, value, variant, reason, errorCode,
/// errorDetails, metadata}`; absent parts are left out.
pub(crate) fn evaluation_json(key: &str, eval: &Evaluation<'_>) -> Value {
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
