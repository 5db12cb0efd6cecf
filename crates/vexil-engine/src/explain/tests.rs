//! Explain-mode traces for small documents: each test gives a document, a
//! flag and a context, and the trace expected as JSON.

use serde_json::{Value, json};

use crate::{Context, Format, Reason, ValueType, bucket, load, murmur3_32};

/// Explains `flag` of `doc` (any format) for `ctx`; checks the evaluation
/// against [`crate::evaluate`] and the serialised trace against `expect`.
fn check(doc: Value, flag: &str, ctx: Value, expect: Value) {
    let snapshot = load(&doc.to_string(), Format::Auto).unwrap().snapshot;
    let ctx = Context::from_json(ctx).unwrap();
    let (eval, trace) = snapshot.explain(flag, &ctx, ValueType::Any);
    let plain = snapshot.evaluate(flag, &ctx, ValueType::Any);
    assert_eq!(
        (
            eval.value,
            eval.variant,
            eval.reason,
            &eval.error,
            eval.matched
        ),
        (
            plain.value,
            plain.variant,
            plain.reason,
            &plain.error,
            plain.matched
        )
    );
    let got = serde_json::to_value(&trace).unwrap();
    assert_eq!(
        got,
        expect,
        "got:\n{}",
        serde_json::to_string_pretty(&got).unwrap()
    );
}

fn on_off(extra: Value) -> Value {
    let mut flag =
        json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"}});
    if let (Value::Object(f), Value::Object(e)) = (&mut flag, extra) {
        f.extend(e);
    }
    flag
}

#[test]
fn a_rule_stops_at_its_first_false_clause() {
    let rule = json!({"name": "canadian pros", "clauses": [
        {"attribute": "country", "op": "in", "values": ["CA"]},
        {"attribute": "plan", "op": "notIn", "values": ["free", "trial"]},
        {"attribute": "user.age", "op": "gte", "values": [18]}
    ], "serve": {"variant": "on"}});
    check(
        json!({"flags": {"f": on_off(json!({"rules": [rule]}))}}),
        "f",
        json!({"country": "CA", "plan": "free", "user": {"age": 30}}),
        json!({"flag": "f", "steps": [
            {"step": "rule", "index": 0, "name": "canadian pros", "clauses": [
                {"attribute": "country", "operator": "in", "negate": false, "values": ["CA"], "actual": "CA", "result": true},
                {"attribute": "plan", "operator": "notIn", "negate": false, "values": ["free", "trial"], "actual": "free", "result": false}
            ], "notEvaluated": 1, "matched": false},
            {"step": "serve", "by": "default", "variant": "off"}
        ]}),
    );
}

#[test]
fn an_absent_attribute_has_no_actual_value() {
    let rule = json!({"clauses": [
        {"attribute": "plan", "op": "exists", "negate": true},
        {"attribute": "beta", "op": "in", "values": [true]}
    ], "serve": {"variant": "on"}});
    check(
        json!({"flags": {"f": on_off(json!({"rules": [rule]}))}}),
        "f",
        json!({"beta": null}),
        json!({"flag": "f", "steps": [
            {"step": "rule", "index": 0, "clauses": [
                {"attribute": "plan", "operator": "exists", "negate": true, "values": [], "result": true},
                {"attribute": "beta", "operator": "in", "negate": false, "values": [true], "actual": null, "result": false}
            ], "notEvaluated": 0, "matched": false},
            {"step": "serve", "by": "default", "variant": "off"}
        ]}),
    );
}

#[test]
fn an_individual_target_decides_before_rules() {
    let flag = on_off(json!({
        "targets": {"off": ["u0"], "on": ["u1", "u2"]},
        "rules": [{"clauses": [], "serve": {"variant": "off"}}]
    }));
    check(
        json!({"flags": {"f": flag.clone()}}),
        "f",
        json!({"targetingKey": "u2"}),
        json!({"flag": "f", "steps": [
            {"step": "targets", "targetingKey": "u2", "variant": "on"},
            {"step": "serve", "by": "target", "variant": "on"}
        ]}),
    );
    check(
        json!({"flags": {"f": flag}}),
        "f",
        json!({}),
        json!({"flag": "f", "steps": [
            {"step": "targets", "targetingKey": null, "variant": null},
            {"step": "rule", "index": 0, "clauses": [], "notEvaluated": 0, "matched": true},
            {"step": "serve", "by": "rule", "rule": 0, "variant": "off"}
        ]}),
    );
}

