//! `vexil serve --flags FILE`: read-only, watched, last good version kept.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{
    ADMIN_KEY, FILE_CLIENT_KEY as CLIENT_KEY, FILE_SERVER_KEY as SERVER_KEY, Server, file_server,
    flag_def,
};

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
        s.banner.contains("admin key       from --admin-key (****)"),
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
