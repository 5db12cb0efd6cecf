//! Every admin route refuses a missing, unknown or revoked key (401) and a
//! key of the wrong scope or project (403).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ENV, Server, flag_def};

/// A sample body for each admin route that takes one, by method and path
/// template; routes without one are sent no body.
fn sample_body(method: &Method, template: &str) -> Option<Value> {
    let env = "/api/v1/projects/{project}/environments/{env}";
    let body = match (method.as_str(), template.strip_prefix(env)) {
        ("POST", _) if template == "/api/v1/projects" => json!({"key": "p2"}),
        ("POST", _) if template == "/api/v1/projects/{project}/environments" => {
            json!({"key": "e2"})
        }
        ("POST", _) if template == "/api/v1/keys" => json!({"name": "k", "scope": "admin"}),
        ("PUT", Some("/flags/{key}")) => flag_def(true),
        ("PUT", Some("/segments/{key}")) => json!({}),
        ("POST", Some("/flags/{key}/toggle")) => json!({"enabled": false}),
        ("POST", Some("/flags/{key}/copy")) => json!({"to": "production"}),
        ("POST", Some("/import")) => json!({"flags": {}}),
        ("PATCH", Some("")) => json!({"bucketing": "concat"}),
        _ => return None,
    };
    Some(body)
}

/// Every admin route of the router (the data plane's routes, health,
/// metrics and the OpenAPI description excluded), made concrete: project
/// `default`, environment `development`, flag `f`, segment `s`, key 1.
pub(crate) fn routes() -> Vec<(Method, String, Option<Value>)> {
    vexil_server::routes()
        .into_iter()
        .filter(|(_, template)| {
            template.starts_with("/api/v1/")
                && !matches!(
                    template.as_str(),
                    "/api/v1/snapshot"
                        | "/api/v1/snapshot/keys"
                        | "/api/v1/stream"
                        | "/api/v1/evaluate"
                )
        })
        .map(|(method, template)| {
            let body = sample_body(&method, &template);
            let key = if template.contains("/segments/") {
                "s"
            } else {
                "f"
            };
            let path = template
                .replace("{project}", "default")
                .replace("{env}", "development")
                .replace("{key}", key)
                .replace("{id}", "1");
            (method, path, body)
        })
        .collect()
}

#[test]
fn the_walk_covers_every_admin_route_of_the_router() {
    let routes = routes();
    assert!(
        routes.iter().all(|(_, p, _)| !p.contains('{')),
        "{routes:?}"
    );
    // A new route that takes a body needs a sample here, or the walk would
    // send it none and see 400 instead of the key checks.
    let bodiless = ["/archive", "/restore", "/revoke"];
    let missing: Vec<_> = routes
        .iter()
        .filter(|(m, p, body)| {
            (*m == Method::POST || *m == Method::PUT || *m == Method::PATCH)
                && body.is_none()
                && !bodiless.iter().any(|b| p.ends_with(b))
        })
        .collect();
    assert!(missing.is_empty(), "no sample body: {missing:?}");
}

