//! The flagd translation (`vexil_engine::flagd::to_flagd`) against the
//! official flagd providers: seeded random native documents and contexts
//! are evaluated by Vexil's engine, translated for the provider's
//! bucketing scheme, and evaluated again by the provider in process from a
//! file (`tests/flagd-providers/{python,js}/differential.*`), which must
//! agree on every value, variant, reason and metadata, and must not know
//! the flags the translation left out.
//!
//! Python (`openfeature-provider-flagd` 0.6.1, flagd core 2.0.0) hashes
//! `fractional` as murmur3 over CBOR (`bucketing: cbor`); JavaScript
//! (`@openfeature/flagd-provider` 0.16.1, `@openfeature/flagd-core` 4.0.1)
//! over the concatenated string (`bucketing: concat`), but taking UTF-16
//! code units for bytes, so its documents use ASCII targeting keys only.
//!
//! `.ci/run` installs the providers (a virtualenv in `target/flagd-venv`,
//! and `npm ci` in `tests/flagd-providers/js`); under `CI=true` a missing
//! provider fails the test instead of skipping it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Map, Value, json};
use vexil_engine::flagd::to_flagd;
use vexil_engine::model::{Bucketing, Document};
use vexil_engine::{Context, ErrorCode, Reason, ValueType, compile};

const DOCUMENTS: usize = 1000;
const CONTEXTS: usize = 24;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// SplitMix64: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `p` percent.
    fn chance(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
}

const STRINGS: &[&str] = &["", "a", "ab", "pro", "pro-x", "1", "true", "x@y.z"];
const NUMBERS: &[f64] = &[-1.5, 0.0, 1.0, 1.5, 2.25, 18.0, 3.0, 10.0];
const KEYS: &[&str] = &["u1", "u2", "u3", "", "user-42", "ü-7"];
/// For the JavaScript provider, whose hash reads UTF-16 code units.
const ASCII_KEYS: &[&str] = &["u1", "u2", "u3", "", "user-42", "u-7"];

fn string(r: &mut Rng) -> Value {
    json!(r.pick(STRINGS))
}

fn number(r: &mut Rng) -> Value {
    if r.chance(50) {
        json!(r.below(22) as i64 - 2)
    } else {
        json!(r.pick(NUMBERS))
    }
}

fn scalar(r: &mut Rng) -> Value {
    match r.below(8) {
        0..=2 => string(r),
        3..=5 => number(r),
        6 => json!(r.chance(50)),
        _ => Value::Null,
    }
}

fn context_value(r: &mut Rng) -> Value {
    match r.below(9) {
        0..=5 => scalar(r),
        6 | 7 => Value::Array((0..r.below(4)).map(|_| scalar(r)).collect()),
        _ => json!({ "name": scalar(r) }),
    }
}

