//! The official OpenFeature OFREP providers (Python from PyPI, JavaScript
//! from npm) evaluate flags against the real server unchanged.
//!
//! `.ci/run` installs them (a virtualenv in `target/ofrep-venv`, and
//! `npm ci` in `tests/ofrep-providers/js`); under `CI=true` a missing
//! provider fails the test instead of skipping it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::Server;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What every provider must report for the flags of `ofrep::setup`.
fn expected() -> Value {
    json!({
        "checkout": {"value": true, "variant": "on", "reason": "TARGETING_MATCH", "errorCode": null},
        "ratio": {"value": 2.0, "variant": "two", "reason": "STATIC", "errorCode": null},
        "count": {"value": 2, "variant": "small", "reason": "STATIC", "errorCode": null},
        "dark": {"value": true, "variant": null, "reason": "DISABLED", "errorCode": null},
        "missing": {"value": true, "variant": null, "reason": "ERROR", "errorCode": "FLAG_NOT_FOUND"},
        "split-no-key": {"value": "fallback", "variant": null, "reason": "ERROR", "errorCode": "TARGETING_KEY_MISSING"},
        "no-context": {"value": false, "variant": "off", "reason": "DEFAULT", "errorCode": null},
    })
}

fn run(mut cmd: Command, s: &Server, client: &str) -> Value {
    let out = cmd
        .env("VEXIL_URL", &s.base)
        .env("VEXIL_CLIENT_KEY", client)
        .output()
        .expect("run provider check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "provider check failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

#[tokio::test]
async fn official_python_ofrep_provider() {
    let python = std::env::var("VEXIL_OFREP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/ofrep-venv/bin/python"));
    if !python.exists() {
        assert!(
            !on_ci(),
            "the Python OFREP provider is not installed at {}",
            python.display()
        );
        eprintln!("skipping: no Python OFREP provider at {}", python.display());
        return;
    }
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = crate::ofrep::setup(&s).await;
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/ofrep-providers/python/check.py"));
    assert_eq!(run(cmd, &s, &client), expected());
}

/// Runs one of the JavaScript checks, or says why it cannot.
async fn javascript(script: &str) -> Option<Value> {
    let dir = root().join("tests/ofrep-providers/js");
    if !dir.join("node_modules/@openfeature").exists() {
        assert!(
            !on_ci(),
            "the JavaScript OFREP providers are not installed in {}",
            dir.display()
        );
        eprintln!(
            "skipping: no JavaScript OFREP providers in {}",
            dir.display()
        );
        return None;
    }
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = crate::ofrep::setup(&s).await;
    let mut cmd = Command::new("node");
    cmd.arg(script).current_dir(&dir);
    Some(run(cmd, &s, &client))
}

#[tokio::test]
async fn official_javascript_ofrep_server_provider() {
    let Some(got) = javascript("check.mjs").await else {
        return;
    };
    let mut want = expected();
    // JavaScript numbers have no integer/float distinction.
    want["ratio"]["value"] = json!(2);
    // @openfeature/ofrep-provider 0.1.3 (the newest on npm) predates
    // OFREP's "no value means the code default" and reports a success
    // without a value as GENERAL; the caller still gets its default.
    want["dark"] =
        json!({"value": true, "variant": null, "reason": "ERROR", "errorCode": "GENERAL"});
    assert_eq!(got, want);
}

#[tokio::test]
async fn official_javascript_ofrep_web_provider_with_bulk_evaluation() {
    let Some(got) = javascript("check-web.mjs").await else {
        return;
    };
    let mut want = expected();
    want["ratio"]["value"] = json!(2);
    assert_eq!(got, want);
}
