//! `vexil serve --flags FILE`: read-only, watched, last good version kept.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_KEY, Server, flag_def};

const FILE_ENV: &str = "/api/v1/projects/default/environments/default";

async fn wait_for_version(s: &Server, version: i64) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (_, _, env) = s.admin(Method::GET, FILE_ENV, None, &[]).await;
        if env["version"] == version {
            return env;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "version {version} never came: {env}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serves_a_watched_flag_file_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/flagd.json"),
        &file,
    )
    .unwrap();
    let (data, _data_dir) = crate::support::sqlite();
    let s = Server::start_with(&data, &["--flags", file.to_str().unwrap()]);
    assert!(s.banner.contains("read-only flag file"), "{}", s.banner);

    let (st, _, list) = s
        .admin(Method::GET, &format!("{FILE_ENV}/flags"), None, &[])
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{FILE_ENV}/flags/new"),
            Some(&flag_def(true)),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("read_only"))
    );
    let (st, _, _) = s
        .call(Method::GET, &format!("{FILE_ENV}/flags"), None, None, &[])
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // A valid change is picked up as the next version.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["flags"]["added"] =
        json!({"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"});
    std::fs::write(&file, doc.to_string()).unwrap();
    wait_for_version(&s, 2).await;
    let (_, _, list) = s
        .admin(Method::GET, &format!("{FILE_ENV}/flags"), None, &[])
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 4);

    // A change that does not parse is refused; the last good version keeps
    // serving.
    std::fs::write(
        &file,
        r#"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}"#,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let env = wait_for_version(&s, 2).await;
    assert_eq!(env["key"], "default");
    let (_, _, list) = s
        .admin(Method::GET, &format!("{FILE_ENV}/flags"), None, &[])
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
    let (st, _, _) = s.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
}

#[test]
fn an_invalid_flag_file_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.yaml");
    // Invalid flags are served (issue 12, item 4), invalid segments are not.
    std::fs::write(
        &file,
        "segments:\n  s:\n    rules: [{clauses: [{op: inSegment, values: [nope]}]}]\nflags:\n  f:\n    variants: {a: 1}\n    defaultServe: {variant: b}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--flags",
            file.to_str().unwrap(),
        ])
        .env("VEXIL_ADMIN_KEY", crate::support::ADMIN_KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/segments/s/rules/0/clauses/0/values/0: unknown segment `nope`"),
        "{stderr}"
    );
}

const SERVER_KEY: &str = "file-server-key-0123456789";
const CLIENT_KEY: &str = "file-client-key-0123456789";

/// Starts `vexil serve --flags` on a copy of `examples/flagd.json` with a
/// server and a client key; returns the server and the file.
fn file_server(extra: &[&str]) -> (Server, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/flagd.json"),
        &file,
    )
    .unwrap();
    let data = crate::support::Data::Sqlite(dir.path().join("unused").display().to_string());
    let mut args = vec![
        "--flags",
        file.to_str().unwrap(),
        "--server-key",
        SERVER_KEY,
        "--client-key",
        CLIENT_KEY,
    ];
    args.extend_from_slice(extra);
    let s = Server::start_with(&data, &args);
    (s, file, dir)
}

async fn ofrep(s: &Server, key: &str, flag: &str) -> (StatusCode, serde_json::Value) {
    let (st, _, body) = s
        .call(
            Method::POST,
            &format!("/ofrep/v1/evaluate/flags/{flag}"),
            Some(key),
            Some(&json!({"context": {"targetingKey": "u1"}})),
            &[],
        )
        .await;
    (st, body)
}

