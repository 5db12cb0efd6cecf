//! Differential test of `flagd::to_flagd`: arbitrary native documents and
//! contexts, evaluated natively and through their flagd translation read
//! back as a provider would receive it (JSON text), give the same value and
//! variant for every translated flag.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vexil_engine::flagd::to_flagd;
use vexil_engine::model::{Bucketing, Document};
use vexil_engine::{Context, ErrorCode, Evaluation, Format, Reason, ValueType, compile, load};

/// Attribute paths clauses use; the last ones are left out by design.
const ATTRIBUTES: &[&str] = &[
    "plan",
    "age",
    "tags",
    "org.name",
    "email",
    "targetingKey",
    "tags.0",
];

const STRINGS: &[&str] = &["", "a", "ab", "pro", "pro-x", "1", "true", "x@y.z"];

fn string() -> impl Strategy<Value = Value> + Clone {
    prop::sample::select(STRINGS).prop_map(Value::from)
}

fn number() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        (-3i64..20).prop_map(Value::from),
        prop::sample::select(&[-1.5f64, 0.0, 1.0, 1.5, 2.25, 18.0][..]).prop_map(Value::from),
    ]
}

/// A context value: every JSON type, arrays of them, and objects with a
/// `name`.
fn context_value() -> impl Strategy<Value = Value> + Clone {
    let scalar = prop_oneof![
        3 => string(),
        3 => number(),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ];
    prop_oneof![
        6 => scalar.clone(),
        2 => prop::collection::vec(scalar.clone(), 0..4).prop_map(Value::Array),
        1 => scalar.prop_map(|name| json!({ "name": name })),
    ]
}

fn context() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(&["u1", "u2", "u3", "", "user-42"][..])),
        prop::collection::vec(
            (
                prop::sample::select(&["plan", "age", "tags", "org", "email"][..]),
                context_value(),
            ),
            0..5,
        ),
    )
        .prop_map(|(key, attrs)| {
            let mut m = Map::new();
            for (k, v) in attrs {
                m.insert(k.to_owned(), v);
            }
            if let Some(key) = key {
                m.insert("targetingKey".into(), Value::from(key));
            }
            Value::Object(m)
        })
}

/// A clause with values that suit its operator; `segments` is how many
/// segments it may name (those defined before it).
fn clause(segments: usize) -> impl Strategy<Value = Value> {
    let attr = prop::sample::select(ATTRIBUTES);
    let strings = prop::collection::vec(string(), 1..3);
    let numbers = prop::collection::vec(number(), 1..3);
    let ops = prop_oneof![
        strings.clone().prop_map(|v| ("in", v)),
        strings.clone().prop_map(|v| ("notIn", v)),
        prop::collection::vec(prop_oneof![string(), number()], 1..3).prop_map(|v| ("in", v)),
        strings.clone().prop_map(|v| ("startsWith", v)),
        strings.clone().prop_map(|v| ("endsWith", v)),
        strings.clone().prop_map(|v| ("contains", v)),
        Just(("matches", vec![json!("^p")])),
        numbers.clone().prop_map(|v| ("lt", v)),
        numbers.clone().prop_map(|v| ("lte", v)),
        numbers.clone().prop_map(|v| ("gt", v)),
        numbers.prop_map(|v| ("gte", v)),
        Just(("semverGte", vec![json!("1.2.0")])),
        Just(("before", vec![json!(1_700_000_000)])),
        Just(("exists", vec![])),
    ];
    let plain = (attr, ops, any::<bool>()).prop_map(|(attribute, (op, values), negate)| {
        json!({"attribute": attribute, "op": op, "values": values, "negate": negate})
    });
    if segments == 0 {
        plain.boxed()
    } else {
        prop_oneof![
            4 => plain,
            1 => (0..segments, any::<bool>()).prop_map(|(i, negate)| {
                json!({"op": "inSegment", "values": [format!("s{i}")], "negate": negate})
            }),
        ]
        .boxed()
    }
}

fn clauses(segments: usize) -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(clause(segments), 0..3)
}

