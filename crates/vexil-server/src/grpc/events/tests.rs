//! Tests of `events`: which flags a configuration change names.

use serde_json::json;
use vexil_engine::model::Document;

use super::changed_flags;

fn doc(v: serde_json::Value) -> Document {
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_change_names_the_flags_written_updated_and_deleted() {
    let flag = |d: &str| json!({"variants": {"a": 1, "b": 2}, "defaultServe": {"variant": d}});
    let old = doc(json!({"flags": {"same": flag("a"), "changed": flag("a"), "gone": flag("a")}}));
    let new = doc(json!({"flags": {"same": flag("a"), "changed": flag("b"), "added": flag("a")}}));
    let got = changed_flags(&old, &new);
    assert_eq!(
        serde_json::Value::Object(got),
        json!({"changed": {"type": "update"}, "added": {"type": "write"}, "gone": {"type": "delete"}})
    );
}

#[test]
fn a_segment_change_names_every_flag() {
    let flag = json!({"variants": {"a": 1}, "defaultServe": {"variant": "a"}});
    let seg = |v: &str| json!({"rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": [v]}]}]});
    let old = doc(json!({"segments": {"s": seg("pro")}, "flags": {"x": flag, "y": flag}}));
    let new = doc(json!({"segments": {"s": seg("team")}, "flags": {"x": flag, "y": flag}}));
    let got = changed_flags(&old, &new);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["x", "y"]);
}
