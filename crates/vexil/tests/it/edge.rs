//! `vexil edge` as real processes against a real server (issue 8): it
//! answers as the server does, keeps answering when the server is killed,
//! restarts from its cache while the server is down (and refuses a corrupt
//! cache), resumes with only the missed changes, chains behind another
//! edge, and keeps its last good version when upstream sends one that does
//! not compile here.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vexil_test_support::TcpProxy;

use crate::support::{ENV, Server, sqlite};

/// Flags with targets, rules and rollouts, and a server and a client key
/// of `development`.
pub(crate) async fn setup(s: &Server) -> (String, String) {
    s.wait_ready().await;
    let flags = [
        (
            "checkout",
            json!({"variants": {"on": true, "off": false}, "offVariant": "off",
                "defaultServe": {"rollout": {"weights": {"on": 30, "off": 70}}},
                "rules": [{"clauses": [{"attribute": "country", "op": "in", "values": ["CA"]},
                                       {"attribute": "plan", "op": "in", "values": ["pro"]}],
                           "serve": {"variant": "on"}}]}),
        ),
        (
            "banner",
            json!({"variants": {"red": "red", "blue": "blue"}, "defaultServe": {"variant": "red"},
                "targets": {"blue": ["u3"]}}),
        ),
        (
            "limit",
            json!({"variants": {"low": 10, "high": 1000}, "defaultServe": {"rollout": {"weights": {"low": 50, "high": 50}, "bucketBy": "company"}}}),
        ),
    ];
    for (key, def) in flags {
        let (st, _, body) = s
            .admin(
                Method::PUT,
                &format!("{ENV}/flags/{key}"),
                Some(&def),
                &[("if-none-match", "*")],
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
    let key = |scope: &'static str| {
        let body = json!({"name": scope, "scope": scope, "project": "default", "environment": "development"});
        async move {
            let (st, _, k) = s
                .admin(Method::POST, "/api/v1/keys", Some(&body), &[])
                .await;
            assert_eq!(st, StatusCode::CREATED, "{k}");
            k["secret"].as_str().unwrap().to_owned()
        }
    };
    (key("server").await, key("client").await)
}

/// A fixed set of contexts.
fn contexts() -> Vec<Value> {
    (0..12)
        .map(|i| {
            let country = ["CA", "US"][i % 2];
            let plan = ["pro", "free", "team"][i % 3];
            json!({"targetingKey": format!("u{i}"), "country": country,
                   "plan": plan, "company": format!("c{}", i % 5)})
        })
        .collect()
}

/// Every flag's OFREP answer for every context, as one value to compare.
async fn answers(s: &Server, key: &str) -> Value {
    let mut out = Vec::new();
    for ctx in contexts() {
        let (st, _, body) = s
            .call(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(key),
                Some(&json!({"context": ctx})),
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        out.push(body["flags"].clone());
    }
    Value::Array(out)
}

/// Polls `check` until it holds (10 s at most).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn readyz(s: &Server) -> (StatusCode, Value) {
    let (st, _, body) = s.call(Method::GET, "/readyz", None, None, &[]).await;
    (st, body)
}

async fn version_at(s: &Server, key: &str) -> i64 {
    let (_, _, body) = s
        .call(
            Method::POST,
            "/api/v1/evaluate",
            Some(key),
            Some(&json!({})),
            &[],
        )
        .await;
    body["version"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn the_edge_answers_as_the_server_and_survives_it_and_its_own_restart() {
    let (data, _dir) = sqlite();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let server = Server::spawn(crate::BIN, &data, &[]);
    let (server_key, client_key) = setup(&server).await;
    let edge = Server::spawn_edge(
        crate::BIN,
        &server.base,
        &[&server_key],
        &["--cache-dir", &cache_dir],
    );
    eventually("edge ready", || async {
        readyz(&edge).await.0 == StatusCode::OK
    })
    .await;
    let expected = answers(&server, &server_key).await;
    assert_eq!(answers(&edge, &server_key).await, expected);
    // Client keys are checked at the edge, offline, from the hashes.
    assert_eq!(answers(&edge, &client_key).await, expected);
    let (st, _, _) = edge
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some("vxs_not-a-key-0123456789"),
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Server killed: the edge answers every flag exactly as before.
    server.kill9();
    assert_eq!(answers(&edge, &client_key).await, expected);
    eventually("readyz says stale", || async {
        let (st, body) = readyz(&edge).await;
        st == StatusCode::OK && body["environments"]["default/development"]["status"] == "stale"
    })
    .await;

    // Edge restarted while the server is down: it serves from its cache.
    assert!(edge.terminate(), "a clean stop");
    let started = Instant::now();
    let edge = Server::spawn_edge(
        crate::BIN,
        "http://127.0.0.1:9",
        &[&server_key],
        &["--cache-dir", &cache_dir],
    );
    let (st, body) = readyz(&edge).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let env = &body["environments"]["default/development"];
    assert_eq!(
        (env["status"].as_str(), env["version"].as_i64()),
        (Some("stale"), Some(3)),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(answers(&edge, &client_key).await, expected);
    drop(edge);

    // A truncated cache file is refused, never served.
    let file = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".vexil-cache"))
        .expect("a cache file");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let edge = Server::spawn_edge(
        crate::BIN,
        "http://127.0.0.1:9",
        &[&server_key],
        &["--cache-dir", &cache_dir],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, body) = readyz(&edge).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (st, _, _) = edge
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(&client_key),
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "no keys known: nothing served"
    );
}

#[tokio::test]
async fn after_a_cut_the_edge_resumes_with_only_the_missed_changes() {
    let (data, _dir) = sqlite();
    let server = Server::spawn(crate::BIN, &data, &[]);
    let (server_key, _) = setup(&server).await;
    let upstream = server.base.trim_start_matches("http://").parse().unwrap();
    let proxy = TcpProxy::start(upstream).await;
    let edge = Server::spawn_edge(
        crate::BIN,
        &format!("http://{}", proxy.addr()),
        &[&server_key],
        &[],
    );
    eventually("edge ready", || async {
        readyz(&edge).await.0 == StatusCode::OK
    })
    .await;
    // A subscriber of the edge's own stream sees what the edge receives.
    let mut sub = edge
        .http
        .get(edge.url("/api/v1/stream"))
        .bearer_auth(&server_key)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("event: snapshot") {
        seen.push_str(&String::from_utf8_lossy(
            &sub.chunk().await.unwrap().unwrap(),
        ));
    }
    seen.clear();
    proxy.cut();
    for enabled in [false, true] {
        let (st, _, body) = server
            .admin(
                Method::POST,
                &format!("{ENV}/flags/banner/toggle"),
                Some(&json!({"enabled": enabled})),
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    proxy.restore();
    eventually("the edge caught up", || async {
        version_at(&edge, &server_key).await == 5
    })
    .await;
    // Exactly the two missed versions travelled, as changes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(seen.contains("id: 4") && seen.contains("id: 5")) && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(1), sub.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(
        seen.contains("id: 4\nevent: change") && seen.contains("id: 5\nevent: change"),
        "{seen}"
    );
    assert!(
        !seen.contains("event: snapshot"),
        "a resume, not a snapshot: {seen}"
    );
}

#[tokio::test]
async fn changes_and_revocations_travel_through_a_chain_of_edges_to_an_sdk() {
    let (data, _dir) = sqlite();
    let server = Server::spawn(crate::BIN, &data, &[]);
    let (server_key, client_key) = setup(&server).await;
    let first = Server::spawn_edge(crate::BIN, &server.base, &[&server_key], &[]);
    eventually("first edge ready", || async {
        readyz(&first).await.0 == StatusCode::OK
    })
    .await;
    let second = Server::spawn_edge(crate::BIN, &first.base, &[&server_key], &[]);
    eventually("second edge ready", || async {
        readyz(&second).await.0 == StatusCode::OK
    })
    .await;
    let client = vexil_sdk::Client::builder()
        .upstream(&second.base, &server_key)
        .build()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let ctx = vexil_sdk::Context::new().with_targeting_key("u1");
    assert_eq!(client.string_value("banner", &ctx, "none"), "red");
    let (st, _, _) = server
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/banner"),
            Some(&json!({"variants": {"red": "red", "blue": "blue"}, "defaultServe": {"variant": "blue"}})),
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    eventually("the change reached the SDK", || async {
        client.string_value("banner", &ctx, "none") == "blue"
    })
    .await;
    // Revoking the client key upstream takes effect at the last edge.
    assert_eq!(
        answers(&second, &client_key)
            .await
            .as_array()
            .unwrap()
            .len(),
        12
    );
    let (_, _, keys) = server.admin(Method::GET, "/api/v1/keys", None, &[]).await;
    let id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scope"] == "client")
        .unwrap()["id"]
        .clone();
    server.revoke(&id).await;
    eventually("the revocation reached the second edge", || async {
        let (st, _, _) = second
            .call(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&client_key),
                Some(&json!({})),
                &[],
            )
            .await;
        st == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
async fn a_version_that_does_not_compile_at_the_edge_leaves_the_last_good_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    let good = json!({"flags": {"on": {"state": "ENABLED", "variants": {"yes": true, "no": false}, "defaultVariant": "yes"}}});
    std::fs::write(&file, good.to_string()).unwrap();
    let data = crate::support::Data::Sqlite(dir.path().join("unused").display().to_string());
    let server_key = "edge-test-server-key-0123456789";
    let server = Server::spawn(
        crate::BIN,
        &data,
        &[
            "--flags",
            file.to_str().unwrap(),
            "--server-key",
            server_key,
        ],
    );
    server.wait_ready().await;
    let edge = Server::spawn_edge(crate::BIN, &server.base, &[server_key], &[]);
    eventually("edge ready", || async {
        readyz(&edge).await.0 == StatusCode::OK
    })
    .await;
    // The server serves a broken flag as PARSE_ERROR; the edge, strict,
    // refuses that version and keeps the last good one.
    let broken = json!({"flags": {
        "on": {"state": "ENABLED", "variants": {"yes": true, "no": false}, "defaultVariant": "no"},
        "broken": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "missing"}}});
    std::fs::write(&file, broken.to_string()).unwrap();
    eventually("the server serves version 2", || async {
        version_at(&server, server_key).await == 2
    })
    .await;
    eventually("the edge refused it", || async {
        readyz(&edge).await.1["environments"]["default/default"]["refusedVersions"] == 1
    })
    .await;
    let (st, _, body) = edge
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags/on",
            Some(server_key),
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(
        (st, body["value"].clone()),
        (StatusCode::OK, json!(true)),
        "{body}"
    );
    assert_eq!(version_at(&edge, server_key).await, 1);
    let metrics = edge.metrics().await;
    assert!(
        metrics.contains(
            "vexil_edge_upstream_refused_versions_total{environment=\"default/default\"} 1"
        ),
        "{metrics}"
    );
}
