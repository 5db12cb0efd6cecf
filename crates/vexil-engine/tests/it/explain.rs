//! Explain mode gives the evaluation `evaluate` gives: over every
//! conformance fixture case (JSON and YAML documents alike) and, from
//! `robustness.rs`, over arbitrary documents and contexts.

use std::path::PathBuf;

use serde_json::Value;
use vexil_engine::{Context, Evaluation, Format, Snapshot, Step, ValueType, load};

/// Checks that `explained` is `plain` (value, variant, reason, error,
/// what matched, the flag) and that the trace ends as the evaluation did:
/// with its error, or with a serve of its variant.
fn same(
    plain: &Evaluation<'_>,
    explained: &Evaluation<'_>,
    trace: &vexil_engine::Trace,
) -> Result<(), String> {
    let got = (
        explained.value,
        explained.variant,
        explained.reason,
        &explained.error,
        explained.matched,
        explained.key(),
    );
    let want = (
        plain.value,
        plain.variant,
        plain.reason,
        &plain.error,
        plain.matched,
        plain.key(),
    );
    if got != want {
        return Err(format!("explain gave {got:?}, evaluate {want:?}"));
    }
    match (trace.steps.last(), &plain.error) {
        (Some(Step::Error { code, .. }), Some(e)) if *code == e.code.as_str() => {}
        (Some(Step::Serve { variant, .. }), None) if variant.as_deref() == plain.variant => {}
        (last, _) => return Err(format!("trace ends with {last:?} for {plain:?}")),
    }
    serde_json::to_value(trace).map_err(|e| e.to_string())?;
    Ok(())
}

/// Explains flag `key` and every flag, comparing each with `evaluate`.
pub(crate) fn agrees(
    snapshot: &Snapshot,
    key: &str,
    ctx: &Context,
    ty: ValueType,
) -> Result<(), String> {
    let (explained, trace) = snapshot.explain(key, ctx, ty);
    same(&snapshot.evaluate(key, ctx, ty), &explained, &trace)?;
    let plain = snapshot.evaluate_all(ctx);
    let explained = snapshot.explain_all(ctx);
    if plain.len() != explained.len() {
        return Err(format!(
            "{} explained, {} evaluated",
            explained.len(),
            plain.len()
        ));
    }
    for (p, (e, t)) in plain.iter().zip(&explained) {
        same(p, e, t)?;
    }
    Ok(())
}

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

#[test]
fn explain_evaluates_every_fixture_case_as_evaluate_does() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &files {
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for yaml in [false, true] {
            let text = if yaml {
                serde_yaml_ng::to_string(&fixture["document"]).unwrap()
            } else {
                fixture["document"].to_string()
            };
            let snapshot = load(&text, Format::Auto).unwrap().snapshot;
            for case in fixture["cases"].as_array().unwrap() {
                let mut ctx = Context::from_json(case["context"].clone()).unwrap();
                if let Some(ts) = case["timestamp"].as_i64() {
                    ctx = ctx.with_timestamp(ts);
                }
                let flag = case["flag"].as_str().unwrap();
                let ty = value_type(case["type"].as_str());
                if let Err(why) = agrees(&snapshot, flag, &ctx, ty) {
                    failures.push(format!("{}: {}: {why}", path.display(), case["name"]));
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 500, "only {checked} cases checked");
}
