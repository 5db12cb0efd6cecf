//! OFREP evaluation and snapshot delivery over HTTP against the real server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ENV, Server};

/// Creates the test flags and a server and a client key; returns the keys.
pub(crate) async fn setup(s: &Server) -> (String, String) {
    let flags = [
        (
            "checkout",
            json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"}, "metadata": {"owner": "web"},
            "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": {"variant": "on"}}]}),
        ),
        (
            "ratio",
            json!({"variants": {"two": 2.0, "half": 0.5}, "defaultServe": {"variant": "two"}}),
        ),
        (
            "count",
            json!({"variants": {"small": 2, "large": 100}, "defaultServe": {"variant": "small"}}),
        ),
        (
            "dark",
            json!({"variants": {"on": true, "off": false}, "enabled": false, "defaultServe": {"variant": "on"}}),
        ),
        (
            "split",
            json!({"variants": {"a": "A", "b": "B"}, "defaultServe": {"rollout": {"weights": {"a": 50, "b": 50}}}}),
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
    let mut keys = Vec::new();
    for scope in ["server", "client"] {
        let (_, _, k) = s
            .admin(Method::POST, "/api/v1/keys", Some(&json!({"name": scope, "scope": scope, "project": "default", "environment": "development"})), &[])
            .await;
        keys.push(k["secret"].as_str().unwrap().to_owned());
    }
    (keys[0].clone(), keys[1].clone())
}