// issue 12, item 1: evaluation follows the evaluation rate even with the
// admin key, and a flag file accepts server and client keys.
#[tokio::test]
async fn file_mode_takes_evaluation_keys_and_rates_follow_the_route() {
    let (s, _file, _dir) = file_server(&["--rate-limit-admin", "5"]);
    assert!(
        s.banner
            .contains("evaluation keys 1 server, 1 client (****)"),
        "{}",
        s.banner
    );
    assert!(
        s.banner
            .contains("admin key       from VEXIL_ADMIN_KEY (****)"),
        "{}",
        s.banner
    );
    assert!(!s.banner.contains(SERVER_KEY) && !s.banner.contains(CLIENT_KEY));

    // 30 evaluations with the admin key: none is held to the admin rate.
    for _ in 0..30 {
        let (st, body) = ofrep(&s, ADMIN_KEY, "header-color").await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    // The admin API is.
    let mut codes = Vec::new();
    for _ in 0..7 {
        let (st, _, _) = s.admin(Method::GET, FILE_ENV, None, &[]).await;
        codes.push(st.as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429]);

    // Client keys evaluate, server keys also get the rules; neither
    // administers.
    let (st, body) = ofrep(&s, CLIENT_KEY, "header-color").await;
    assert_eq!(
        (st, body["value"].clone()),
        (StatusCode::OK, json!("#1f6feb"))
    );
    let (st, _, _) = s
        .call(Method::GET, "/api/v1/snapshot", Some(CLIENT_KEY), None, &[])
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, doc) = s
        .call(Method::GET, "/api/v1/snapshot", Some(SERVER_KEY), None, &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["flags"]["header-color"].is_object(), "{doc}");
    for key in [SERVER_KEY, CLIENT_KEY] {
        let (st, _, _) = s.call(Method::GET, FILE_ENV, Some(key), None, &[]).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    let (st, _, body) = s
        .call(
            Method::GET,
            FILE_ENV,
            Some("file-unknown-key-0123456789"),
            None,
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
}

#[test]
fn evaluation_keys_are_checked_at_start() {
    for (args, message) in [
        (
            vec!["--flags", "x.json", "--server-key", "short"],
            "--server-key must be at least 16 characters",
        ),
        (
            vec!["--flags", "x.json", "--client-key", ADMIN_KEY],
            "the same key is given twice",
        ),
        (
            vec!["--server-key", SERVER_KEY],
            "--server-key and --client-key are for --flags",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vexil"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
            .env_remove("VEXIL_SERVER_KEYS")
            .env_remove("VEXIL_CLIENT_KEYS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

// issue 12, item 2: a changed file is announced on both event streams, as
// a write is.
#[tokio::test]
async fn a_changed_file_is_announced_to_subscribers() {
    let (s, file, _dir) = file_server(&[]);
    s.wait_ready().await;
    let mut stream = crate::stream::open(&s, SERVER_KEY, None).await;
    let first = stream.next().await;
    assert_eq!((first.event.as_str(), first.id), ("snapshot", 1));
    let resp = s
        .http
        .get(s.url(&format!("/ofrep/v1/events?key={CLIENT_KEY}")))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut browser = crate::stream::Events {
        resp,
        buf: String::new(),
    };

    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["flags"]["added"] =
        json!({"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"});
    doc["flags"]
        .as_object_mut()
        .unwrap()
        .remove("legacy-banner");
    std::fs::write(&file, doc.to_string()).unwrap();

    let change = stream.next().await;
    assert_eq!(
        (change.event.as_str(), change.id),
        ("change", 2),
        "{change:?}"
    );
    let mut changed: Vec<(String, String)> = change.data["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            ("added".to_owned(), "create".to_owned()),
            ("legacy-banner".to_owned(), "delete".to_owned())
        ]
    );
    let refetch = browser.next().await;
    assert_eq!(
        refetch.data,
        json!({"type": "refetchEvaluation", "etag": "\"2\""})
    );
    assert!(s.metric("vexil_sse_events_published_total").await >= Some(1.0));

    // Reconnecting with Last-Event-ID gets the change from the log.
    let mut again = crate::stream::open(&s, SERVER_KEY, Some("1")).await;
    let replay = again.next().await;
    assert_eq!((replay.event.as_str(), replay.id), ("change", 2));
}

// issue 12, item 3: the CLI's default environment is the file's.
#[tokio::test]
async fn the_cli_finds_the_environment_of_a_flag_file() {
    let (s, _file, _dir) = file_server(&[]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vexil"))
            .args(args)
            .env("VEXIL_URL", &s.base)
            .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
            .env_remove("VEXIL_KEY")
            .env_remove("VEXIL_ENV")
            .env_remove("VEXIL_PROJECT")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["flags", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("header-color"), "{out}");
    let (ok, out, err) = run(&["export"]);
    assert!(ok, "{err}");
    assert!(out.contains("legacy-banner"), "{out}");
    let (ok, _, err) = run(&["flags", "list", "--env", "development"]);
    assert!(!ok);
    assert!(
        err.contains("environment `development` not found in project `default` (it has: default)"),
        "{err}"
    );
    // issue 12, item 13: a missing project is reported as such.
    let (ok, _, err) = run(&["flags", "list", "--project", "nope"]);
    assert!(!ok);
    assert!(err.contains("project `nope` not found"), "{err}");
}

// issue 12, item 4: one invalid flag does not take the file down; its
// evaluations give PARSE_ERROR, it is logged with its place and counted.
#[tokio::test]
async fn an_invalid_flag_is_served_as_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    std::fs::write(
        &file,
        r#"{"flags": {
          "good": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
          "broken": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "maybe"},
          "bad-ref": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on", "targeting": {"$ref": "nowhere"}}
        }}"#,
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--flags",
            file.to_str().unwrap(),
        ])
        .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
        .env("VEXIL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let base = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(addr) = line.strip_prefix("vexil listening on ") {
            break addr.to_owned();
        }
    };
    let http = reqwest::Client::new();
    let eval = |flag: &str| {
        http.post(format!("{base}/ofrep/v1/evaluate/flags/{flag}"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({}))
            .send()
    };
    let resp = eval("good").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for flag in ["broken", "bad-ref"] {
        let resp = eval(flag).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errorCode"], "PARSE_ERROR", "{body}");
        assert!(
            body["errorDetails"]
                .as_str()
                .unwrap()
                .contains(&format!("/flags/{flag}/")),
            "{body}"
        );
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vexil_snapshot_invalid_flags{environment=\"default/default\"} 2"),
        "{metrics}"
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/flags/broken/defaultServe/variant")
            && stderr.contains("line=3")
            && stderr.contains("PARSE_ERROR"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a pipe: {stderr}"
    );
}

// issue 12, item 13: the banner says where the admin key came from, and
// that a flag file's key is not stored.
#[test]
fn the_banner_names_the_source_of_the_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    std::fs::write(&file, r#"{"flags": {}}"#).unwrap();
    let data = crate::support::Data::Sqlite(dir.path().join("unused").display().to_string());
    let s = Server::start_with(
        &data,
        &[
            "--flags",
            file.to_str().unwrap(),
            "--admin-key",
            "given-on-the-command-line",
        ],
    );
    assert!(
        s.banner.contains("admin key       from --admin-key (****)"),
        "{}",
        s.banner
    );
    assert!(
        !s.banner.contains("given-on-the-command-line"),
        "{}",
        s.banner
    );
    assert!(!s.banner.contains("stored"), "{}", s.banner);
}
