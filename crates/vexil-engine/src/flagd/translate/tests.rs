//! Tests of `translate`: the flagd JSON written for hand-picked flags, and
//! the reasons flags are left out.

use serde_json::{Value, json};

use super::*;

/// Translates the native document `doc` for `providers` and compares the
/// flagd document and the left-out flags (as `[key, code]`) with `expect`.
fn check(doc: Value, providers: Bucketing, expect_doc: Value, expect_left_out: Value) {
    let doc: Document = serde_json::from_value(doc).unwrap();
    let t = to_flagd(&doc, providers);
    let got = serde_json::to_value(&t.document).unwrap();
    assert_eq!(
        got,
        expect_doc,
        "{}",
        serde_json::to_string_pretty(&got).unwrap()
    );
    let left: Vec<Value> = t
        .left_out
        .iter()
        .map(|l| json!([l.flag, l.reason.code()]))
        .collect();
    assert_eq!(Value::Array(left), expect_left_out);
}

#[test]
fn static_off_and_default_flags() {
    check(
        json!({"metadata": {"team": "web"}, "flags": {
            "static": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"},
                       "metadata": {"owner": "ana"}},
            "nothing": {"variants": {"a": "x"}},
            "off": {"variants": {"on": true, "off": false}, "enabled": false,
                    "defaultServe": {"variant": "on"}},
            "off-with-variant": {"variants": {"on": true, "off": false}, "enabled": false,
                    "offVariant": "off", "defaultServe": {"variant": "on"}}
        }}),
        Bucketing::Concat,
        json!({"metadata": {"team": "web"}, "flags": {
            "static": {"state": "ENABLED", "variants": {"on": true, "off": false},
                       "defaultVariant": "on", "metadata": {"owner": "ana"}},
            "nothing": {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": null},
            "off": {"state": "DISABLED", "variants": {"on": true, "off": false},
                    "defaultVariant": null},
            "off-with-variant": {"state": "ENABLED", "variants": {"on": true, "off": false},
                    "defaultVariant": "off"}
        }}),
        json!([]),
    );
}

#[test]
fn targets_and_rules_become_one_if() {
    let s = |v: Value| json!({"===": [{"cat": [v]}, v]});
    let plan = json!({"var": "plan"});
    let item = json!({"var": ""});
    check(
        json!({"flags": {"f": {
            "variants": {"a": "A", "b": "B"},
            "targets": {"b": ["u1", "u2"]},
            "rules": [
                {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                 "serve": {"variant": "a"}},
                {"clauses": [{"attribute": "plan", "op": "startsWith", "values": ["ent"], "negate": true}],
                 "serve": {"variant": "b"}},
                {"clauses": [], "serve": {"variant": "a"}}
            ],
            "defaultServe": {"variant": "b"}
        }}}),
        Bucketing::Concat,
        json!({"flags": {"f": {
            "state": "ENABLED",
            "variants": {"a": "A", "b": "B"},
            "defaultVariant": "b",
            "targeting": {"if": [
                {"in": [{"var": "targetingKey"}, ["u1", "u2"]]}, "b",
                {"some": [{"merge": [plan]}, {"in": [item, ["pro"]]}]}, "a",
                {"and": [
                    {"!==": [plan, null]},
                    {"!": [{"some": [{"merge": [plan]}, {"and": [
                        s(item.clone()),
                        {"===": [{"substr": [item, 0, 3]}, "ent"]}
                    ]}]}]}
                ]}, "b",
                true, "a",
                null
            ]}
        }}}),
        json!([]),
    );
}

#[test]
fn segments_are_inlined() {
    check(
        json!({
            "segments": {"beta": {"included": ["u1"], "excluded": ["u2"],
                                  "rules": [{"clauses": [{"attribute": "org", "op": "exists"}]}]}},
            "flags": {"f": {
                "variants": {"on": true, "off": false},
                "rules": [{"clauses": [{"op": "inSegment", "values": ["beta"], "negate": true}],
                           "serve": {"variant": "on"}}],
                "defaultServe": {"variant": "off"}
            }}
        }),
        Bucketing::Concat,
        json!({"flags": {"f": {
            "state": "ENABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"if": [
                {"!": [{"if": [
                    {"in": [{"var": "targetingKey"}, ["u2"]]}, false,
                    {"in": [{"var": "targetingKey"}, ["u1"]]}, true,
                    {"!==": [{"var": "org"}, null]}
                ]}]}, "on",
                null
            ]}
        }}}),
        json!([]),
    );
}

