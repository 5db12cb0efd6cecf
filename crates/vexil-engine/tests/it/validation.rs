//! Validation: every problem reported at once, each at its exact place.

use vexil_engine::{Format, LoadError, Pointer, load, locate};

/// Loads `doc` and compares the reported problems, one per line.
fn check(doc: &str, expect: &[&str]) {
    let got = match load(doc, Format::Auto) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    };
    assert_eq!(got, expect, "document:\n{doc}");
}

#[test]
fn a_valid_document_has_no_problems() {
    check(
        r#"{"flags": {"checkout": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"}}}}"#,
        &[],
    );
}

#[test]
fn every_semantic_problem_is_reported_with_its_place() {
    let doc = r#"{
      "segments": {"beta": {"rules": [{"clauses": [{"op": "inSegment", "values": ["nope"]}]}]}},
      "flags": {
        "checkout": {
          "variants": {"on": true, "off": "no"},
          "offVariant": "gone",
          "defaultServe": {"rollout": {"weights": {"on": 60, "off": 50}}},
          "targets": {"missing": ["u1"], "on": ["u2", "u2"]},
          "rules": [
            {"clauses": [{"attribute": "email", "op": "matches", "values": ["("]}], "serve": {"variant": "on"}},
            {"clauses": [
              {"attribute": "v", "op": "semverGt", "values": ["one.two"]},
              {"attribute": "d", "op": "before", "values": ["someday"]},
              {"attribute": "n", "op": "lt", "values": ["ten"]},
              {"attribute": "", "op": "in", "values": ["x"]},
              {"attribute": "a..b", "op": "exists", "values": [1]},
              {"op": "inSegment", "values": ["unknown"]}
            ], "serve": {"variant": "maybe"}}
          ],
          "prerequisites": [{"flag": "checkout", "variant": "on"}, {"flag": "ghost", "variant": "on"}],
          "metadata": {"nested": {"no": 1}}
        },
        "bad key!": {"variants": {"a": 1}, "defaultServe": {"variant": "a"}},
        "weights": {"variants": {"a": 1, "b": 2}, "defaultServe": {"rollout": {"weights": {"a": 33.3333, "b": -1}, "bucketBy": ""}}}
      }
    }"#;
    check(
        doc,
        &[
            "/flags/bad key!: invalid flag key `bad key!`: use letters, digits, `_`, `-`, `.` and `:`, starting with a letter or digit",
            "/segments/beta/rules/0/clauses/0/values/0: unknown segment `nope`",
            "/flags/checkout/variants/off: variant value must be of the flag's type boolean, found string",
            "/flags/checkout/offVariant: unknown variant `gone`",
            "/flags/checkout/targets/missing: unknown variant `missing`",
            "/flags/checkout/targets/on/1: targeting key `u2` is already targeted by variant `on`",
            "/flags/checkout/rules/0/clauses/0/values/0: invalid regular expression: regex parse error: ( ^ error: unclosed group",
            "/flags/checkout/rules/1/clauses/0/values/0: invalid semantic version `one.two`",
            "/flags/checkout/rules/1/clauses/1/values/0: invalid date \"someday\": use an RFC 3339 string or Unix seconds",
            "/flags/checkout/rules/1/clauses/2/values/0: expected a number, found string",
            "/flags/checkout/rules/1/clauses/3/attribute: attribute must not be empty",
            "/flags/checkout/rules/1/clauses/4/attribute: attribute `a..b` has an empty path segment",
            "/flags/checkout/rules/1/clauses/4/values: `exists` takes no values",
            "/flags/checkout/rules/1/clauses/5/values/0: unknown segment `unknown`",
            "/flags/checkout/rules/1/serve/variant: unknown variant `maybe`",
            "/flags/checkout/defaultServe/rollout/weights: weights add up to 110%, not 100%",
            "/flags/checkout/prerequisites/0/flag: a flag cannot be its own prerequisite",
            "/flags/checkout/prerequisites/1/flag: unknown flag `ghost`",
            "/flags/checkout/metadata/nested: metadata values must be strings, numbers or booleans, found object",
            "/flags/weights/defaultServe/rollout/weights/a: weight 33.3333 has more than three decimals",
            "/flags/weights/defaultServe/rollout/weights/b: weight must be a percentage between 0 and 100, found -1",
            "/flags/weights/defaultServe/rollout/bucketBy: attribute must not be empty",
        ],
    );
}