fn context(r: &mut Rng, keys: &[&'static str]) -> Value {
    let mut m = Map::new();
    for _ in 0..r.below(5) {
        let name = r.pick(&["plan", "age", "tags", "org", "email"]);
        m.insert(name.into(), context_value(r));
    }
    if r.chance(85) {
        m.insert("targetingKey".into(), json!(r.pick(keys)));
    }
    Value::Object(m)
}

fn values(r: &mut Rng, f: fn(&mut Rng) -> Value) -> Vec<Value> {
    (0..1 + r.below(2)).map(|_| f(r)).collect()
}

/// A clause; `segments` names the segments it may refer to.
fn clause(r: &mut Rng, segments: &[String]) -> Value {
    if !segments.is_empty() && r.chance(15) {
        return json!({"op": "inSegment", "values": [r.pick(segments)], "negate": r.chance(30)});
    }
    let attribute = r.pick(&[
        "plan",
        "age",
        "tags",
        "org.name",
        "email",
        "targetingKey",
        "tags.0",
    ]);
    let (op, values) = match r.below(14) {
        0 => ("in", values(r, string)),
        1 => ("notIn", values(r, string)),
        2 => ("in", values(r, number)),
        3 => ("startsWith", values(r, string)),
        4 => ("endsWith", values(r, string)),
        5 => ("contains", values(r, string)),
        6 => ("matches", vec![json!("^p")]),
        7 => ("lt", values(r, number)),
        8 => ("lte", values(r, number)),
        9 => ("gt", values(r, number)),
        10 => ("gte", values(r, number)),
        11 => ("semverGte", vec![json!("1.2.0")]),
        12 => ("after", vec![json!(1_700_000_000)]),
        _ => ("exists", vec![]),
    };
    json!({"attribute": attribute, "op": op, "values": values, "negate": r.chance(30)})
}

fn clauses(r: &mut Rng, segments: &[String]) -> Vec<Value> {
    (0..r.below(3)).map(|_| clause(r, segments)).collect()
}

fn serve(r: &mut Rng, names: &[&str]) -> Value {
    if r.chance(65) {
        return json!({ "variant": r.pick(names) });
    }
    let mut cuts: Vec<u64> = (1..names.len()).map(|_| r.next() % 100_001).collect();
    cuts.sort_unstable();
    cuts.push(100_000);
    let mut weights = Map::new();
    let mut last = 0;
    for (name, cut) in names.iter().zip(cuts) {
        weights.insert((*name).into(), json!((cut - last) as f64 / 1000.0));
        last = cut;
    }
    let mut rollout = json!({ "weights": weights });
    if r.chance(15) {
        rollout["salt"] = json!("s1");
    }
    if r.chance(10) {
        rollout["bucketBy"] = json!(r.pick(&["plan", "age"]));
    }
    json!({ "rollout": rollout })
}

fn flag(r: &mut Rng, segments: &[String]) -> Value {
    let variants = r.pick(&[
        json!({"on": true, "off": false}),
        json!({"a": "A", "b": "B", "c": "C"}),
        json!({"one": 1, "half": 2.5, "neg": -3}),
        json!({"x": {"x": 1}, "y": {"y": [1, "two"]}}),
        json!({"l": [1], "m": [2]}),
    ]);
    let names: Vec<&str> = variants
        .as_object()
        .map_or_else(Vec::new, |m| m.keys().map(String::as_str).collect());
    let mut f = json!({"variants": variants, "enabled": r.chance(85)});
    if r.chance(40) {
        f["offVariant"] = json!(r.pick(&names));
    }
    if r.chance(30) {
        f["metadata"] = json!({ "tier": r.below(3) });
    }
    if r.chance(5) {
        f["prerequisites"] = json!([{"flag": "none", "variant": "none"}]);
    }
    if r.chance(10) {
        f["targeting"] = json!({"if": [{"in": [{"var": "plan"}, ["pro"]]}, names[0], null]});
        f["defaultServe"] = json!({ "variant": r.pick(&names) });
        return f;
    }
    if r.chance(30) {
        f["targets"] = json!({ r.pick(&names): [r.pick(&["u1", "u2"])] });
    }
    let rules: Vec<Value> = (0..r.below(4))
        .map(|_| json!({"clauses": clauses(r, segments), "serve": serve(r, &names)}))
        .collect();
    f["rules"] = json!(rules);
    if r.chance(80) {
        f["defaultServe"] = serve(r, &names);
    }
    f
}

/// Document `n`: flag and segment keys are unique across documents, so
/// that all translations fit in one flagd document.
fn document(r: &mut Rng, n: usize, providers: Bucketing) -> Value {
    let mut segments = Map::new();
    let mut names = Vec::new();
    for i in 0..r.below(3) {
        let rules: Vec<Value> = (0..r.below(3))
            .map(|_| json!({ "clauses": clauses(r, &names) }))
            .collect();
        let keys = |r: &mut Rng| -> Vec<&str> {
            (0..r.below(2))
                .map(|_| r.pick(&["u1", "u2", "u3"]))
                .collect()
        };
        let seg = json!({"included": keys(r), "excluded": keys(r), "rules": rules});
        let name = format!("d{n}s{i}");
        segments.insert(name.clone(), seg);
        names.push(name);
    }
    let mut flags = Map::new();
    for i in 0..1 + r.below(4) {
        flags.insert(format!("d{n}f{i}"), flag(r, &names));
    }
    let mut doc = json!({"segments": segments, "flags": flags, "metadata": {"team": "web"}});
    // Some documents hash with the other scheme: their rollouts are left out.
    let cbor = (providers == Bucketing::Cbor) == r.chance(80);
    if cbor {
        doc["bucketing"] = json!("cbor");
    }
    doc
}

fn kind(variants: &Value) -> &'static str {
    match variants.as_object().and_then(|m| m.values().next()) {
        Some(Value::Bool(_)) => "boolean",
        Some(Value::String(_)) => "string",
        Some(Value::Number(_)) => "number",
        _ => "object",
    }
}