fn segments() -> impl Strategy<Value = Map<String, Value>> {
    let keys = prop::collection::vec(prop::sample::select(&["u1", "u2", "u3", ""][..]), 0..2);
    (
        keys.clone(),
        keys,
        clauses(0),
        clauses(0),
        clauses(1),
        any::<bool>(),
    )
        .prop_map(|(included, excluded, a, b, c, two)| {
            let mut m = Map::new();
            m.insert(
                "s0".into(),
                json!({"included": included, "excluded": excluded, "rules": [{"clauses": a}]}),
            );
            if two {
                m.insert(
                    "s1".into(),
                    json!({"rules": [{"clauses": b}, {"clauses": c}]}),
                );
            }
            m
        })
}

/// Variants of one of the four types (and, rarely, array values).
fn variants() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"on": true, "off": false})),
        Just(json!({"a": "A", "b": "B", "c": "C"})),
        Just(json!({"one": 1, "half": 2.5, "neg": -3})),
        Just(json!({"x": {"x": 1}, "y": {"y": [1, "two"]}})),
        Just(json!({"l": [1], "m": [2]})),
    ]
}

/// A serve among `names`: a variant or a rollout.
fn serve(names: Vec<String>) -> impl Strategy<Value = Value> {
    let n = names.len();
    let variant = prop::sample::select(names.clone()).prop_map(|v| json!({ "variant": v }));
    let rollout = (
        prop::collection::vec(0u64..=100_000, n - 1),
        prop::option::of(prop::sample::select(&["s1", "s2"][..])),
        prop::option::weighted(
            0.2,
            prop::sample::select(&["plan", "age", "targetingKey"][..]),
        ),
    )
        .prop_map(move |(mut cuts, salt, bucket_by)| {
            cuts.sort_unstable();
            cuts.push(100_000);
            let mut weights = Map::new();
            let mut last = 0;
            for (name, cut) in names.iter().zip(cuts) {
                weights.insert(name.clone(), json!((cut - last) as f64 / 1000.0));
                last = cut;
            }
            let mut r = json!({ "weights": weights });
            if let Some(s) = salt {
                r["salt"] = json!(s);
            }
            if let Some(b) = bucket_by {
                r["bucketBy"] = json!(b);
            }
            json!({ "rollout": r })
        });
    prop_oneof![2 => variant, 1 => rollout]
}

fn flag(segments: usize) -> impl Strategy<Value = Value> {
    variants().prop_flat_map(move |variants| {
        let names: Vec<String> = variants
            .as_object()
            .map_or_else(Vec::new, |m| m.keys().cloned().collect());
        let rule = (clauses(segments), serve(names.clone()))
            .prop_map(|(clauses, serve)| json!({"clauses": clauses, "serve": serve}));
        let targeting = prop_oneof![
            Just(json!({"if": [{"in": [{"var": "plan"}, ["pro"]]}, names[0], null]})),
            Just(json!({"fractional": [[names[0], 1], [names[1], 3]]})),
        ];
        (
            Just(variants),
            prop::sample::select(names.clone()),
            prop::option::of(prop::sample::select(names.clone())),
            prop::collection::vec(prop::sample::select(&["u1", "u2"][..]), 0..2),
            prop::collection::vec(rule, 0..4),
            prop::option::of(serve(names.clone())),
            (
                prop::bool::weighted(0.8),
                prop::option::weighted(0.1, targeting),
                prop::bool::weighted(0.05),
                prop::collection::vec((prop::sample::select(&["team", "tier"][..]), 0..3), 0..2),
            ),
        )
            .prop_map(
                |(variants, target, off, keys, rules, default, (enabled, targeting, pre, meta))| {
                    let mut f = json!({"variants": variants, "enabled": enabled});
                    if let Some(off) = off {
                        f["offVariant"] = json!(off);
                    }
                    let meta: Map<String, Value> = meta
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), json!(v)))
                        .collect();
                    f["metadata"] = Value::Object(meta);
                    if pre {
                        f["prerequisites"] = json!([{"flag": "f0", "variant": "never"}]);
                    }
                    if let Some(t) = targeting {
                        f["targeting"] = t;
                        if let Some(d) = default.filter(|d| d.get("variant").is_some()) {
                            f["defaultServe"] = d;
                        }
                        return f;
                    }
                    if !keys.is_empty() {
                        f["targets"] = json!({ target: keys });
                    }
                    f["rules"] = json!(rules);
                    if let Some(d) = default {
                        f["defaultServe"] = d;
                    }
                    f
                },
            )
    })
}