#[test]
fn prerequisite_and_segment_cycles_are_refused() {
    check(
        r#"{
          "segments": {
            "a": {"rules": [{"clauses": [{"op": "inSegment", "values": ["b"]}]}]},
            "b": {"rules": [{"clauses": [{"op": "inSegment", "values": ["a"]}]}]}
          },
          "flags": {
            "x": {"variants": {"on": true}, "defaultServe": {"variant": "on"}, "prerequisites": [{"flag": "y", "variant": "on"}]},
            "y": {"variants": {"on": true}, "defaultServe": {"variant": "on"}, "prerequisites": [{"flag": "z", "variant": "on"}]},
            "z": {"variants": {"on": true}, "defaultServe": {"variant": "on"}, "prerequisites": [{"flag": "x", "variant": "on"}]}
          }
        }"#,
        &[
            "/segments/a: segments reference each other in a cycle: a -> b -> a",
            "/flags/x/prerequisites: prerequisites form a cycle: x -> y -> z -> x",
        ],
    );
}

#[test]
fn structural_errors_name_their_place() {
    check(
        r#"{"flags": {"f": {"variants": {"on": true}, "defaultServe": {"variant": "on"}, "rules": [{"clauses": [{"attribute": "a", "op": "like", "values": []}], "serve": {"variant": "on"}}]}}}"#,
        &[
            "/flags/f/rules/0/clauses/0/op: invalid document: unknown variant `like`, expected one of `in`, `notIn`, `startsWith`, `endsWith`, `contains`, `matches`, `lt`, `lte`, `gt`, `gte`, `semverEq`, `semverLt`, `semverLte`, `semverGt`, `semverGte`, `before`, `after`, `exists`, `inSegment` at line 1 column 132",
        ],
    );
    check(
        r#"{"flags": {"f": {"variants": {}, "defaultServe": {"variant": "on"}, "colour": "red"}}}"#,
        &[
            "/flags/f/colour: invalid document: unknown field `colour`, expected one of `description`, `tags`, `type`, `kind`, `variants`, `enabled`, `offVariant`, `defaultServe`, `targeting`, `targets`, `rules`, `prerequisites`, `metadata` at line 1 column 76",
        ],
    );
    check(
        r#"{"flags": {"f": {"variants": {"a": 1}, "defaultServe": {"variant": "a"}}, "f": {"variants": {"a": 1}, "defaultServe": {"variant": "a"}}}}"#,
        &["/flags: invalid document: duplicate key `f` at line 1 column 77"],
    );
    check(
        "flags:\n  f:\n    variants: {a: 1}\n    defaultServe: {variant: a}\n    enabled: maybe\n",
        &[
            "/flags/f/enabled: invalid document: flags.f.enabled: invalid type: string \"maybe\", expected a boolean at line 5 column 14",
        ],
    );
}

#[test]
fn flagd_default_variant_must_be_a_variant() {
    check(
        r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true, "off": 1}, "defaultVariant": "maybe"}}}"#,
        &[
            "/flags/f/variants/off: variant value must be of the flag's type boolean, found number",
            "/flags/f/defaultVariant: default variant `maybe` is not a variant of flag `f`",
        ],
    );
}

#[test]
fn broken_flagd_targeting_is_a_warning_not_a_rejection() {
    let doc = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on", "targeting": {"regex_match": ["a", "b"]}}}}"#;
    let compiled = load(doc, Format::Auto).unwrap();
    let warnings: Vec<String> = compiled.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["/flags/f/targeting: unknown JsonLogic operator `regex_match`"]
    );
}

#[test]
fn syntax_errors_are_load_errors() {
    let err = load("{\"flags\": ", Format::Auto).unwrap_err();
    assert!(matches!(err, LoadError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("EOF while parsing"), "{err}");
}

#[test]
fn jsonlogic_targeting_in_native_flags_is_validated() {
    check(
        r#"{"flags": {"f": {
            "variants": {"on": true, "off": false},
            "targeting": {"nope": [1]},
            "rules": [{"clauses": [], "serve": {"variant": "on"}}],
            "defaultServe": {"rollout": {"weights": {"on": 100}}}
        }}}"#,
        &[
            "/flags/f/rules: a flag with `targeting` cannot also have rules",
            "/flags/f/defaultServe: with `targeting`, `defaultServe` must name a variant",
            "/flags/f/targeting: unknown JsonLogic operator `nope`",
        ],
    );
}

