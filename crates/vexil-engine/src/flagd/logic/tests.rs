//! Tests of `logic`.

use serde_json::{Value, json};

use super::*;
use crate::context::Context;
use crate::model::Bucketing;

/// Compiles `logic` for flag `flag`, evaluates it on `data`, and compares.
fn check(logic: Value, data: Value, expect: Value) {
    let expr = compile(&logic, "flag").unwrap_or_else(|e| panic!("{logic}: {e}"));
    let ctx = Context::from_json(data)
        .unwrap()
        .with_timestamp(1_700_000_000);
    let run = Run::default();
    let scope = Scope::root(&ctx, Bucketing::Concat, "flag", &run);
    let got = expr.eval(&scope).into_owned();
    let got = if run.failed.get() {
        json!("<failed>")
    } else {
        got
    };
    assert_eq!(got, expect, "{logic}");
}

#[test]
fn data_access() {
    check(json!({"var": "a"}), json!({"a": 1}), json!(1));
    check(
        json!({"var": "a.b.1"}),
        json!({"a": {"b": [5, 6]}}),
        json!(6),
    );
    check(
        json!({"var": ["missing", "dflt"]}),
        json!({}),
        json!("dflt"),
    );
    check(
        json!({"var": ["a", "dflt"]}),
        json!({"a": null}),
        json!("dflt"),
    );
    check(
        json!({"var": "targetingKey"}),
        json!({"targetingKey": "u1"}),
        json!("u1"),
    );
    check(json!({"var": "$flagd.flagKey"}), json!({}), json!("flag"));
    check(
        json!({"var": "$flagd.timestamp"}),
        json!({}),
        json!(1_700_000_000),
    );
    check(
        json!({"var": {"cat": ["a", ".b"]}}),
        json!({"a": {"b": 3}}),
        json!(3),
    );
    check(
        json!({"missing": ["a", "b", "c"]}),
        json!({"a": 1, "c": ""}),
        json!(["b", "c"]),
    );
    check(
        json!({"missing_some": [1, ["a", "b"]]}),
        json!({"a": 1}),
        json!([]),
    );
    check(
        json!({"missing_some": [2, ["a", "b"]]}),
        json!({"a": 1}),
        json!(["b"]),
    );
}

#[test]
fn logic_and_truthiness() {
    check(json!({"if": [true, "y", "n"]}), json!({}), json!("y"));
    check(
        json!({"if": [false, "a", false, "b", "c"]}),
        json!({}),
        json!("c"),
    );
    check(json!({"if": [false, "a"]}), json!({}), Value::Null);
    check(json!({"?:": [0, "a", "b"]}), json!({}), json!("b"));
    check(json!({"and": [1, "x", 0, "y"]}), json!({}), json!(0));
    check(json!({"and": [1, "x"]}), json!({}), json!("x"));
    check(json!({"or": [0, "", "z"]}), json!({}), json!("z"));
    check(json!({"!": [[]]}), json!({}), json!(true));
    check(
        json!({"!!": [{"var": "o"}]}),
        json!({"o": {}}),
        json!(false),
    );
    check(json!({"!!": ["0"]}), json!({}), json!(true));
}

#[test]
fn comparisons() {
    check(json!({"==": [1, "1"]}), json!({}), json!(true));
    check(json!({"==": [1, 1.0]}), json!({}), json!(true));
    check(json!({"==": [null, 0]}), json!({}), json!(false));
    check(json!({"===": [1, "1"]}), json!({}), json!(false));
    check(json!({"!=": ["a", "b"]}), json!({}), json!(true));
    check(json!({"!==": [1, 1]}), json!({}), json!(false));
    check(json!({"<": [1, 2]}), json!({}), json!(true));
    check(json!({"<": [1, 2, 3]}), json!({}), json!(true));
    check(json!({"<": [1, 3, 3]}), json!({}), json!(false));
    check(json!({"<=": [1, 3, 3]}), json!({}), json!(true));
    check(json!({">": ["b", "a"]}), json!({}), json!(true));
    check(
        json!({">=": [{"var": "age"}, 18]}),
        json!({"age": 18}),
        json!(true),
    );
    check(json!({">": ["x", 1]}), json!({}), json!(false));
}

#[test]
fn arithmetic_and_strings() {
    check(json!({"+": [1, "2", 3.5]}), json!({}), json!(6.5));
    check(json!({"-": [5]}), json!({}), json!(-5));
    check(json!({"*": [2, 3]}), json!({}), json!(6));
    check(json!({"/": [7, 2]}), json!({}), json!(3.5));
    check(json!({"/": [1, 0]}), json!({}), Value::Null);
    check(json!({"%": [7, 3]}), json!({}), json!(1));
    check(json!({"min": [3, 1, 2]}), json!({}), json!(1));
    check(json!({"max": []}), json!({}), Value::Null);
    check(
        json!({"cat": ["a", 1, 2.5, true, null]}),
        json!({}),
        json!("a12.5true"),
    );
    check(
        json!({"substr": ["jsonlogic", 4]}),
        json!({}),
        json!("logic"),
    );
    check(
        json!({"substr": ["jsonlogic", -5, 3]}),
        json!({}),
        json!("log"),
    );
    check(
        json!({"substr": ["jsonlogic", 1, -3]}),
        json!({}),
        json!("sonlo"),
    );
    check(
        json!({"in": ["Spring", "Springfield"]}),
        json!({}),
        json!(true),
    );
    check(json!({"in": ["b", ["a", "b"]]}), json!({}), json!(true));
    check(
        json!({"in": [1, {"var": "list"}]}),
        json!({"list": [1.0]}),
        json!(true),
    );
    check(json!({"in": ["x", 5]}), json!({}), json!(false));
}

