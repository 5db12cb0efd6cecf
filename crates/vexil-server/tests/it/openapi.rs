//! `/openapi.json` describes the routes the server really has, and nothing
//! else.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::Server;

/// Fills path parameters with values that exist after start-up.
fn concrete(template: &str) -> String {
    template
        .replace("{project}", "default")
        .replace("{env}", "development")
        .replace("{key}", "some-flag")
        .replace("{id}", "1")
}

/// Whether a concrete path matches a template.
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}

#[tokio::test]
async fn openapi_matches_the_router() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(Method, String)> = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase().parse().unwrap(), path.clone()));
        }
    }
    // Every documented operation is routed: not the fallback, not 405.
    let mut unrouted = Vec::new();
    for (method, template) in &documented {
        let (st, _, body) = s
            .admin(method.clone(), &concrete(template), None, &[])
            .await;
        let fallback = st == StatusCode::NOT_FOUND
            && (body["message"] == "no such route" || body["errorDetails"] == "no such route");
        if fallback || st == StatusCode::METHOD_NOT_ALLOWED {
            unrouted.push(format!("{method} {template}: {st}"));
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed:\n{}",
        unrouted.join("\n")
    );
    // Every route the other tests call is documented.
    let mut called: Vec<(Method, String)> = crate::auth::routes()
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    for (m, p) in [
        (Method::POST, "/ofrep/v1/evaluate/flags/x"),
        (Method::POST, "/ofrep/v1/evaluate/flags"),
        (Method::POST, "/api/v1/evaluate"),
        (Method::GET, "/api/v1/snapshot"),
        (Method::GET, "/api/v1/stream"),
        (Method::GET, "/ofrep/v1/events"),
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
    ] {
        called.push((m, p.to_owned()));
    }
    let undocumented: Vec<String> = called
        .iter()
        .filter(|(m, p)| !documented.iter().any(|(dm, t)| dm == m && matches(t, p)))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed but not documented:\n{}",
        undocumented.join("\n")
    );
}