// Issue 13, item 6: a number the JSON clients cannot hold exactly is
// refused instead of silently changed.
#[test]
fn integers_beyond_two_to_the_53_are_refused() {
    check(
        r#"{"flags": {"n": {"variants": {"big": 123456789012345678901234567890, "edge": 9007199254740993, "neg": -9007199254740993, "ok": 9007199254740992, "f": 1.5}, "defaultServe": {"variant": "ok"}},
          "o": {"variants": {"obj": {"deep": [1, 18446744073709551615]}}, "defaultServe": {"variant": "obj"}}}}"#,
        &[
            "/flags/n/variants/big: the number 1.2345678901234568e+29 cannot be kept exactly: integers beyond ±2^53 (9007199254740992) lose precision; use a string",
            "/flags/n/variants/edge: the number 9007199254740993 cannot be kept exactly: integers beyond ±2^53 (9007199254740992) lose precision; use a string",
            "/flags/n/variants/neg: the number -9007199254740993 cannot be kept exactly: integers beyond ±2^53 (9007199254740992) lose precision; use a string",
            "/flags/o/variants/obj/deep/1: the number 18446744073709551615 cannot be kept exactly: integers beyond ±2^53 (9007199254740992) lose precision; use a string",
        ],
    );
}

/// A document with a chain of `n` flags, each the prerequisite of the one before.
fn chain(n: usize) -> String {
    let flags: Vec<String> = (0..n)
        .map(|i| {
            let pre = if i + 1 < n {
                format!(r#", "prerequisites": [{{"flag": "f{}", "variant": "on"}}]"#, i + 1)
            } else {
                String::new()
            };
            format!(r#""f{i}": {{"variants": {{"on": true}}, "defaultServe": {{"variant": "on"}}{pre}}}"#)
        })
        .collect();
    format!(r#"{{"flags": {{{}}}}}"#, flags.join(","))
}

// Issue 13, item 8: a 5,000-deep prerequisite chain made every bulk
// evaluation take 357 ms; chains are bounded, and the refusal names the limit.
#[test]
fn prerequisite_chains_are_bounded() {
    check(&chain(vexil_engine::MAX_PREREQUISITE_DEPTH), &[]);
    check(
        &chain(vexil_engine::MAX_PREREQUISITE_DEPTH + 1),
        &[
            "/flags/f0/prerequisites: prerequisites of `f0` form a chain 17 flags deep; the limit is 16",
        ],
    );
    check(
        &chain(5000),
        &[
            "/flags/f0/prerequisites: prerequisites of `f0` form a chain 5000 flags deep; the limit is 16",
        ],
    );
}

// Issue 13, item 8: 300 `[a-z]{3000}` clauses took ~176 MB; the compiled size
// of a document's regular expressions is bounded, and the refusal names it.
#[test]
fn compiled_regular_expressions_are_bounded_per_document() {
    let rules: Vec<String> = (0..300)
        .map(|_| r#"{"clauses": [{"attribute": "email", "op": "matches", "values": ["[a-z]{3000}"]}], "serve": {"variant": "on"}}"#.to_owned())
        .collect();
    let doc = format!(
        r#"{{"flags": {{"r": {{"variants": {{"on": true, "off": false}}, "defaultServe": {{"variant": "off"}}, "rules": [{}]}}}}}}"#,
        rules.join(",")
    );
    let problems = match load(&doc, Format::Auto) {
        Ok(_) => panic!("300 large regular expressions were accepted"),
        Err(e) => e
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    };
    assert!(!problems.is_empty());
    assert!(
        problems[0].contains("more than 16 MiB compiled, the limit"),
        "{problems:?}"
    );
    // Ordinary patterns are far from it.
    check(
        r#"{"flags": {"r": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"}, "rules": [{"clauses": [{"attribute": "email", "op": "matches", "values": ["^[a-z0-9.]+@example\\.com$"]}], "serve": {"variant": "on"}}]}}}"#,
        &[],
    );
}

/// `check`'s problems as `line: pointer: message`, one per line.
fn checked(doc: &str) -> Vec<String> {
    vexil_engine::check(doc, Format::Auto)
        .problems
        .iter()
        .map(|l| {
            format!(
                "{}: {}",
                l.line.map_or("?".into(), |n| n.to_string()),
                l.problem
            )
        })
        .collect()
}

// issue 12, item 9: every structural problem in one run, with its exact
// pointer and line, and the semantic problems of the rest.
#[test]
fn check_reports_every_structural_problem_with_lines() {
    let doc = r#"{"flags": {
  "a": {"variants": {"on": true}, "defaultServe": {"variant": "on"}, "colour": "red",
        "size": 3},
  "b": {"variants": {"on": true}, "defaultServe": {"variant": "on"},
        "rules": [{"clauses": [{"attribute": "x", "op": "like", "values": []}], "serve": {"variant": "on"}},
                  {"clauses": [], "serve": {"variant": "nope"}}]},
  "c": {"variants": {"x": 1}, "defaultServe": {"variant": "y"}},
  "d": {"variants": {"x": 1}, "enabled": "maybe"}
 },
 "extra": 1
}"#;
    let got = checked(doc);
    let want = [
        "2: /flags/a/colour: unknown field `colour`",
        "3: /flags/a/size: unknown field `size`",
        "5: /flags/b/rules/0/clauses/0/op: unknown variant `like`",
        "6: /flags/b/rules/1/serve/variant: unknown variant `nope`",
        "7: /flags/c/defaultServe/variant: unknown variant `y`",
        "8: /flags/d/enabled: invalid type: string \"maybe\", expected a boolean",
        "10: /extra: unknown field `extra`",
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "want `{w}`, got `{g}`");
    }
    // The same in YAML, flagd format; keys that YAML reads as booleans are
    // variant names, not a `?` place.
    let yaml = "flags:\n  f:\n    state: ENABLED\n    variants:\n      true: true\n      false: false\n    defaultVariant: \"true\"\n    bogus: 1\n  g:\n    state: MAYBE\n    variants: {a: 1}\n    defaultVariant: b\n";
    let got = checked(yaml);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("8: /flags/f/bogus: unknown field `bogus`"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("10: /flags/g/state: unknown variant `MAYBE`"),
        "{got:#?}"
    );
    // Not JSON at all: one problem, where the parser stopped.
    let got = checked("{\"flags\": {\n  \"a\": [\n}");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].contains("invalid JSON document"), "{got:#?}");
    // Valid: no problems, the flags counted.
    let ok = vexil_engine::check(r#"{"flags": {"a": {"variants": {"x": 1}}}}"#, Format::Auto);
    assert_eq!((ok.problems.len(), ok.flags), (0, 1));
}

