//! The official OpenFeature flagd providers (Python from PyPI, JavaScript
//! from npm) against `vexil serve --grpc-listen`, in RPC mode (evaluation
//! service) and in-process mode (sync service): values, variants and
//! reasons of every type; a change through the admin API reaches the
//! provider; the server restarted under the provider: it reconnects and
//! keeps answering.
//!
//! `.ci/run` installs them (a virtualenv in `target/flagd-venv` from
//! `tests/flagd-providers/python/requirements.txt`, and `npm ci`
//! in `tests/flagd-providers/js`); under `CI=true` a missing provider fails
//! the test instead of skipping it.
//!
//! The Python provider sends the server key as call credentials (over
//! local channel credentials on the loopback address); the JavaScript
//! provider cannot send metadata, so its environment is opened with
//! `--grpc-open-env`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::support::{Data, ENV, Server};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Numbers as floats, so that `2` and `2.0` (protobuf's Struct has only
/// doubles) compare equal.
fn norm(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), norm(v))).collect()),
        other => other.clone(),
    }
}

/// What every provider reports in both modes.
fn expected() -> Value {
    norm(&json!({
        "beta": {"value": true, "variant": "yes", "reason": "TARGETING_MATCH", "errorCode": null},
        "greeting": {"value": "hi", "variant": "hello", "reason": "STATIC", "errorCode": null},
        "ratio": {"value": 2.0, "variant": "two", "reason": "STATIC", "errorCode": null},
        "count": {"value": 2, "variant": "small", "reason": "STATIC", "errorCode": null},
        "theme": {"value": {"bg": "black", "contrast": 2}, "variant": "dark", "reason": "STATIC", "errorCode": null},
        "missing": {"value": true, "variant": null, "reason": "ERROR", "errorCode": "FLAG_NOT_FOUND"},
    }))
}

async fn set_ratio(s: &Server, variant: &str) {
    let flag = format!("{ENV}/flags/ratio");
    let (_, headers, _) = s.admin(Method::GET, &flag, None, &[]).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let def = json!({"variants": {"two": 2.0, "half": 0.5}, "defaultServe": {"variant": variant}});
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &flag,
            Some(&def),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// A provider check script, spoken to line by line.
struct Check {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    child: tokio::process::Child,
}

impl Check {
    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .expect("the provider check answers in time")
            .unwrap();
        let Some(line) = line else {
            let out = self.child.wait_with_output_ref().await;
            panic!("the provider check ended early: {out}");
        };
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    async fn go_on(&mut self) {
        self.stdin.write_all(b"next\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }
}

trait WaitOutput {
    async fn wait_with_output_ref(&mut self) -> String;
}

impl WaitOutput for tokio::process::Child {
    async fn wait_with_output_ref(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err).await;
        }
        format!("{:?}\n{err}", self.wait().await)
    }
}

/// Runs one provider in one mode through the whole scenario.
async fn scenario(mut cmd: Command, mode: &str, with_key: bool) {
    let (data, _dir): (Data, _) = crate::support::sqlite();
    let grpc = crate::grpc::free_addr();
    let mut args = vec!["--grpc-listen", grpc.as_str()];
    if !with_key {
        args.extend(["--grpc-open-env", "default/development"]);
    }
    let s = Server::start_with(&data, &args);
    let (key, _) = crate::grpc::setup(&s).await;
    cmd.arg(mode)
        .env("VEXIL_GRPC", &grpc)
        .env("VEXIL_SELECTOR", "default/development")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if with_key {
        cmd.env("VEXIL_KEY", &key);
    }
    let mut child = cmd.spawn().expect("start the provider check");
    let mut check = Check {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
        child,
    };

    // 1. Every type, with values, variants and reasons.
    let mut got = norm(&check.line().await);
    let checkout = got.as_object_mut().unwrap().remove("checkout").unwrap();
    assert_eq!(got, expected(), "{mode}");
    let targeted = norm(
        &json!({"value": true, "variant": "on", "reason": "TARGETING_MATCH", "errorCode": null}),
    );
    // A flag with rules: evaluated by Vexil's engine in RPC mode, and
    // translated into flagd's form (exactly) for the in-process provider.
    assert_eq!(checkout, targeted, "{mode}");

    // 2. A change through the admin API reaches the provider.
    set_ratio(&s, "half").await;
    check.go_on().await;
    let changed = norm(&check.line().await);
    assert_eq!(changed["ratio"], json!(0.5), "{mode}: {changed}");
    if mode == "rpc" {
        assert_eq!(changed["changed"], json!(["ratio"]), "{mode}: {changed}");
    }

    // 3. The server restarts under the provider, on the same gRPC address.
    assert!(s.terminate(), "the server stops");
    let s = Server::start_with(&data, &args);
    set_ratio(&s, "two").await;
    check.go_on().await;
    let after = norm(&check.line().await);
    assert_eq!(after["ratio"], json!(2.0), "{mode}: {after}");
    crate::support::cleanup(&data).await;
}

fn python() -> Option<PathBuf> {
    let python = std::env::var("VEXIL_FLAGD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/flagd-venv/bin/python"));
    if python.exists() {
        return Some(python);
    }
    assert!(
        !on_ci(),
        "the Python flagd provider is not installed at {}",
        python.display()
    );
    eprintln!("skipping: no Python flagd provider at {}", python.display());
    None
}

fn node() -> Option<Command> {
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
        return None;
    }
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir).arg("check.mjs");
    Some(cmd)
}

fn python_check() -> Option<Command> {
    let mut cmd = Command::new(python()?);
    cmd.arg(root().join("tests/flagd-providers/python/check.py"));
    Some(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_flagd_provider_rpc() {
    if let Some(cmd) = python_check() {
        scenario(cmd, "rpc", true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_flagd_provider_in_process() {
    if let Some(cmd) = python_check() {
        scenario(cmd, "in-process", true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_javascript_flagd_provider_rpc() {
    if let Some(cmd) = node() {
        scenario(cmd, "rpc", false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_javascript_flagd_provider_in_process() {
    if let Some(cmd) = node() {
        scenario(cmd, "in-process", false).await;
    }
}