#[test]
fn rollouts_hash_what_native_rollouts_hash() {
    let doc = json!({"flags": {
        "plain": {"variants": {"on": true, "off": false},
                  "defaultServe": {"rollout": {"weights": {"on": 12.5, "off": 87.5}}}},
        "salted": {"variants": {"on": true, "off": false},
                   "defaultServe": {"rollout": {"weights": {"on": 50, "off": 50}, "salt": "s1"}}},
        "by-org": {"variants": {"on": true, "off": false},
                   "defaultServe": {"rollout": {"weights": {"on": 50, "off": 50}, "bucketBy": "org"}}}
    }});
    let has_key = json!({"!==": [{"var": "targetingKey"}, null]});
    check(
        doc.clone(),
        Bucketing::Concat,
        json!({"flags": {
            "plain": {"state": "ENABLED", "variants": {"on": true, "off": false},
                      "defaultVariant": null,
                      "targeting": {"if": [has_key,
                          {"fractional": [{"cat": ["plain", {"var": "targetingKey"}]},
                                          ["on", 12500], ["off", 87500]]},
                          "vexil:targeting-key-missing"]}},
            "salted": {"state": "ENABLED", "variants": {"on": true, "off": false},
                      "defaultVariant": null,
                      "targeting": {"if": [has_key,
                          {"fractional": [{"cat": ["s1", {"var": "targetingKey"}]},
                                          ["on", 50000], ["off", 50000]]},
                          "vexil:targeting-key-missing"]}}
        }}),
        json!([["by-org", "bucket_by"]]),
    );
    let mut cbor = doc.clone();
    cbor["bucketing"] = json!("cbor");
    check(
        cbor,
        Bucketing::Cbor,
        json!({"bucketing": "cbor", "flags": {
            "plain": {"state": "ENABLED", "variants": {"on": true, "off": false},
                      "defaultVariant": null,
                      "targeting": {"if": [{"var": "targetingKey"},
                          {"fractional": [["on", 12500], ["off", 87500]]},
                          "vexil:targeting-key-missing"]}}
        }}),
        json!([["salted", "salt"], ["by-org", "bucket_by"]]),
    );
    check(
        doc,
        Bucketing::Cbor,
        json!({"bucketing": "cbor", "flags": {}}),
        json!([
            ["plain", "bucketing_scheme"],
            ["salted", "bucketing_scheme"],
            ["by-org", "bucketing_scheme"]
        ]),
    );
}

#[test]
fn what_has_no_exact_form_is_left_out() {
    let rule = |clause: Value| json!({"variants": {"a": "A"}, "rules": [{"clauses": [clause], "serve": {"variant": "a"}}]});
    check(
        json!({"flags": {
            "re": rule(json!({"attribute": "email", "op": "matches", "values": ["@x$"]})),
            "ver": rule(json!({"attribute": "v", "op": "semverGte", "values": ["1.2.3"]})),
            "date": rule(json!({"attribute": "t", "op": "after", "values": [0]})),
            "num-in": rule(json!({"attribute": "n", "op": "in", "values": [1, "1"]})),
            "index": rule(json!({"attribute": "tags.0", "op": "exists"})),
            "len": rule(json!({"attribute": "name.length", "op": "exists"})),
            "flagd": rule(json!({"attribute": "$flagd.flagKey", "op": "exists"})),
            "pre": {"variants": {"a": "A"}, "prerequisites": [{"flag": "re", "variant": "a"}]},
            "arr": {"variants": {"a": [1]}},
            "emoji": rule(json!({"attribute": "name", "op": "endsWith", "values": ["x\u{1F600}"]})),
            "ok": rule(json!({"attribute": "n", "op": "gt", "values": [1.5]}))
        }}),
        Bucketing::Concat,
        json!({"flags": {"ok": {
            "state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": null,
            "targeting": {"if": [
                {"some": [{"merge": [{"var": "n"}]}, {"and": [
                    {"and": [
                        {"!": [{"===": [{"cat": [{"var": ""}]}, {"var": ""}]}]},
                        {"!": {"in": [{"cat": [{"var": ""}]},
                                      ["true", "false", "True", "False", "[object Object]"]]}},
                        {"===": [{"+": [{"var": ""}]}, {"var": ""}]}
                    ]},
                    {">": [{"var": ""}, 1.5]}
                ]}]}, "a",
                null
            ]}
        }}}),
        json!([
            ["re", "matches"],
            ["ver", "semver"],
            ["date", "dates"],
            ["num-in", "in_non_string"],
            ["index", "attribute_path"],
            ["len", "attribute_path"],
            ["flagd", "attribute_path"],
            ["pre", "prerequisites"],
            ["arr", "array_variant"],
            ["emoji", "non_bmp_string"]
        ]),
    );
}

#[test]
fn flagd_targeting_passes_through() {
    let targeting = json!({"fractional": [["a", 1], ["b", 1]]});
    let doc = json!({"flags": {"f": {
        "variants": {"a": "A", "b": "B"},
        "targeting": targeting,
        "defaultServe": {"variant": "a"}
    }}});
    check(
        doc.clone(),
        Bucketing::Concat,
        json!({"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"},
                               "defaultVariant": "a", "targeting": targeting}}}),
        json!([]),
    );
    check(
        doc,
        Bucketing::Cbor,
        json!({"bucketing": "cbor", "flags": {}}),
        json!([["f", "bucketing_scheme"]]),
    );
}

#[test]
fn codes_and_messages_are_stable() {
    assert_eq!(Untranslatable::BucketingScheme.code(), "bucketing_scheme");
    assert_eq!(
        Untranslatable::Matches.to_string(),
        "regular expressions have no flagd form"
    );
}