#[test]
fn locate_finds_the_line_of_a_place() {
    let json = "{\n \"flags\": {\n  \"a/b\": {\n   \"variants\": {\"x\": [1,\n 2]}}}}";
    let at = |p: &Pointer| locate(json, p);
    assert_eq!(at(&Pointer::root().at(["flags", "a/b"])), Some(3));
    assert_eq!(
        at(&Pointer::root().at(["flags", "a/b", "variants", "x", "1"])),
        Some(5)
    );
    assert_eq!(at(&Pointer::root().at(["flags", "nope"])), None);
    let yaml = "flags:\n  a:\n    rules:\n      - clauses: []\n      - serve: {variant: x}\n";
    assert_eq!(
        locate(
            yaml,
            &Pointer::root().at(["flags", "a", "rules", "1", "serve"])
        ),
        Some(5)
    );
}

// Issue 13, item 8: a caller can stop a compilation (the engine reads no
// clock; the server sets the flag when its deadline passes).
#[test]
fn a_compilation_can_be_stopped_by_its_caller() {
    let doc: vexil_engine::model::Document = serde_json::from_str(&chain(3)).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(true);
    let problems = vexil_engine::compile_until(&doc, &stop).unwrap_err();
    assert_eq!(problems.0.len(), 1);
    assert!(
        problems.0[0].message.contains("compilation stopped"),
        "{problems}"
    );
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(vexil_engine::compile_until(&doc, &stop).is_ok());
}
