//! The engine's JSON conformance fixtures (`vexil-engine/test-data`)
//! evaluated through the SDK: a client bootstrapped from each fixture's
//! document gives the engine's answer, and the fixture's, for every case,
//! through the untyped details and through the typed getters.

use std::path::PathBuf;

use serde_json::{Value, json};
use vexil_engine::{Format, ValueType};
use vexil_sdk::{Client, Context};

fn value_type(name: Option<&str>) -> ValueType {
    match name {
        None | Some("any") => ValueType::Any,
        Some("bool") => ValueType::Bool,
        Some("string") => ValueType::String,
        Some("int") => ValueType::Int,
        Some("float") => ValueType::Float,
        Some("object") => ValueType::Object,
        Some(other) => panic!("fixture names unknown type {other}"),
    }
}

/// The typed getter for `ty` with a default no fixture uses, as JSON.
fn typed_value(
    client: &Client,
    flag: &str,
    ctx: &Context,
    ty: ValueType,
) -> Option<(Value, Value)> {
    Some(match ty {
        ValueType::Bool => (json!(client.bool_value(flag, ctx, true)), json!(true)),
        ValueType::String => (
            json!(client.string_value(flag, ctx, "\u{0}default")),
            json!("\u{0}default"),
        ),
        ValueType::Int => (json!(client.int_value(flag, ctx, -424242)), json!(-424242)),
        ValueType::Float => (
            json!(client.float_value(flag, ctx, -4242.5)),
            json!(-4242.5),
        ),
        ValueType::Object => (
            client.json_value(flag, ctx, json!({"default": true})),
            json!({"default": true}),
        ),
        _ => return None,
    })
}

#[test]
fn the_engine_fixtures_give_the_same_answers_through_the_sdk() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vexil-engine/test-data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "fixtures missing in {}", dir.display());
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in &files {
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let text = serde_json::to_string(&fixture["document"]).unwrap();
        let path = tmp.path().join(file.file_name().unwrap());
        std::fs::write(&path, &text).unwrap();
        let client = Client::builder().bootstrap_file(&path).build().unwrap();
        let engine = vexil_engine::load(&text, Format::Auto).unwrap().snapshot;
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for case in fixture["cases"].as_array().unwrap() {
            total += 1;
            let flag = case["flag"].as_str().unwrap();
            let mut ctx = Context::from_json(case["context"].clone()).unwrap();
            if let Some(ts) = case["timestamp"].as_i64() {
                ctx = ctx.with_timestamp(ts);
            }
            let ty = value_type(case["type"].as_str());
            let expect = &case["expect"];
            let d = client.details(flag, &ctx, ty);
            let e = engine.evaluate(flag, &ctx, ty);
            let mut problems = Vec::new();
            if d.value.as_ref() != e.value || d.value.as_ref() != expect.get("value") {
                problems.push(format!(
                    "value {:?}, engine {:?}, want {:?}",
                    d.value,
                    e.value,
                    expect.get("value")
                ));
            }
            if d.variant.as_deref() != e.variant
                || d.variant.as_deref() != expect.get("variant").and_then(Value::as_str)
            {
                problems.push(format!("variant {:?}, engine {:?}", d.variant, e.variant));
            }
            if d.reason != e.reason || expect["reason"].as_str() != Some(d.reason.as_str()) {
                problems.push(format!(
                    "reason {}, engine {}, want {}",
                    d.reason, e.reason, expect["reason"]
                ));
            }
            let code = d.error_code.map(|c| c.as_str());
            if code != e.error.as_ref().map(|x| x.code.as_str())
                || code != expect.get("errorCode").and_then(Value::as_str)
            {
                problems.push(format!("error {code:?}, engine {:?}", e.error));
            }
            if let Some(meta) = expect.get("metadata")
                && Value::Object(d.metadata.clone()) != *meta
            {
                problems.push(format!("metadata {:?}, want {meta}", d.metadata));
            }
            if d.version != Some(0) {
                problems.push(format!("version {:?}", d.version));
            }
            if let Some((got, default)) = typed_value(&client, flag, &ctx, ty) {
                let want = expect.get("value").cloned().unwrap_or(default);
                let same = match (got.as_f64(), want.as_f64()) {
                    // A float getter gives 5.0 for a flag's 5.
                    (Some(a), Some(b)) => a == b,
                    _ => got == want,
                };
                if !same {
                    problems.push(format!("typed getter {got}, want {want}"));
                }
            }
            if !problems.is_empty() {
                failures.push(format!("{name}: {}: {}", case["name"], problems.join("; ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total > 300, "only {total} cases ran");
}