async fn new_key(s: &Server, body: Value) -> String {
    let (st, _, resp) = s
        .admin(Method::POST, "/api/v1/keys", Some(&body), &[])
        .await;
    assert_eq!(st, StatusCode::CREATED, "{resp}");
    resp["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_admin_route_refuses_missing_wrong_revoked_and_out_of_scope_keys() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    s.admin(
        Method::PUT,
        &format!("{ENV}/flags/f"),
        Some(&flag_def(true)),
        &[("if-none-match", "*")],
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/projects",
        Some(&json!({"key": "other"})),
        &[],
    )
    .await;

    let server = new_key(&s, json!({"name": "edge", "scope": "server", "project": "default", "environment": "development"})).await;
    let client = new_key(&s, json!({"name": "web", "scope": "client", "project": "default", "environment": "development"})).await;
    let other_admin = new_key(
        &s,
        json!({"name": "other-admin", "scope": "admin", "project": "other"}),
    )
    .await;
    let revoked = new_key(&s, json!({"name": "old", "scope": "admin"})).await;
    let (_, _, keys) = s.admin(Method::GET, "/api/v1/keys", None, &[]).await;
    let id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "old")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (st, _, body) = s
        .admin(
            Method::POST,
            &format!("/api/v1/keys/{id}/revoke"),
            None,
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(body["revokedAt"].is_i64());
    assert!(
        keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none()),
        "secrets are never listed"
    );

    let callers: Vec<(&str, Option<&str>, StatusCode)> = vec![
        ("no key", None, StatusCode::UNAUTHORIZED),
        (
            "unknown key",
            Some("vxa_not-a-real-key"),
            StatusCode::UNAUTHORIZED,
        ),
        ("revoked key", Some(&revoked), StatusCode::UNAUTHORIZED),
        ("server key", Some(&server), StatusCode::FORBIDDEN),
        ("client key", Some(&client), StatusCode::FORBIDDEN),
        (
            "admin key of another project",
            Some(&other_admin),
            StatusCode::FORBIDDEN,
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body) in routes() {
        for (who, key, want) in &callers {
            // A project-limited admin may list projects and keys (only its own).
            if *who == "admin key of another project"
                && method == Method::GET
                && (path == "/api/v1/projects" || path == "/api/v1/keys")
            {
                continue;
            }
            let (st, _, resp) = s
                .call(
                    method.clone(),
                    &path,
                    *key,
                    body.as_ref(),
                    &[("if-none-match", "*")],
                )
                .await;
            if st != *want || resp["code"].as_str().is_none() {
                failures.push(format!("{method} {path} with {who}: {st} {resp}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing changed: the flag is still version 1, and the
    // project-limited admin sees only its own project.
    let (_, _, f) = s
        .admin(Method::GET, &format!("{ENV}/flags/f"), None, &[])
        .await;
    assert_eq!(f["version"], 1);
    let (_, _, projects) = s
        .call(
            Method::GET,
            "/api/v1/projects",
            Some(&other_admin),
            None,
            &[],
        )
        .await;
    assert_eq!(projects["items"].as_array().unwrap().len(), 1);
    assert_eq!(projects["items"][0]["key"], "other");
    // X-API-Key works as well as Authorization: Bearer.
    let resp = s
        .http
        .get(s.url("/api/v1/projects"))
        .header("x-api-key", crate::support::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

// Issue 13, item 10: `Authorization: Bearer` first, then `X-API-Key`; empty
// values of either count as absent.
#[tokio::test]
async fn an_empty_header_beside_a_valid_key_is_ignored() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = crate::ofrep::setup(&s).await;
    let admin = crate::support::ADMIN_KEY;
    let cases: [(&[(&str, String)], u16); 5] = [
        (
            &[
                ("authorization", format!("Bearer {admin}")),
                ("x-api-key", String::new()),
            ],
            200,
        ),
        (
            &[
                ("authorization", "Bearer ".into()),
                ("x-api-key", admin.into()),
            ],
            200,
        ),
        (
            &[
                ("authorization", format!("Bearer {admin}")),
                ("x-api-key", "nope".into()),
            ],
            200,
        ),
        (
            &[
                ("authorization", "Bearer nope".into()),
                ("x-api-key", admin.into()),
            ],
            401,
        ),
        (
            &[
                ("authorization", "Bearer ".into()),
                ("x-api-key", "  ".into()),
            ],
            401,
        ),
    ];
    for (headers, want) in cases {
        let mut req = s.http.get(s.url("/api/v1/projects"));
        for (h, v) in headers {
            req = req.header(*h, v);
        }
        let status = req.send().await.unwrap().status();
        assert_eq!(status.as_u16(), want, "admin route with {headers:?}");
    }
    let resp = s
        .http
        .post(s.url("/ofrep/v1/evaluate/flags/checkout"))
        .bearer_auth(&server)
        .header("x-api-key", "")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