fn document() -> impl Strategy<Value = Value> {
    (
        segments(),
        prop::collection::vec(flag(2), 1..5),
        any::<bool>(),
        prop::option::of(Just(json!({"team": "web", "env": "prod"}))),
    )
        .prop_map(|(segments, flags, cbor, meta)| {
            let mut fm = Map::new();
            for (i, f) in flags.into_iter().enumerate() {
                fm.insert(format!("f{i}"), f);
            }
            let mut doc = json!({"segments": segments, "flags": fm});
            if cbor {
                doc["bucketing"] = json!("cbor");
            }
            if let Some(m) = meta {
                doc["metadata"] = m;
            }
            doc
        })
}

/// The reason flagd gives where native evaluation gives `native`.
fn flagd_reason(native: &Evaluation<'_>) -> (Reason, Option<ErrorCode>) {
    let code = native.error.as_ref().map(|e| e.code);
    match (native.reason, code) {
        (Reason::Disabled, _) if native.value.is_some() => (Reason::Static, None),
        (Reason::Split, _) => (Reason::TargetingMatch, None),
        (Reason::Error, Some(ErrorCode::TargetingKeyMissing)) => {
            (Reason::Error, Some(ErrorCode::General))
        }
        (r, c) => (r, c),
    }
}

fn check(doc: &Value, providers: Bucketing, contexts: &[Value]) -> Result<(), TestCaseError> {
    let typed: Document =
        serde_json::from_value(doc.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Ok(native) = compile(&typed) else {
        // Only documents that compile are stored, so only they are translated.
        return Err(TestCaseError::reject("document does not compile"));
    };
    let t = to_flagd(&typed, providers);
    // Every flag is translated or left out, never both.
    let mut seen: Vec<&str> = t.document.flags.keys().collect();
    seen.extend(t.left_out.iter().map(|l| l.flag.as_str()));
    seen.sort_unstable();
    let mut all: Vec<&str> = typed.flags.keys().collect();
    all.sort_unstable();
    prop_assert_eq!(seen, all);
    // Read back as a provider receives it: JSON text.
    let text =
        serde_json::to_string(&t.document).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let flagd =
        load(&text, Format::Flagd).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
    prop_assert!(flagd.warnings.is_empty(), "{:?}", flagd.warnings);
    for ctx in contexts {
        let c = Context::from_json(ctx.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for key in t.document.flags.keys() {
            let a = native.snapshot.evaluate(key, &c, ValueType::Any);
            let b = flagd.snapshot.evaluate(key, &c, ValueType::Any);
            let why = || {
                format!(
                    "flag {key}, context {ctx}\nnative: {}\nflagd: {text}",
                    doc["flags"][key]
                )
            };
            prop_assert_eq!(a.value, b.value, "{}", why());
            prop_assert_eq!(a.variant, b.variant, "{}", why());
            prop_assert_eq!(
                flagd_reason(&a),
                (b.reason, b.error.as_ref().map(|e| e.code)),
                "{}",
                why()
            );
            prop_assert_eq!(a.metadata(), b.metadata(), "{}", why());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn translated_flags_evaluate_as_native_ones(
        doc in document(),
        cbor_providers in any::<bool>(),
        contexts in prop::collection::vec(context(), 1..12),
    ) {
        let providers = if cbor_providers { Bucketing::Cbor } else { Bucketing::Concat };
        check(&doc, providers, &contexts)?;
    }
}
