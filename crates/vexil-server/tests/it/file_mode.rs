//! `vexil serve --flags FILE`: read-only, watched, last good version kept.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Server, flag_def};

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

    // An invalid change is refused; the last good version keeps serving.
    std::fs::write(
        &file,
        r#"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"}}}"#,
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
    std::fs::write(
        &file,
        "flags:\n  f:\n    variants: {a: 1}\n    defaultServe: {variant: b}\n",
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
        stderr.contains("/flags/f/defaultServe/variant: unknown variant `b`"),
        "{stderr}"
    );
}