#[test]
fn a_rollout_shows_its_bucket_and_the_weights_walked() {
    let flag = json!({"variants": {"on": true, "off": false},
        "defaultServe": {"rollout": {"weights": {"on": 30, "off": 70}}}});
    // The same arithmetic by hand: the flag key salts the targeting key.
    let hash = murmur3_32(&[b"f", b"user-1"], 0);
    let b = bucket(hash, 100_000);
    assert_eq!((hash, b), (1_431_628_768, 33_332));
    check(
        json!({"flags": {"f": flag}}),
        "f",
        json!({"targetingKey": "user-1"}),
        json!({"flag": "f", "steps": [
            {"step": "serve", "by": "default", "variant": "off", "rollout": {
                "bucketBy": "targetingKey", "value": "user-1", "salt": "f",
                "hash": 1_431_628_768_u32, "bucket": 33_332, "total": 100_000, "percent": 33.332,
                "weights": [
                    {"variant": "on", "weight": 30_000, "percent": 30.0, "from": 0, "to": 30_000},
                    {"variant": "off", "weight": 70_000, "percent": 70.0, "from": 30_000, "to": 100_000}
                ],
                "variant": "off"
            }}
        ]}),
    );
}

#[test]
fn a_rollout_by_attribute_with_a_salt() {
    let flag = on_off(json!({"rules": [{"clauses": [], "serve": {"rollout": {
        "weights": {"on": 30, "off": 70}, "bucketBy": "org.id", "salt": "s"}}}]}));
    let hash = murmur3_32(&[b"s", b"42"], 0);
    let b = bucket(hash, 100_000);
    let snapshot = load(&json!({"flags": {"f": flag}}).to_string(), Format::Native)
        .unwrap()
        .snapshot;
    let ctx = Context::from_json(json!({"org": {"id": 42}})).unwrap();
    let (eval, trace) = snapshot.explain("f", &ctx, ValueType::Bool);
    let got = serde_json::to_value(&trace).unwrap();
    let rollout = &got["steps"][1]["rollout"];
    assert_eq!(rollout["bucketBy"], "org.id");
    assert_eq!(rollout["value"], 42);
    assert_eq!(rollout["salt"], "s");
    assert_eq!(rollout["bucket"], b);
    let want = if b < 30_000 { "on" } else { "off" };
    assert_eq!(
        (eval.variant, &rollout["variant"]),
        (Some(want), &json!(want))
    );
}

#[test]
fn an_unmet_prerequisite_serves_the_off_variant() {
    let doc = json!({"flags": {
        "base": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"},
            "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": {"variant": "on"}}]},
        "f": on_off(json!({"offVariant": "off", "prerequisites": [{"flag": "base", "variant": "on"}],
            "rules": [{"clauses": [], "serve": {"variant": "on"}}]}))
    }});
    check(
        doc,
        "f",
        json!({"plan": "free"}),
        json!({"flag": "f", "steps": [
            {"step": "prerequisite", "index": 0, "flag": "base", "requiredVariant": "on",
             "enabled": true, "actualVariant": "off", "met": false, "steps": [
                {"step": "rule", "index": 0, "clauses": [
                    {"attribute": "plan", "operator": "in", "negate": false, "values": ["pro"], "actual": "free", "result": false}
                ], "notEvaluated": 0, "matched": false},
                {"step": "serve", "by": "default", "variant": "off"}
            ]},
            {"step": "serve", "by": "offVariant", "variant": "off"}
        ]}),
    );
}

#[test]
fn a_disabled_flag() {
    check(
        json!({"flags": {"f": on_off(json!({"enabled": false, "offVariant": "off"})),
                         "g": on_off(json!({"enabled": false}))}}),
        "f",
        json!({}),
        json!({"flag": "f", "steps": [
            {"step": "disabled"},
            {"step": "serve", "by": "offVariant", "variant": "off"}
        ]}),
    );
    check(
        json!({"flags": {"g": on_off(json!({"enabled": false}))}}),
        "g",
        json!({}),
        json!({"flag": "g", "steps": [
            {"step": "disabled"},
            {"step": "serve", "by": "offVariant", "variant": null}
        ]}),
    );
}