async fn post(
    s: &Server,
    path: &str,
    key: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = s
        .http
        .post(s.url(path))
        .body(body.to_owned())
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// `checkout` still answers `true` for a pro user: evaluation works.
async fn assert_checkout_evaluates(s: &Server, client: &str) {
    let (st, _, text) = post(
        s,
        "/ofrep/v1/evaluate/flags/checkout",
        Some(client),
        r#"{"context": {"plan": "pro"}}"#,
        &[],
    )
    .await;
    assert_eq!(
        (st, json_of(&text)["value"].clone()),
        (StatusCode::OK, json!(true))
    );
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn ofrep_single_flag_statuses_and_bodies() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = setup(&s).await;
    let one = |k: &str| format!("/ofrep/v1/evaluate/flags/{k}");

    let (st, h, text) = post(
        &s,
        &one("checkout"),
        Some(&client),
        r#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        json_of(&text),
        json!({"key": "checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {"owner": "web"}})
    );
    // A key with a percent-escape goes through the router, which decodes
    // it; plain keys are answered by the accept loop: the same answer.
    let (st, _, escaped) = post(
        &s,
        &one("check%6Fut"),
        Some(&client),
        r#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#,
        &[],
    )
    .await;
    assert_eq!((st, json_of(&escaped)), (StatusCode::OK, json_of(&text)));
    // No targeting key, `{}`, an empty body: all fine.
    for body in [r#"{"context": {"plan": "free"}}"#, "{}", ""] {
        let (st, _, text) = post(&s, &one("checkout"), Some(&server), body, &[]).await;
        assert_eq!(
            (st, json_of(&text)["reason"].clone()),
            (StatusCode::OK, json!("DEFAULT")),
            "{body:?}"
        );
    }
    // Floats stay floats, integers stay integers.
    let (_, _, text) = post(&s, &one("ratio"), Some(&client), "{}", &[]).await;
    assert!(text.contains("\"value\":2.0"), "{text}");
    let (_, _, text) = post(&s, &one("count"), Some(&client), "{}", &[]).await;
    assert!(text.contains("\"value\":2,"), "{text}");
    // A disabled flag without off variant: success, no value, variant null.
    let (st, _, text) = post(&s, &one("dark"), Some(&client), "{}", &[]).await;
    assert_eq!(
        (st, json_of(&text)),
        (
            StatusCode::OK,
            json!({"key": "dark", "reason": "DISABLED", "variant": null, "metadata": {}})
        )
    );

    let (st, _, text) = post(&s, &one("nope"), Some(&client), "{}", &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(&text),
        json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "flag `nope` not found"})
    );
    let (st, _, text) = post(&s, &one("split"), Some(&client), "{}", &[]).await;
    assert_eq!(
        (st, json_of(&text)["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("TARGETING_KEY_MISSING"))
    );
    for bad in [r#"{"context": [1]}"#, "{not json"] {
        let (st, _, text) = post(&s, &one("checkout"), Some(&client), bad, &[]).await;
        let v = json_of(&text);
        assert_eq!(
            (st, v["errorCode"].clone(), v["key"].clone()),
            (
                StatusCode::BAD_REQUEST,
                json!("INVALID_CONTEXT"),
                json!("checkout")
            ),
            "{bad}"
        );
        assert!(v["errorDetails"].as_str().is_some_and(|d| !d.is_empty()));
    }

    // Targeting that names a variant the flag does not have: GENERAL.
    let odd = json!({"variants": {"on": true, "off": false}, "targeting": {"if": [true, "maybe", "on"]}, "defaultServe": {"variant": "off"}});
    let (st, _, _) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/odd"),
            Some(&odd),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, text) = post(&s, &one("odd"), Some(&client), "{}", &[]).await;
    let v = json_of(&text);
    assert_eq!(
        (st, v["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("GENERAL"))
    );
    assert!(
        v["errorDetails"]
            .as_str()
            .unwrap()
            .contains("unknown variant `maybe`"),
        "{v}"
    );

    let (st, _, _) = post(&s, &one("checkout"), None, "{}", &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = post(&s, &one("checkout"), Some("vxc_wrong"), "{}", &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = post(
        &s,
        &one("checkout"),
        Some(crate::support::ADMIN_KEY),
        "{}",
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "admin keys name no environment");
    let resp = s
        .http
        .post(s.url(&one("checkout")))
        .header("x-api-key", &client)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn ofrep_bulk_etag_and_cors() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    let bulk = "/ofrep/v1/evaluate/flags";
    let ctx = r#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#;
    let (st, h, text) = post(&s, bulk, Some(&client), ctx, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let etag = h["etag"].to_str().unwrap().to_owned();
    let body = json_of(&text);
    let by_key = |k: &str| {
        body["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == k)
            .cloned()
            .unwrap()
    };
    assert_eq!(body["flags"].as_array().unwrap().len(), 5);
    assert_eq!(by_key("checkout")["value"], true);
    assert_eq!(
        by_key("dark"),
        json!({"key": "dark", "reason": "DISABLED", "variant": null, "metadata": {}})
    );
    assert_eq!(by_key("split")["reason"], "SPLIT");

    let (st, h, text) = post(&s, bulk, Some(&client), ctx, &[("if-none-match", &etag)]).await;
    assert_eq!(
        (st, text.as_str(), h["etag"].to_str().unwrap()),
        (StatusCode::NOT_MODIFIED, "", etag.as_str())
    );
    // Another context, or a changed flag, gives another ETag.
    let (_, h2, _) = post(
        &s,
        bulk,
        Some(&client),
        r#"{"context": {"targetingKey": "u2"}}"#,
        &[],
    )
    .await;
    assert_ne!(h2["etag"], etag.as_str());
    s.admin(
        Method::POST,
        &format!("{ENV}/flags/checkout/toggle"),
        Some(&json!({"enabled": false})),
        &[],
    )
    .await;
    let (st, h3, _) = post(&s, bulk, Some(&client), ctx, &[("if-none-match", &etag)]).await;
    assert_eq!(st, StatusCode::OK);
    assert_ne!(h3["etag"], etag.as_str());

    // Browsers: preflight allowed, ETag readable.
    let resp = s
        .http
        .request(Method::OPTIONS, s.url(bulk))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,if-none-match",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let resp = s
        .http
        .post(s.url(bulk))
        .bearer_auth(&client)
        .header("origin", "https://app.example.com")
        .body("{}")
        .send()
        .await
        .unwrap();
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
}

#[tokio::test]
async fn snapshot_delivery_for_server_keys_only() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = setup(&s).await;
    let resp = s
        .http
        .get(s.url("/api/v1/snapshot"))
        .bearer_auth(&server)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"5\"");
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("must-revalidate")
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["flags"].as_object().unwrap().len(), 5);
    // What edges receive compiles to the same answers.
    let compiled = vexil_engine::check(&doc.to_string(), vexil_engine::Format::Native);
    assert!(compiled.problems.is_empty());
    let compiled = compiled.flags;
    assert_eq!(compiled, 5);
    let resp = s
        .http
        .get(s.url("/api/v1/snapshot"))
        .bearer_auth(&server)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let resp = s
        .http
        .get(s.url("/api/v1/snapshot"))
        .bearer_auth(&client)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_keys_that_may_read_an_environment_for_polling_followers() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = setup(&s).await;
    let get = |key: &str, etag: Option<&str>| {
        let mut req = s.http.get(s.url("/api/v1/snapshot/keys")).bearer_auth(key);
        if let Some(etag) = etag {
            req = req.header("if-none-match", etag);
        }
        req.send()
    };
    let resp = get(&server, None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let hash = |secret: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let mut listed: Vec<(String, String)> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["hash"].as_str().unwrap().to_owned(),
                k["scope"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    let mut expected = vec![
        (hash(&server), "server".to_owned()),
        (hash(&client), "client".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed, expected, "{body}");
    assert_eq!(
        (body["project"].as_str(), body["environment"].as_str()),
        (Some("default"), Some("development")),
        "{body}"
    );
    // Unchanged: 304; the keys are secrets' hashes, readable by server keys only.
    let resp = get(&server, Some(&etag)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let resp = get(&client, None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A revoked key leaves the list, and the ETag moves.
    let (_, _, keys) = s.admin(Method::GET, "/api/v1/keys", None, &[]).await;
    let list = keys["items"]
        .as_array()
        .or(keys["keys"].as_array())
        .or(keys.as_array());
    let id = list
        .unwrap_or_else(|| panic!("{keys}"))
        .iter()
        .find(|k| k["scope"] == "client")
        .unwrap()["id"]
        .clone();
    s.revoke(&id).await;
    let resp = get(&server, Some(&etag)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["keys"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn evaluation_keeps_working_when_the_store_is_down() {
    let Some(url) = vexil_test_support::postgres_url() else {
        return;
    };
    let (db, name) = vexil_test_support::create_database(&url).await;
    let data = crate::support::Data::Postgres(db.clone());
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    // Take the database away under the running server.
    vexil_test_support::drop_database(&db).await;
    let _ = name;
    assert_checkout_evaluates(&s, &client).await;
    let started = std::time::Instant::now();
    let (st, _, body) = s
        .admin(
            Method::POST,
            &format!("{ENV}/flags/checkout/toggle"),
            Some(&json!({"enabled": false})),
            &[],
        )
        .await;
    assert!(
        st.is_server_error() || st == StatusCode::UNAUTHORIZED,
        "{st} {body}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "writes fail fast"
    );
    let (st, _, ready) = s.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(
        (st, ready["store"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("unavailable"))
    );
}

#[tokio::test]
async fn metrics_expose_requests_evaluations_and_snapshots() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    for _ in 0..3 {
        post(
            &s,
            "/ofrep/v1/evaluate/flags/checkout",
            Some(&client),
            r#"{"context": {"plan": "pro"}}"#,
            &[],
        )
        .await;
    }
    post(
        &s,
        "/ofrep/v1/evaluate/flags",
        Some(&client),
        r#"{"context": {"targetingKey": "u"}}"#,
        &[],
    )
    .await;
    let (st, _, _) = s
        .admin(
            Method::GET,
            "/api/v1/projects/default/environments/nope",
            None,
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let text = s.metrics().await;
    for line in [
        "vexil_http_requests_total{route=\"/ofrep/v1/evaluate/flags/{key}\",status=\"200\"} 3",
        "vexil_http_request_duration_seconds_count{route=\"/ofrep/v1/evaluate/flags/{key}\",status=\"any\"} 3",
        "vexil_evaluations_total{environment=\"default/development\",reason=\"TARGETING_MATCH\"} 3",
        "vexil_evaluations_total{environment=\"default/development\",reason=\"SPLIT\"} 1",
        "vexil_snapshot_version{environment=\"default/development\"} 5",
        "vexil_snapshot_flags{environment=\"default/development\"} 5",
        "vexil_store_up 1",
        "vexil_store_calls_total{operation=\"commit\"} 5",
        "vexil_store_errors_total{operation=\"environment\",kind=\"NotFound\"}",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(text.contains("vexil_snapshot_age_seconds{environment=\"default/production\"}"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_whole_seconds_retry_after() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start_with(
        &data,
        &["--rate-limit-client", "5", "--rate-limit-server", "2"],
    );
    let (server, client) = setup(&s).await;
    let url = "/ofrep/v1/evaluate/flags/checkout";
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (st, h, text) = post(&s, url, Some(&client), "{}", &[]).await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            let retry = h["retry-after"].to_str().unwrap();
            assert!(
                retry.parse::<u64>().is_ok_and(|n| n >= 1),
                "Retry-After {retry}"
            );
            assert!(
                json_of(&text)["errorDetails"]
                    .as_str()
                    .unwrap()
                    .contains("rate limit")
            );
        }
        statuses.push(st.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    // Each key has its own bucket.
    let (st, _, _) = post(&s, url, Some(&server), "{}", &[]).await;
    assert_eq!(st, StatusCode::OK);
    // Tokens come back with time.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, _, _) = post(&s, url, Some(&client), "{}", &[]).await;
    assert_eq!(st, StatusCode::OK);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(
            "vexil_http_requests_total{route=\"/ofrep/v1/evaluate/flags/{key}\",status=\"429\"} 3"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn admin_keys_are_rate_limited_too() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start_with(&data, &["--rate-limit-admin", "3"]);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (st, h, body) = s.admin(Method::GET, "/api/v1/projects", None, &[]).await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["code"], "rate_limited");
            assert!(h.contains_key("retry-after"));
        }
        codes.push(st.as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn native_evaluation_with_versions_and_read_your_writes() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    let (st, _, text) = post(
        &s,
        "/api/v1/evaluate",
        Some(&client),
        r#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let all = json_of(&text);
    assert_eq!(all["version"], 5);
    assert_eq!(all["flags"].as_object().unwrap().len(), 5);
    assert_eq!(
        all["flags"]["checkout"],
        json!({"value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {"owner": "web"}})
    );
    let (_, _, text) = post(
        &s,
        "/api/v1/evaluate",
        Some(&client),
        r#"{"context": {}, "flags": ["ratio", "nope"]}"#,
        &[],
    )
    .await;
    let some = json_of(&text);
    assert_eq!(some["flags"].as_object().unwrap().len(), 2);
    assert_eq!(some["flags"]["nope"]["errorCode"], "FLAG_NOT_FOUND");

    // A writer names the version it wrote; the answer is at least that new.
    let (_, _, written) = s
        .admin(
            Method::POST,
            &format!("{ENV}/flags/checkout/toggle"),
            Some(&json!({"enabled": false})),
            &[],
        )
        .await;
    let v = written["version"].as_i64().unwrap();
    let body =
        format!(r#"{{"context": {{"plan": "pro"}}, "flags": ["checkout"], "minVersion": {v}}}"#);
    let (st, _, text) = post(&s, "/api/v1/evaluate", Some(&client), &body, &[]).await;
    assert_eq!(
        (st, json_of(&text)["flags"]["checkout"]["reason"].clone()),
        (StatusCode::OK, json!("DISABLED"))
    );
    // A version nobody wrote: a bounded wait, then an explicit "stale".
    let started = std::time::Instant::now();
    let (st, h, text) = post(
        &s,
        "/api/v1/evaluate",
        Some(&client),
        r#"{"minVersion": 999}"#,
        &[],
    )
    .await;
    assert_eq!(
        (st, json_of(&text)["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("stale"))
    );
    assert_eq!(h["retry-after"], "1");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    let (st, _, text) = post(
        &s,
        "/api/v1/evaluate",
        Some(&client),
        r#"{"context": [1]}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{text}");
    let (st, _, text) = post(
        &s,
        "/api/v1/evaluate",
        Some(&client),
        r#"{"contxt": {}}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(text.contains("unknown field `contxt`"), "{text}");
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_with_503_at_once() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start_with(&data, &["--max-in-flight", "1"]);
    let (_, client) = setup(&s).await;
    // One request holds the only slot (waiting for a version that never comes).
    let holder = {
        let (http, url, client) = (s.http.clone(), s.url("/api/v1/evaluate"), client.clone());
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(client)
                .body(r#"{"minVersion": 999}"#)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let (st, h, text) = post(
        &s,
        "/ofrep/v1/evaluate/flags/checkout",
        Some(&client),
        "{}",
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert_eq!(h["retry-after"], "1");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "shed at once"
    );
    let (st, _, body) = s.admin(Method::GET, "/api/v1/projects", None, &[]).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded"))
    );
    assert_eq!(
        holder.await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the holder itself ends stale"
    );
    let (st, _, _) = post(
        &s,
        "/ofrep/v1/evaluate/flags/checkout",
        Some(&client),
        "{}",
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "the slot is free again");
}

// Issue 13, item 7: with the store cut off, admin requests (reads too) fail
// fast with 503 and Retry-After instead of each waiting for the database's
// connect timeout; evaluation keeps answering; the server recovers by
// itself when the store is back. (Multi-threaded: the proxy must run while
// the test blocks on starting the server.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_fail_fast_with_retry_after_while_the_store_is_down() {
    let Some(url) = vexil_test_support::postgres_url() else {
        return;
    };
    let (db, _name) = vexil_test_support::create_database(&url).await;
    let proxy = vexil_test_support::TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_proxy = db.replacen("127.0.0.1:5432", &proxy.addr().to_string(), 1);
    assert_ne!(
        via_proxy, db,
        "test database URL must use 127.0.0.1:5432: {db}"
    );
    let data = crate::support::Data::Postgres(via_proxy);
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    proxy.cut();
    // The first request finds out (within the pool's connect timeout).
    let (st, headers, body) = s
        .admin(Method::GET, &format!("{ENV}/flags"), None, &[])
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "store_unavailable", "{body}");
    assert!(headers.contains_key("retry-after"));
    // From then on: at once, for reads and writes.
    for (method, path, body) in [
        (Method::GET, format!("{ENV}/flags"), None),
        (Method::GET, "/api/v1/projects".to_owned(), None),
        (
            Method::POST,
            format!("{ENV}/flags/checkout/toggle"),
            Some(json!({"enabled": false})),
        ),
    ] {
        let started = std::time::Instant::now();
        let (st, headers, resp) = s.admin(method, &path, body.as_ref(), &[]).await;
        let took = started.elapsed();
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{path}: {resp}");
        assert_eq!(headers["retry-after"], "2");
        assert!(
            took < std::time::Duration::from_millis(1000),
            "{path} took {took:?}"
        );
    }
    assert_checkout_evaluates(&s, &client).await;
    proxy.restore();
    let started = std::time::Instant::now();
    loop {
        let (st, _, _) = s
            .admin(Method::GET, &format!("{ENV}/flags"), None, &[])
            .await;
        if st == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "no recovery: {st}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(s);
    vexil_test_support::drop_database(&db).await;
}

// issue 12, items 5 and 6: a flag without a value answers DEFAULT, and a
// targeting key that is not a string is treated as absent (as flagd does),
// over OFREP and the native API alike.
#[tokio::test]
async fn non_string_targeting_keys_are_absent_and_valueless_flags_answer_default() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/nodefault"),
            Some(&json!({"variants": {"on": true, "off": false}})),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let one = |k: &str| format!("/ofrep/v1/evaluate/flags/{k}");
    let (st, _, text) = post(&s, &one("nodefault"), Some(&client), "{}", &[]).await;
    assert_eq!(
        (st, json_of(&text)),
        (
            StatusCode::OK,
            json!({"key": "nodefault", "reason": "DEFAULT", "variant": null, "metadata": {}})
        )
    );
    for key in ["5", "true", "[1]"] {
        let ctx = format!(r#"{{"context": {{"targetingKey": {key}, "plan": "pro"}}}}"#);
        let (st, _, text) = post(&s, &one("checkout"), Some(&client), &ctx, &[]).await;
        assert_eq!(
            (st, json_of(&text)["reason"].clone()),
            (StatusCode::OK, json!("TARGETING_MATCH")),
            "{ctx}: {text}"
        );
        // A rollout then has no targeting key, as without one.
        let (st, _, text) = post(&s, &one("split"), Some(&client), &ctx, &[]).await;
        assert_eq!(
            (st, json_of(&text)["errorCode"].clone()),
            (StatusCode::BAD_REQUEST, json!("TARGETING_KEY_MISSING")),
            "{ctx}: {text}"
        );
        let (st, _, text) = post(&s, "/api/v1/evaluate", Some(&client), &ctx, &[]).await;
        let v = json_of(&text);
        assert_eq!(st, StatusCode::OK, "{text}");
        assert_eq!(
            v["flags"]["checkout"]["reason"], "TARGETING_MATCH",
            "{text}"
        );
        assert_eq!(
            v["flags"]["split"]["errorCode"], "TARGETING_KEY_MISSING",
            "{text}"
        );
        assert_eq!(v["flags"]["nodefault"]["reason"], "DEFAULT", "{text}");
    }
}

// issue 12, item 12: native evaluation is in /metrics like OFREP is.
#[tokio::test]
async fn native_evaluation_is_counted_in_metrics() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = setup(&s).await;
    for _ in 0..2 {
        let (st, _, text) = post(
            &s,
            "/api/v1/evaluate",
            Some(&client),
            r#"{"context": {"targetingKey": "u", "plan": "pro"}, "flags": ["checkout", "split", "nope"]}"#,
            &[],
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{text}");
    }
    let (st, _, _) = post(&s, "/api/v1/evaluate", Some(&client), "{not json", &[]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let text = s.metrics().await;
    for line in [
        "vexil_http_requests_total{route=\"/api/v1/evaluate\",status=\"200\"} 2",
        "vexil_http_requests_total{route=\"/api/v1/evaluate\",status=\"400\"} 1",
        "vexil_http_request_duration_seconds_count{route=\"/api/v1/evaluate\",status=\"any\"} 3",
        "vexil_evaluations_total{environment=\"default/development\",reason=\"TARGETING_MATCH\"} 2",
        "vexil_evaluations_total{environment=\"default/development\",reason=\"SPLIT\"} 2",
        "vexil_evaluations_total{environment=\"default/development\",reason=\"ERROR\"} 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

// Issue 7: every refusal of the native evaluation route is in the data
// plane's format, an invalid body included (it was the admin API's
// `{code, message}` before).
#[tokio::test]
async fn native_evaluation_refuses_a_bad_body_in_the_data_plane_format() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = setup(&s).await;
    for body in [
        json!({"contxt": {}}),
        json!({"flags": "checkout"}),
        json!({"minVersion": 1.5}),
    ] {
        let (st, _, answer) = s
            .call(
                Method::POST,
                "/api/v1/evaluate",
                Some(&server),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["errorCode"], "GENERAL", "{body}: {answer}");
        assert!(answer["errorDetails"].is_string(), "{answer}");
        assert!(answer.get("code").is_none(), "{answer}");
    }
}

// Issue 10: explain mode in the native API says why each flag gives what
// it gives: which rule and clause decided, and the rollout's bucket.
#[tokio::test]
async fn native_evaluation_explains_each_answer_on_request() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = setup(&s).await;
    let flag = json!({"variants": {"on": true, "off": false}, "defaultServe": {"rollout": {"weights": {"on": 30, "off": 70}}},
        "rules": [{"name": "canadian pros", "clauses": [{"attribute": "country", "op": "in", "values": ["CA"]},
                                                         {"attribute": "plan", "op": "in", "values": ["pro"]}],
                   "serve": {"variant": "on"}}]});
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/why"),
            Some(&flag),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let ask = |ctx: Value, explain: bool| {
        let s = &s;
        let server = server.clone();
        async move {
            let (st, _, body) = s
                .call(
                    Method::POST,
                    "/api/v1/evaluate",
                    Some(&server),
                    Some(&json!({"context": ctx, "flags": ["why"], "explain": explain})),
                    &[],
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{body}");
            body["flags"]["why"].clone()
        }
    };
    // A rule match: both clauses true, the rule served `on`.
    let matched = ask(
        json!({"targetingKey": "u1", "country": "CA", "plan": "pro"}),
        true,
    )
    .await;
    assert_eq!(matched["reason"], "TARGETING_MATCH", "{matched}");
    let steps = matched["trace"]["steps"].as_array().unwrap();
    let rule = steps
        .iter()
        .find(|s| s["step"] == "rule")
        .expect("a rule step");
    assert_eq!(rule["matched"], true, "{rule}");
    let results: Vec<&Value> = rule["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["result"])
        .collect();
    assert_eq!(results, [&json!(true), &json!(true)], "{rule}");
    // A rollout: the second clause fails, the default rollout picks by bucket.
    let rolled = ask(
        json!({"targetingKey": "u1", "country": "CA", "plan": "free"}),
        true,
    )
    .await;
    assert_eq!(rolled["reason"], "SPLIT", "{rolled}");
    let steps = rolled["trace"]["steps"].as_array().unwrap();
    let rule = steps.iter().find(|s| s["step"] == "rule").unwrap();
    assert_eq!(
        (
            rule["matched"].clone(),
            rule["clauses"][1]["actual"].clone()
        ),
        (json!(false), json!("free")),
        "{rule}"
    );
    let serve = steps.iter().find(|s| s["step"] == "serve").unwrap();
    let bucket = serve["rollout"]["bucket"].as_f64().unwrap();
    let total = serve["rollout"]["total"].as_f64().unwrap();
    let expected = if bucket < 0.3 * total { "on" } else { "off" };
    assert_eq!(serve["rollout"]["variant"], expected, "{serve}");
    assert_eq!(rolled["variant"], expected, "{rolled}");
    // Without explain: the same answer, no trace.
    let plain = ask(
        json!({"targetingKey": "u1", "country": "CA", "plan": "free"}),
        false,
    )
    .await;
    assert!(plain.get("trace").is_none(), "{plain}");
    assert_eq!(
        (plain["value"].clone(), plain["variant"].clone()),
        (rolled["value"].clone(), rolled["variant"].clone())
    );
}