#[test]
fn arrays() {
    check(
        json!({"merge": [[1, 2], 3, [[4]]]}),
        json!({}),
        json!([1, 2, 3, [4]]),
    );
    check(
        json!({"map": [[1, 2], {"*": [{"var": ""}, 2]}]}),
        json!({}),
        json!([2, 4]),
    );
    check(
        json!({"filter": [[1, 2, 3], {">": [{"var": ""}, 1]}]}),
        json!({}),
        json!([2, 3]),
    );
    check(
        json!({"reduce": [[1, 2, 3], {"+": [{"var": "current"}, {"var": "accumulator"}]}, 10]}),
        json!({}),
        json!(16),
    );
    check(
        json!({"all": [[1, 2], {">": [{"var": ""}, 0]}]}),
        json!({}),
        json!(true),
    );
    check(
        json!({"all": [[], {">": [{"var": ""}, 0]}]}),
        json!({}),
        json!(false),
    );
    check(
        json!({"some": [{"var": "xs"}, {"==": [{"var": "k"}, "b"]}]}),
        json!({"xs": [{"k": "a"}, {"k": "b"}]}),
        json!(true),
    );
    check(
        json!({"none": [[1, 2], {">": [{"var": ""}, 5]}]}),
        json!({}),
        json!(true),
    );
}

#[test]
fn custom_operators() {
    check(
        json!({"starts_with": [{"var": "e"}, "adm"]}),
        json!({"e": "admin"}),
        json!(true),
    );
    check(
        json!({"ends_with": [{"var": "e"}, ".io"]}),
        json!({"e": "a.com"}),
        json!(false),
    );
    check(
        json!({"starts_with": [1, "a"]}),
        json!({}),
        json!("<failed>"),
    );
    check(
        json!({"sem_ver": ["1.2.3", "~", "1.2.9"]}),
        json!({}),
        json!(true),
    );
    check(
        json!({"sem_ver": ["1.3.0", "~", "1.2.0"]}),
        json!({}),
        json!(false),
    );
    check(
        json!({"sem_ver": ["1.9.0", "^", "1.0.0"]}),
        json!({}),
        json!(true),
    );
    check(
        json!({"sem_ver": ["1.0.0", "!=", "1.0.1"]}),
        json!({}),
        json!(true),
    );
    check(
        json!({"sem_ver": ["1.0.0", "<=", "1.0.0"]}),
        json!({}),
        json!(true),
    );
    check(
        json!({"sem_ver": ["1.0.0", ">=", "1.0.1"]}),
        json!({}),
        json!(false),
    );
    check(
        json!({"sem_ver": ["x", "=", "1"]}),
        json!({}),
        json!("<failed>"),
    );
    check(
        json!({"fractional": [["a", 0], ["b", 1]]}),
        json!({"targetingKey": "u"}),
        json!("b"),
    );
    check(
        json!({"fractional": [["a", 1.5]]}),
        json!({"targetingKey": "u"}),
        json!("<failed>"),
    );
    check(
        json!({"fractional": []}),
        json!({"targetingKey": "u"}),
        json!("<failed>"),
    );
    check(
        json!({"fractional": [["a", 1]]}),
        json!({}),
        json!("<failed>"),
    );
    check(
        json!({"fractional": ["seed", ["a", 1], ["b", 0]]}),
        json!({}),
        json!("a"),
    );
    check(
        json!({"fractional": [7, ["a", 1]]}),
        json!({"targetingKey": "u"}),
        json!("<failed>"),
    );
}

#[test]
fn unknown_operators_do_not_compile() {
    assert_eq!(
        compile(&json!({"nope": [1]}), "f").unwrap_err(),
        "unknown JsonLogic operator `nope`"
    );
    assert!(compile(&json!({"==": [1, 2, 3]}), "f").is_err());
    assert!(compile(&json!({"<": [1]}), "f").is_err());
    // Objects with several keys are data, not operations.
    check(json!({"a": 1, "b": 2}), json!({}), json!({"a": 1, "b": 2}));
}

#[test]
fn refs_are_substituted() {
    let evaluators =
        json!({"is_admin": {"==": [{"var": "role"}, "admin"]}, "loop": {"$ref": "loop"}});
    let evaluators = evaluators.as_object().unwrap();
    let resolved =
        resolve_refs(&json!({"if": [{"$ref": "is_admin"}, "a", "b"]}), evaluators).unwrap();
    assert_eq!(
        resolved,
        json!({"if": [{"==": [{"var": "role"}, "admin"]}, "a", "b"]})
    );
    assert!(
        resolve_refs(&json!({"$ref": "nope"}), evaluators)
            .unwrap_err()
            .contains("unknown evaluator `nope`")
    );
    assert!(
        resolve_refs(&json!({"$ref": "loop"}), evaluators)
            .unwrap_err()
            .contains("too deep")
    );
}