#[test]
fn segment_clauses_say_why_the_context_is_in_or_out() {
    let doc = json!({
        "segments": {
            "staff": {"excluded": ["intern"], "rules": [{"clauses": [{"attribute": "email", "op": "endsWith", "values": ["@corp.example"]}]}]},
            "beta": {"included": ["u9"], "rules": [
                {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}]},
                {"clauses": [{"op": "inSegment", "values": ["staff"]}]}
            ]}
        },
        "flags": {"f": on_off(json!({"rules": [
            {"clauses": [{"op": "inSegment", "values": ["beta"]}], "serve": {"variant": "on"}}
        ]}))}
    });
    // beta's second rule asks whether the context is in staff.
    let staff_clause = json!({"operator": "inSegment", "negate": false, "values": ["staff"], "segments": [
        {"segment": "staff", "membership": "rule", "rules": [
            {"index": 0, "clauses": [
                {"attribute": "email", "operator": "endsWith", "negate": false,
                 "values": ["@corp.example"], "actual": "a@corp.example", "result": true}
            ], "notEvaluated": 0, "matched": true}
        ]}
    ], "result": true});
    check(
        doc.clone(),
        "f",
        json!({"targetingKey": "u1", "plan": "free", "email": "a@corp.example"}),
        json!({"flag": "f", "steps": [
            {"step": "rule", "index": 0, "clauses": [
                {"operator": "inSegment", "negate": false, "values": ["beta"], "segments": [
                    {"segment": "beta", "membership": "rule", "rules": [
                        {"index": 0, "clauses": [
                            {"attribute": "plan", "operator": "in", "negate": false, "values": ["pro"], "actual": "free", "result": false}
                        ], "notEvaluated": 0, "matched": false},
                        {"index": 1, "clauses": [staff_clause], "notEvaluated": 0, "matched": true}
                    ]}
                ], "result": true}
            ], "notEvaluated": 0, "matched": true},
            {"step": "serve", "by": "rule", "rule": 0, "variant": "on"}
        ]}),
    );
    // An included key needs no rule; an excluded one loses to everything.
    let included = json!({"operator": "inSegment", "negate": false, "values": ["beta"],
        "segments": [{"segment": "beta", "membership": "included"}], "result": true});
    check(
        doc.clone(),
        "f",
        json!({"targetingKey": "u9"}),
        json!({"flag": "f", "steps": [
            {"step": "rule", "index": 0, "clauses": [included], "notEvaluated": 0, "matched": true},
            {"step": "serve", "by": "rule", "rule": 0, "variant": "on"}
        ]}),
    );
    let snapshot = load(&doc.to_string(), Format::Native).unwrap().snapshot;
    let ctx =
        Context::from_json(json!({"targetingKey": "intern", "email": "i@corp.example"})).unwrap();
    let trace = serde_json::to_value(snapshot.explain("f", &ctx, ValueType::Any).1).unwrap();
    let beta = &trace["steps"][0]["clauses"][0]["segments"][0];
    assert_eq!(beta["membership"], "notMatched");
    assert_eq!(
        beta["rules"][1]["clauses"][0]["segments"][0]["membership"],
        "excluded"
    );
    assert_eq!(beta["rules"][1]["matched"], false);
}

#[test]
fn a_flag_not_found() {
    check(
        json!({"flags": {}}),
        "nope",
        json!({}),
        json!({"flag": "nope", "steps": [
            {"step": "error", "code": "FLAG_NOT_FOUND", "message": "flag `nope` not found"}
        ]}),
    );
}

#[test]
fn a_type_mismatch_follows_the_serve_that_picked_the_value() {
    let snapshot = load(
        &json!({"flags": {"f": on_off(json!({}))}}).to_string(),
        Format::Native,
    )
    .unwrap()
    .snapshot;
    let (eval, trace) = snapshot.explain("f", &Context::new(), ValueType::String);
    assert_eq!(eval.reason, Reason::Error);
    assert_eq!(
        serde_json::to_value(trace).unwrap(),
        json!({"flag": "f", "steps": [
            {"step": "serve", "by": "default", "variant": "off"},
            {"step": "error", "code": "TYPE_MISMATCH", "message": "flag `f` is of type boolean, not string"}
        ]})
    );
}

#[test]
fn a_rollout_without_a_targeting_key_fails() {
    check(
        json!({"flags": {"f": {"variants": {"on": true, "off": false},
            "defaultServe": {"rollout": {"weights": {"on": 30, "off": 70}}}}}}),
        "f",
        json!({}),
        json!({"flag": "f", "steps": [
            {"step": "error", "code": "TARGETING_KEY_MISSING",
             "message": "flag `f` has a percentage rollout and the context has no targeting key"}
        ]}),
    );
}

