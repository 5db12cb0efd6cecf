//! Media types of request bodies, and JSON errors in each route family's
//! format for the answers axum would give in plain text or empty
//! (issue 13, item 9).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_KEY, ENV, Server, flag_def};

/// Sends `body` with `key`, labelled with `content_type` (none: unlabelled).
async fn send(
    s: &Server,
    method: Method,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, s.url(path))
        .bearer_auth(key)
        .body(body.to_owned());
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

fn is_admin_error(body: &Value, code: &str) -> bool {
    body["code"] == code && body["message"].is_string()
}

fn is_data_plane_error(body: &Value) -> bool {
    body["errorCode"].is_string() && body["errorDetails"].is_string()
}

#[tokio::test]
async fn admin_json_routes_refuse_bodies_that_are_not_json() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let def = flag_def(true).to_string();
    let create = [("if-none-match", "*")];
    // Before: a JSON body sent as text/plain created the flag.
    for t in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/yaml",
    ] {
        let path = format!("{ENV}/flags/plain");
        let (st, _, body) = send(&s, Method::PUT, &path, ADMIN_KEY, Some(t), &def, &create).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{t}: {body}");
        assert!(is_admin_error(&body, "unsupported_media_type"), "{body}");
        let (st, _, _) = s.admin(Method::GET, &path, None, &[]).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{t}: nothing was stored");
        let (st, _, body) = send(
            &s,
            Method::POST,
            "/api/v1/projects",
            ADMIN_KEY,
            Some(t),
            r#"{"key": "p"}"#,
            &[],
        )
        .await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{t}: {body}");
    }
    // JSON with parameters, any case, and an unlabelled body are read as JSON.
    for (key, t) in [
        ("a", Some("application/json")),
        ("b", Some("Application/JSON; charset=utf-8")),
        ("c", None),
    ] {
        let path = format!("{ENV}/flags/{key}");
        let (st, _, body) = send(&s, Method::PUT, &path, ADMIN_KEY, t, &def, &create).await;
        assert_eq!(st, StatusCode::CREATED, "{t:?}: {body}");
    }
    // The refusal comes after authentication: no key still gets 401.
    let (st, _, body) = send(
        &s,
        Method::POST,
        "/api/v1/projects",
        "",
        Some("text/plain"),
        "{}",
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn import_accepts_json_and_yaml_and_refuses_other_types() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let import = format!("{ENV}/import?dryRun=true");
    let yaml = "flags:\n  y:\n    variants: {on: true}\n    defaultServe: {variant: on}\n";
    let json_doc =
        r#"{"flags": {"j": {"variants": {"on": true}, "defaultServe": {"variant": "on"}}}}"#;
    // `vexil import` labels every document, YAML too, as application/json.
    for (t, doc) in [
        (Some("application/yaml"), yaml),
        (Some("application/x-yaml"), yaml),
        (Some("text/yaml; charset=utf-8"), yaml),
        (Some("application/json"), yaml),
        (Some("application/json"), json_doc),
        (None, yaml),
    ] {
        let (st, _, body) = send(&s, Method::POST, &import, ADMIN_KEY, t, doc, &[]).await;
        assert_eq!(st, StatusCode::OK, "{t:?}: {body}");
        assert_eq!(body["flags"]["created"].as_array().map(Vec::len), Some(1));
    }
    for t in ["text/plain", "application/x-www-form-urlencoded"] {
        let (st, _, body) = send(&s, Method::POST, &import, ADMIN_KEY, Some(t), yaml, &[]).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{t}: {body}");
        assert!(is_admin_error(&body, "unsupported_media_type"), "{body}");
    }
}

#[tokio::test]
async fn data_plane_refuses_bodies_that_are_not_json_in_its_format() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = crate::ofrep::setup(&s).await;
    let ctx = r#"{"context": {"targetingKey": "u1"}}"#;
    for (path, key) in [
        ("/ofrep/v1/evaluate/flags/checkout", &client),
        ("/ofrep/v1/evaluate/flags", &client),
        ("/api/v1/evaluate", &server),
    ] {
        for t in ["text/plain", "application/x-www-form-urlencoded"] {
            let (st, headers, body) = send(
                &s,
                Method::POST,
                path,
                key,
                Some(t),
                ctx,
                &[("origin", "https://app.example")],
            )
            .await;
            assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path} {t}: {body}");
            assert!(is_data_plane_error(&body), "{path}: {body}");
            assert_eq!(headers["access-control-allow-origin"], "*");
        }
        // What the official providers send, an unlabelled body, and an
        // empty body without a type (an empty context) are all answered.
        for (t, b) in [
            (Some("application/json"), ctx),
            (Some("application/json; charset=utf-8"), ctx),
            (None, ctx),
            (None, ""),
            (Some("text/plain"), ""),
        ] {
            let (st, _, body) = send(&s, Method::POST, path, key, t, b, &[]).await;
            assert_eq!(st, StatusCode::OK, "{path} {t:?} {b:?}: {body}");
        }
    }
}

#[tokio::test]
async fn plain_text_rejections_become_the_families_json_errors() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start_with(&data, &["--max-body-bytes", "1024"]);
    let (_, client) = crate::ofrep::setup(&s).await;
    let big = format!(r#"{{"context": {{"x": "{}"}}}}"#, "a".repeat(4096));

    // 413 on OFREP was plain text.
    let (st, _, body) = send(
        &s,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &client,
        Some("application/json"),
        &big,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(is_data_plane_error(&body), "{body}");

    // A bad path parameter's 400 was plain text.
    let (st, _, body) = send(
        &s,
        Method::POST,
        "/ofrep/v1/evaluate/flags/%FF",
        &client,
        None,
        "",
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(is_data_plane_error(&body), "{body}");
    let (st, _, body) = s
        .admin(Method::GET, &format!("{ENV}/flags/%FF"), None, &[])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(is_admin_error(&body, "invalid_path"), "{body}");

    // 405 had an empty body; `Allow` stays.
    let (st, headers, body) = s.admin(Method::DELETE, "/api/v1/projects", None, &[]).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_admin_error(&body, "method_not_allowed"), "{body}");
    assert!(headers.contains_key("allow"));
    let (st, headers, body) = s
        .call(
            Method::GET,
            "/ofrep/v1/evaluate/flags",
            Some(&client),
            None,
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_data_plane_error(&body), "{body}");
    assert!(headers.contains_key("allow"));

    // Unknown routes answer in the family of their prefix.
    let (st, _, body) = s.admin(Method::GET, "/ofrep/v1/nope", None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(is_data_plane_error(&body), "{body}");
    let (st, _, body) = s.admin(Method::GET, "/api/v1/nope", None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(is_admin_error(&body, "not_found"), "{body}");

    // The admin 413 stays in its format.
    let (st, _, body) = send(
        &s,
        Method::POST,
        "/api/v1/projects",
        ADMIN_KEY,
        Some("application/json"),
        &json!({"key": "p", "name": "a".repeat(4096)}).to_string(),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );
}
