//! `vexil eval` and `vexil validate`, run as a user would.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

fn examples(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Runs `vexil` with `args`; returns (exit code, stdout, stderr).
fn vexil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(crate::BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn eval_json(args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = vexil(args);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (code, value)
}

#[test]
fn eval_prints_one_json_result() {
    let flags = examples("flags.yaml");
    let (code, out) = eval_json(&[
        "eval",
        "--flags",
        flags.to_str().unwrap(),
        "--flag",
        "new-checkout",
        "--context",
        r#"{"targetingKey": "user-42"}"#,
        "--type",
        "bool",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        json!({"key": "new-checkout", "value": true, "variant": "on", "reason": "TARGETING_MATCH", "metadata": {}})
    );
}

#[test]
fn eval_reads_flagd_files() {
    let flags = examples("flagd.json");
    let flags = flags.to_str().unwrap();
    let (code, out) = eval_json(&["eval", "--flags", flags, "--flag", "header-color"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        json!({"key": "header-color", "value": "#1f6feb", "variant": "blue", "reason": "STATIC",
               "metadata": {"team": "payments", "owner": "web"}})
    );
    let (code, out) = eval_json(&["eval", "--flags", flags, "--flag", "legacy-banner"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        json!({"key": "legacy-banner", "reason": "DISABLED", "metadata": {"team": "payments"}})
    );
}

#[test]
fn evaluation_errors_exit_1_with_code_and_details() {
    let flags = examples("flags.yaml");
    let (code, out) = eval_json(&[
        "eval",
        "--flags",
        flags.to_str().unwrap(),
        "--flag",
        "max-cart-items",
        "--type",
        "string",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["errorCode"], "TYPE_MISMATCH");
    assert_eq!(
        out["errorDetails"],
        "flag `max-cart-items` is of type number, not string"
    );
    assert!(out.get("value").is_none());
}

#[test]
fn bad_context_and_bad_files_get_clear_messages() {
    let flags = examples("flags.yaml");
    let (code, stdout, stderr) = vexil(&[
        "eval",
        "--flags",
        flags.to_str().unwrap(),
        "--flag",
        "x",
        "--context",
        r#"[5]"#,
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr.trim(),
        "error: invalid --context: evaluation context must be a JSON object, found array"
    );
    // issue 12, item 6: a targeting key that is not a string is absent, as
    // flagd treats it; the evaluation runs.
    let (code, stdout, stderr) = vexil(&[
        "eval",
        "--flags",
        flags.to_str().unwrap(),
        "--flag",
        "new-checkout",
        "--context",
        r#"{"targetingKey": 5}"#,
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(r#""key":"new-checkout""#), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "flags:\n  f:\n    variants: {a: 1}\n    defaultServe: {variant: b}\n",
    )
    .unwrap();
    // An invalid flag evaluates to PARSE_ERROR, the problem named on
    // standard error (issue 12, item 4).
    let (code, _, stderr) = vexil(&["eval", "--flags", broken.to_str().unwrap(), "--flag", "f"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("/flags/f/defaultServe/variant: unknown variant `b`"),
        "{stderr}"
    );
    // A file whose segments are invalid cannot be used at all.
    std::fs::write(
        &broken,
        "segments:\n  s:\n    rules: [{clauses: [{op: inSegment, values: [nope]}]}]\nflags: {}\n",
    )
    .unwrap();
    let (code, _, stderr) = vexil(&["eval", "--flags", broken.to_str().unwrap(), "--flag", "f"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/segments/s/rules/0/clauses/0/values/0: unknown segment `nope`"),
        "{stderr}"
    );

    let (code, _, stderr) = vexil(&["eval", "--flags", "/nonexistent/flags.json", "--flag", "f"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read flag file /nonexistent/flags.json"),
        "{stderr}"
    );
}

#[test]
fn validate_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    std::fs::write(
        &file,
        r#"{"flags": {
            "a": {"variants": {"on": true, "off": 3}, "defaultServe": {"variant": "on"}},
            "b": {"variants": {"x": "1"}, "defaultServe": {"rollout": {"weights": {"x": 90}}}}
        }}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, _) = vexil(&["validate", path]);
    assert_eq!(code, 1);
    assert_eq!(
        stdout,
        format!(
            "{path}:2: /flags/a/variants/off: variant value must be of the flag's type boolean, found number\n\
             {path}:3: /flags/b/defaultServe/rollout/weights: weights add up to 90%, not 100%\n\
             {path}: 2 problems\n"
        )
    );
    let good = examples("flags.yaml");
    let (code, stdout, _) = vexil(&["validate", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.ends_with("ok, 3 flags\n"), "{stdout}");
}

// issue 12, item 10: a closed pipe ends a command quietly (`vexil validate
// big.json | head -1`), without "failed printing to stdout" panics.
#[test]
fn a_closed_pipe_ends_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.json");
    // Thousands of problems: far more output than a pipe buffers.
    let flags: serde_json::Map<String, Value> = (0..3000)
        .map(|i| {
            (
                format!("flag-{i}"),
                json!({"variants": {"a": 1}, "defaultServe": {"variant": "b"}}),
            )
        })
        .collect();
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&json!({"flags": flags})).unwrap(),
    )
    .unwrap();
    let mut child = Command::new(crate::BIN)
        .args(["validate", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe as `head -1` does.
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
    assert!(first.contains("flag-"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.code(), Some(0));
}

// issue 12, item 9: structural problems (unknown fields and operators,
// wrong types) are all reported in one run, each with its exact pointer and
// line, beside the semantic problems of the other flags.
#[test]
fn validate_reports_every_structural_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.yaml");
    std::fs::write(
        &file,
        "flags:\n\
         \x20 a:\n\
         \x20   variants: {on: true, off: false}\n\
         \x20   colour: red\n\
         \x20   defaultServe: {variant: on}\n\
         \x20 b:\n\
         \x20   variants: {x: 1}\n\
         \x20   defaultServe: {variant: x}\n\
         \x20   rules:\n\
         \x20     - clauses:\n\
         \x20         - {attribute: plan, op: like, values: [pro]}\n\
         \x20       serve: {variant: x}\n\
         \x20 c:\n\
         \x20   variants: {x: 1}\n\
         \x20   defaultServe: {variant: y}\n\
         \x20 d:\n\
         \x20   variants: {x: 1}\n\
         \x20   enabled: maybe\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) = vexil(&["validate", path]);
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    for (want, line) in [
        (
            format!("{path}:4: /flags/a/colour: unknown field `colour`"),
            0,
        ),
        (
            format!("{path}:11: /flags/b/rules/0/clauses/0/op: unknown variant `like`"),
            1,
        ),
        (
            format!("{path}:15: /flags/c/defaultServe/variant: unknown variant `y`"),
            2,
        ),
        (
            format!(
                "{path}:18: /flags/d/enabled: invalid type: string \"maybe\", expected a boolean"
            ),
            3,
        ),
        (format!("{path}: 4 problems"), 4),
    ] {
        assert!(
            lines[line].starts_with(&want),
            "line {line}: want `{want}` in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("invalid YAML document"), "{stdout}");
    assert!(!stdout.contains("/?"), "{stdout}");
}

// issue 12, item 13: the help says what the binary is, and every option of
// `keys create` is described.
#[test]
fn help_describes_the_binary_and_key_options() {
    let (code, stdout, _) = vexil(&["--help"]);
    assert_eq!(code, 0);
    assert!(!stdout.contains("later"), "{stdout}");
    assert!(stdout.contains("the server"), "{stdout}");
    let (code, stdout, _) = vexil(&["keys", "create", "--help"]);
    assert_eq!(code, 0);
    for line in stdout.lines().filter(|l| l.trim_start().starts_with("--")) {
        let described = line.split("  ").filter(|p| !p.trim().is_empty()).count() > 1;
        assert!(described, "undescribed option: {line}\n{stdout}");
    }
}

// issue 12, item 4: `vexil eval` reads a file with an invalid flag as the
// server does: the other flags evaluate, the invalid one gives PARSE_ERROR.
#[test]
fn eval_serves_the_valid_flags_of_a_partly_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    std::fs::write(
        &file,
        r#"{"flags": {
          "good": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"},
          "broken": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "maybe"}
        }}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) = vexil(&["eval", "--flags", path, "--flag", "good"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""value":true"#), "{stdout}");
    assert!(
        stderr.contains("warning:") && stderr.contains("/flags/broken/"),
        "{stderr}"
    );
    let (code, stdout, _) = vexil(&["eval", "--flags", path, "--flag", "broken"]);
    assert_eq!(code, 1);
    assert!(stdout.contains(r#""errorCode":"PARSE_ERROR""#), "{stdout}");
}