#[test]
fn flagd_targeting_is_traced_by_its_result_and_fractional_buckets() {
    let doc = json!({"flags": {"f": {"state": "ENABLED", "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "targeting": {"if": [{"in": [{"var": "country"}, ["CA"]]}, {"fractional": [["on", 30], ["off", 70]]}, null]}}}});
    let hash = murmur3_32(&[b"f", b"user-1"], 0);
    let b = bucket(hash, 100);
    assert_eq!(b, 33);
    check(
        doc.clone(),
        "f",
        json!({"targetingKey": "user-1", "country": "CA"}),
        json!({"flag": "f", "steps": [
            {"step": "targeting", "result": "off", "failed": false, "fractional": [{
                "bucketBy": "targetingKey", "value": "user-1", "salt": "f",
                "hash": hash, "bucket": 33, "total": 100, "percent": 33.0,
                "weights": [
                    {"variant": "on", "weight": 30, "percent": 30.0, "from": 0, "to": 30},
                    {"variant": "off", "weight": 70, "percent": 70.0, "from": 30, "to": 100}
                ],
                "variant": "off"
            }]},
            {"step": "serve", "by": "targeting", "variant": "off"}
        ]}),
    );
    check(
        doc,
        "f",
        json!({"targetingKey": "user-1", "country": "US"}),
        json!({"flag": "f", "steps": [
            {"step": "targeting", "result": null, "failed": false},
            {"step": "serve", "by": "default", "variant": "off"}
        ]}),
    );
}

#[test]
fn flagd_fractional_with_an_explicit_bucketing_value() {
    let doc = json!({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1, "b": 2},
        "defaultVariant": "a",
        "targeting": {"fractional": [{"var": "email"}, ["a", 1], ["b", 1]]}}}});
    let snapshot = load(&doc.to_string(), Format::Flagd).unwrap().snapshot;
    let ctx = Context::from_json(json!({"email": "x@example.com"})).unwrap();
    let (eval, trace) = snapshot.explain("f", &ctx, ValueType::Int);
    let got = serde_json::to_value(&trace).unwrap();
    let pick = &got["steps"][0]["fractional"][0];
    assert_eq!(pick["bucketBy"], "value");
    assert_eq!(pick["value"], "x@example.com");
    assert_eq!(pick["salt"], Value::Null);
    assert_eq!(pick["hash"], murmur3_32(&[b"x@example.com"], 0));
    assert_eq!(pick["variant"], json!(eval.variant));
}

#[test]
fn explain_all_explains_every_flag_in_order() {
    let doc = json!({"flags": {"a": on_off(json!({})), "b": on_off(json!({"enabled": false}))}});
    let snapshot = load(&doc.to_string(), Format::Native).unwrap().snapshot;
    let all = snapshot.explain_all(&Context::new());
    let flags: Vec<&str> = all.iter().map(|(_, t)| t.flag.as_str()).collect();
    assert_eq!(flags, ["a", "b"]);
    assert_eq!(all[1].0.reason, Reason::Disabled);
}

#[test]
fn clause_values_are_shown_exactly_as_written() {
    let values = json!([1, 1.0, 0.1, -7, 18_446_744_073_709_551_615_u64, "x", true, null, {"b": [1], "a": 2}]);
    let rule = json!({"clauses": [{"attribute": "v", "op": "in", "values": values}], "serve": {"variant": "on"}});
    check(
        json!({"flags": {"f": on_off(json!({"rules": [rule]}))}}),
        "f",
        json!({"v": {"b": [1], "a": 2}}),
        json!({"flag": "f", "steps": [
            {"step": "rule", "index": 0, "clauses": [
                {"attribute": "v", "operator": "in", "negate": false, "values": values,
                 "actual": {"b": [1], "a": 2}, "result": true}
            ], "notEvaluated": 0, "matched": true},
            {"step": "serve", "by": "rule", "rule": 0, "variant": "on"}
        ]}),
    );
}

#[test]
fn a_broken_flag_of_a_served_file_is_only_its_error() {
    let doc: crate::Document = serde_json::from_value(json!({"flags": {
        "ok": on_off(json!({})),
        "broken": on_off(json!({"rules": [{"clauses": [{"attribute": "n", "op": "lt", "values": ["x"]}], "serve": {"variant": "on"}}]}))
    }}))
    .unwrap();
    let snapshot = crate::compile_serving(&doc).unwrap().snapshot;
    let (eval, trace) = snapshot.explain("broken", &Context::new(), ValueType::Any);
    assert_eq!(eval.reason, Reason::Error);
    assert!(matches!(
        trace.steps.as_slice(),
        [crate::Step::Error {
            code: "PARSE_ERROR",
            ..
        }]
    ));
    let (_, trace) = snapshot.explain("ok", &Context::new(), ValueType::Any);
    assert_eq!(
        serde_json::to_value(trace).unwrap(),
        json!({"flag": "ok", "steps": [{"step": "serve", "by": "default", "variant": "off"}]})
    );
}