/// Builds the provider's document and the cases: every translated flag
/// under every context with what Vexil answered, and every flag left out,
/// which the provider must not know.
fn cases(seed: u64, providers: Bucketing) -> Value {
    let keys = match providers {
        Bucketing::Cbor => KEYS,
        Bucketing::Concat => ASCII_KEYS,
    };
    let mut r = Rng(seed);
    let mut flags = Map::new();
    let mut cases = Vec::new();
    let mut left_out = 0;
    for n in 0..DOCUMENTS {
        let raw = document(&mut r, n, providers);
        let doc: Document = serde_json::from_value(raw.clone()).expect("generated document parses");
        let Ok(native) = compile(&doc) else {
            continue;
        };
        let t = to_flagd(&doc, providers);
        let translated: Vec<&str> = t.document.flags.keys().collect();
        let mut all: Vec<&str> = translated
            .iter()
            .copied()
            .chain(t.left_out.iter().map(|l| l.flag.as_str()))
            .collect();
        all.sort_unstable();
        let mut want: Vec<&str> = doc.flags.keys().collect();
        want.sort_unstable();
        assert_eq!(
            all, want,
            "every flag is translated or left out, never both"
        );
        for l in &t.left_out {
            left_out += 1;
            cases.push(json!({
                "flag": l.flag, "type": kind(&raw["flags"][&l.flag]["variants"]), "context": {},
                "expect": {"value": null, "variant": null, "reason": "ERROR", "errorCode": "FLAG_NOT_FOUND"},
            }));
        }
        let contexts: Vec<Value> = (0..CONTEXTS).map(|_| context(&mut r, keys)).collect();
        for (key, f) in t.document.flags.iter() {
            for ctx in &contexts {
                // OpenFeature's Python SDK passes an empty targeting key on
                // as none at all; so does this.
                let mut ctx = ctx.clone();
                if ctx["targetingKey"] == "" {
                    ctx.as_object_mut().map(|m| m.remove("targetingKey"));
                }
                let c = Context::from_json(ctx.clone()).expect("generated context");
                let e = native.snapshot.evaluate(key, &c, ValueType::Any);
                let code = e.error.as_ref().map(|e| e.code);
                let (reason, code) = match (e.reason, code) {
                    (Reason::Disabled, _) if e.value.is_some() => (Reason::Static, None),
                    (Reason::Split, _) => (Reason::TargetingMatch, None),
                    (Reason::Error, Some(ErrorCode::TargetingKeyMissing)) => {
                        (Reason::Error, Some(ErrorCode::General))
                    }
                    other => other,
                };
                let mut expect = json!({
                    "value": e.value,
                    "variant": e.variant,
                    "reason": reason.as_str(),
                    "errorCode": code.map(ErrorCode::as_str),
                });
                // OpenFeature's SDK drops metadata from errors.
                if code.is_none() {
                    expect["metadata"] = json!(e.metadata());
                }
                cases.push(json!({
                    "flag": key,
                    "type": kind(&serde_json::to_value(&f.variants).expect("variants")),
                    "context": ctx,
                    "expect": expect,
                }));
            }
        }
        for (key, f) in t.document.flags.into_pairs() {
            flags.insert(key, serde_json::to_value(f).expect("flag"));
        }
    }
    assert!(
        left_out > 0 && !flags.is_empty(),
        "the generator exercises both outcomes"
    );
    let mut document = json!({"flags": flags, "metadata": {"team": "web"}});
    if providers == Bucketing::Cbor {
        document["bucketing"] = json!("cbor");
    }
    json!({"document": document, "cases": cases})
}

/// Writes the cases for `providers`, runs `cmd` on them, and asserts it
/// found no mismatch.
fn differential(mut cmd: Command, providers: Bucketing) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("cases.json");
    let cases = cases(0x5eed_f1a9, providers);
    std::fs::write(&path, serde_json::to_vec(&cases).expect("cases")).expect("write cases");
    let out = cmd.arg(&path).output().expect("run the flagd provider");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Set to keep the cases for a closer look.
    if let Ok(keep) = std::env::var("VEXIL_FLAGD_CASES") {
        std::fs::copy(&path, keep).expect("keep the cases");
    }
    assert!(
        out.status.success(),
        "the provider disagrees:\n{stdout}\n{stderr}"
    );
}

#[test]
fn python_flagd_provider_agrees_with_the_translation() {
    let python = std::env::var("VEXIL_FLAGD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/flagd-venv/bin/python"));
    if !python.exists() {
        assert!(
            !on_ci(),
            "the Python flagd provider is not installed at {}",
            python.display()
        );
        eprintln!("skipping: no Python flagd provider at {}", python.display());
        return;
    }
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/flagd-providers/python/differential.py"));
    differential(cmd, Bucketing::Cbor);
}

#[test]
fn javascript_flagd_provider_agrees_with_the_translation() {
    let dir = root().join("tests/flagd-providers/js");
    if !dir
        .join("node_modules/@openfeature/flagd-provider")
        .exists()
    {
        assert!(
            !on_ci(),
            "the JavaScript flagd provider is not installed in {}",
            dir.display()
        );
        eprintln!(
            "skipping: no JavaScript flagd provider in {}",
            dir.display()
        );
        return;
    }
    let mut cmd = Command::new("node");
    cmd.arg("differential.mjs").current_dir(&dir);
    differential(cmd, Bucketing::Concat);
}
