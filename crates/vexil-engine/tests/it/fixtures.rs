//! Runs the JSON conformance fixtures in `test-data/`: a document and cases
//! of (flag, context, expected result). The SDK runs the same files.

use std::path::PathBuf;

use serde_json::Value;
use vexil_engine::{Context, Format, Matched, ValueType, load};

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

fn matched_name(m: Matched) -> String {
    match m {
        Matched::Nothing => "nothing".into(),
        Matched::Target => "target".into(),
        Matched::Rule(n) => format!("rule:{n}"),
        Matched::Default => "default".into(),
        Matched::PrerequisiteFailed(n) => format!("prerequisite:{n}"),
    }
}

/// Runs one fixture file, its document given as JSON or as YAML; returns
/// the failures, one line each.
fn run(path: &PathBuf, yaml: bool) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let doc = if yaml {
        serde_yaml_ng::to_string(&fixture["document"]).unwrap()
    } else {
        serde_json::to_string(&fixture["document"]).unwrap()
    };
    let compiled = load(&doc, Format::Auto)
        .unwrap_or_else(|e| panic!("{} (yaml: {yaml}): {e}", path.display()));
    let snapshot = compiled.snapshot;
    let cases = fixture["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let flag = case["flag"].as_str().unwrap();
        let mut ctx = Context::from_json(case["context"].clone()).unwrap();
        if let Some(ts) = case["timestamp"].as_i64() {
            ctx = ctx.with_timestamp(ts);
        }
        let ty = value_type(case["type"].as_str());
        let eval = snapshot.evaluate(flag, &ctx, ty);
        let expect = &case["expect"];
        let mut problems = Vec::new();
        let value = eval.value.cloned();
        if expect.get("value") != value.as_ref() {
            problems.push(format!("value {:?}, want {:?}", value, expect.get("value")));
        }
        let variant = eval.variant.map(|v| Value::String(v.to_owned()));
        if expect.get("variant") != variant.as_ref() {
            problems.push(format!(
                "variant {:?}, want {:?}",
                variant,
                expect.get("variant")
            ));
        }
        if expect["reason"].as_str() != Some(eval.reason.as_str()) {
            problems.push(format!("reason {}, want {}", eval.reason, expect["reason"]));
        }
        let code = eval.error.as_ref().map(|e| e.code.as_str());
        if expect.get("errorCode").and_then(Value::as_str) != code {
            problems.push(format!(
                "error {:?}, want {:?}",
                eval.error,
                expect.get("errorCode")
            ));
        }
        if let Some(rule) = expect.get("rule") {
            let got = match eval.matched {
                Matched::Rule(n) => Value::from(n),
                _ => Value::Null,
            };
            if *rule != got {
                problems.push(format!("matched {:?}, want rule {rule}", eval.matched));
            }
        }
        if let Some(m) = expect.get("matched").and_then(Value::as_str)
            && matched_name(eval.matched) != m
        {
            problems.push(format!("matched {:?}, want {m}", eval.matched));
        }
        if let Some(meta) = expect.get("metadata") {
            let got = eval.metadata().cloned().map(Value::Object);
            if Some(meta) != got.as_ref() {
                problems.push(format!("metadata {got:?}, want {meta}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {name}: {}",
                path.display(),
                problems.join("; ")
            ));
        }
    }
    (cases.len(), failures)
}

#[test]
fn conformance_fixtures() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "fixtures missing in {}", dir.display());
    let mut total = 0;
    let mut failures = Vec::new();
    for f in &files {
        for yaml in [false, true] {
            let (n, mut fails) = run(f, yaml);
            total += n;
            failures.append(&mut fails);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total > 500, "only {total} cases ran");
}

/// flagd documents converted to the native model (as imports store them)
/// evaluate exactly like the originals. Flags whose targeting does not
/// compile cannot be converted (imports refuse them); flagd reports
/// PARSE_ERROR for those, which the fixtures must say.
#[test]
fn flagd_fixtures_evaluate_the_same_after_conversion_to_native() {
    use vexil_engine::flagd::{FlagdDocument, to_native};
    use vexil_engine::{Keyed, compile};

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-data");
    let mut checked = 0;
    for name in ["flagd.json", "flagd-v3.json"] {
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        let doc: FlagdDocument = serde_json::from_value(fixture["document"].clone()).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let key = case["flag"].as_str().unwrap();
            let Some(flag) = doc.flags.get(key) else {
                continue;
            };
            let single = FlagdDocument {
                flags: Keyed::from_pairs(vec![(key.to_owned(), flag.clone())]),
                ..doc.clone()
            };
            let native = to_native(&single).ok().and_then(|d| compile(&d).ok());
            let Some(native) = native else {
                assert_eq!(
                    case["expect"]["errorCode"], "PARSE_ERROR",
                    "{name}: {key} did not convert"
                );
                continue;
            };
            let mut ctx = Context::from_json(case["context"].clone()).unwrap();
            if let Some(ts) = case["timestamp"].as_i64() {
                ctx = ctx.with_timestamp(ts);
            }
            let e = native
                .snapshot
                .evaluate(key, &ctx, value_type(case["type"].as_str()));
            let expect = &case["expect"];
            assert_eq!(e.value, expect.get("value"), "{name}: {}", case["name"]);
            assert_eq!(
                e.reason.as_str(),
                expect["reason"],
                "{name}: {}",
                case["name"]
            );
            assert_eq!(
                e.variant,
                expect.get("variant").and_then(Value::as_str),
                "{name}: {}",
                case["name"]
            );
            if let Some(meta) = expect.get("metadata") {
                assert_eq!(
                    Some(meta),
                    e.metadata().cloned().map(Value::Object).as_ref(),
                    "{name}: {}",
                    case["name"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} cases checked");
}
