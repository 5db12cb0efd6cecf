//! `vexil serve` as a process: SIGTERM and a clean exit, secrets masked in
//! the banner, the open-file limit, start-up errors, logs on standard
//! error, and the CLI against a served flag file.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{
    ADMIN_KEY, FILE_SERVER_KEY as SERVER_KEY, Server, connect, file_server, read_to_close, sqlite,
};

#[tokio::test]
async fn projects_environments_health_and_graceful_stop() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::spawn(crate::BIN, &data, &[]);
    assert!(s.banner.contains("listen"), "{}", s.banner);
    assert!(
        s.banner.contains("from VEXIL_ADMIN_KEY (****)"),
        "secrets are masked: {}",
        s.banner
    );
    assert!(!s.banner.contains(crate::support::ADMIN_KEY));
    let (st, _, body) = s.call(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!((st, body), (StatusCode::OK, json!({"status": "ok"})));
    // Ready once snapshots are loaded (at once on an empty store).
    let started = std::time::Instant::now();
    let body = loop {
        let (st, _, body) = s.call(Method::GET, "/readyz", None, None, &[]).await;
        if st == StatusCode::OK {
            break body;
        }
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never ready: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(body["environments"]["default/production"]["version"], 0);

    let (st, _, _) = s
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(&json!({"key": "shop", "name": "Shop"})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, body) = s
        .admin(
            Method::POST,
            "/api/v1/projects/shop/environments",
            Some(&json!({"key": "staging"})),
            &[],
        )
        .await;
    assert_eq!(
        (st, body["version"].clone()),
        (StatusCode::CREATED, json!(0))
    );
    let (st, _, _) = s
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(&json!({"key": "no spaces"})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, _, body) = s.admin(Method::GET, "/api/v1/projects", None, &[]).await;
    let keys: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["default", "shop"]);
    let (st, _, body) = s.admin(Method::GET, "/no/such/route", None, &[]).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert!(s.terminate(), "SIGTERM gives a clean exit");
}

#[tokio::test]
async fn at_the_open_file_limit_the_server_refuses_clearly_and_recovers() {
    let (data, _dir) = sqlite();
    // 300 descriptors: the automatic connection limit is the minimum, 64.
    let s = Server::spawn_with_nofile(crate::BIN, &data, &["--header-timeout-ms", "60000"], 300);
    assert!(
        s.banner.contains("from the open-file limit"),
        "{}",
        s.banner
    );
    let mut held = Vec::new();
    for _ in 0..150 {
        held.push(connect(&s).await);
    }
    // Beyond the limit: a clear 503, not a hang, and the server stays up.
    let mut c = connect(&s).await;
    let answer = read_to_close(&mut c, Duration::from_secs(5))
        .await
        .expect("an answer, not a hang");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(held);
    let started = Instant::now();
    loop {
        if let Ok(r) = s.http.get(s.url("/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.metric("vexil_http_accept_errors_total").await, Some(0.0));
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
    let out = std::process::Command::new(crate::BIN)
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
        let out = std::process::Command::new(crate::BIN)
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

// issue 12, item 3: the CLI's default environment is the file's.
#[tokio::test]
async fn the_cli_finds_the_environment_of_a_flag_file() {
    let (s, _file, _dir) = file_server(&[]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::BIN)
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
    let mut child = std::process::Command::new(crate::BIN)
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
