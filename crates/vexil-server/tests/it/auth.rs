//! Every admin route refuses a missing, unknown or revoked key (401) and a
//! key of the wrong scope or project (403).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ENV, Server, flag_def};

pub(crate) fn routes() -> Vec<(Method, String, Option<Value>)> {
    let flag = format!("{ENV}/flags/f");
    let seg = format!("{ENV}/segments/s");
    vec![
        (Method::GET, "/api/v1/projects".into(), None),
        (
            Method::POST,
            "/api/v1/projects".into(),
            Some(json!({"key": "p2"})),
        ),
        (Method::GET, "/api/v1/projects/default".into(), None),
        (
            Method::GET,
            "/api/v1/projects/default/environments".into(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/projects/default/environments".into(),
            Some(json!({"key": "e2"})),
        ),
        (Method::GET, ENV.into(), None),
        (Method::GET, format!("{ENV}/flags"), None),
        (Method::GET, flag.clone(), None),
        (Method::PUT, flag.clone(), Some(flag_def(true))),
        (Method::DELETE, flag.clone(), None),
        (
            Method::POST,
            format!("{flag}/toggle"),
            Some(json!({"enabled": false})),
        ),
        (Method::POST, format!("{flag}/archive"), None),
        (Method::POST, format!("{flag}/restore"), None),
        (
            Method::POST,
            format!("{flag}/copy"),
            Some(json!({"to": "production"})),
        ),
        (Method::GET, format!("{flag}/audit"), None),
        (Method::GET, format!("{ENV}/segments"), None),
        (Method::GET, seg.clone(), None),
        (Method::PUT, seg.clone(), Some(json!({}))),
        (Method::DELETE, seg.clone(), None),
        (Method::GET, format!("{seg}/audit"), None),
        (Method::GET, format!("{ENV}/audit"), None),
        (Method::GET, format!("{ENV}/export"), None),
        (
            Method::POST,
            format!("{ENV}/import"),
            Some(json!({"flags": {}})),
        ),
        (Method::GET, "/api/v1/keys".into(), None),
        (
            Method::POST,
            "/api/v1/keys".into(),
            Some(json!({"name": "k", "scope": "admin"})),
        ),
        (Method::POST, "/api/v1/keys/1/revoke".into(), None),
    ]
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
