//! `/openapi.json` describes the routes the server really has, and nothing
//! else.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ENV, Server};

/// Fills path parameters with values that exist after start-up.
fn concrete(template: &str) -> String {
    template
        .replace("{project}", "default")
        .replace("{env}", "development")
        .replace("{key}", "some-flag")
        .replace("{id}", "1")
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
    // The router's own list of routes and the description's operations are
    // the same set.
    let routed: Vec<(Method, String)> = vexil_server::routes();
    let unrouted: Vec<String> = documented
        .iter()
        .filter(|d| !routed.contains(d))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed:\n{}",
        unrouted.join("\n")
    );
    let undocumented: Vec<String> = routed
        .iter()
        .filter(|r| !documented.contains(r))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed but not documented:\n{}",
        undocumented.join("\n")
    );
    // Every routed operation answers on the running server: not the
    // fallback, not 405.
    let mut unanswered = Vec::new();
    for (method, template) in &routed {
        let (st, _, body) = s
            .admin(method.clone(), &concrete(template), None, &[])
            .await;
        let fallback = st == StatusCode::NOT_FOUND
            && (body["message"] == "no such route" || body["errorDetails"] == "no such route");
        if fallback || st == StatusCode::METHOD_NOT_ALLOWED {
            unanswered.push(format!("{method} {template}: {st}"));
        }
    }
    assert!(
        unanswered.is_empty(),
        "routed but not answered:\n{}",
        unanswered.join("\n")
    );
}

/// Found by schemathesis (issue 13, item 5): serde reads a struct from a
/// JSON array by field position, so `["p", "P"]` created project `p` and
/// `[]` was an empty OFREP context. Bodies must be JSON objects.
#[tokio::test]
async fn json_arrays_are_not_accepted_as_objects() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = crate::ofrep::setup(&s).await;
    let (st, _, body) = s
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(&json!(["p", "P"])),
            &[],
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json")),
        "{body}"
    );
    let (st, _, _) = s.admin(Method::GET, "/api/v1/projects/p", None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was created");
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/by-position"),
            Some(&json!(["", [], null, "temporary", {"on": true}])),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    for (path, key) in [
        ("/ofrep/v1/evaluate/flags", &client),
        ("/ofrep/v1/evaluate/flags/checkout", &client),
        ("/api/v1/evaluate", &server),
    ] {
        let (st, _, body) = s
            .call(Method::POST, path, Some(key), Some(&json!([])), &[])
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {body}");
    }
}

/// Found by schemathesis (issue 13, item 5): a key name of 100 characters
/// was refused as longer than 100 when it had more than 100 bytes.
#[tokio::test]
async fn key_names_are_limited_in_characters_not_bytes() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    for (name, status) in [
        ("é".repeat(100), StatusCode::CREATED),
        ("é".repeat(101), StatusCode::BAD_REQUEST),
    ] {
        let (st, _, body) = s
            .admin(
                Method::POST,
                "/api/v1/keys",
                Some(&json!({"name": name, "scope": "admin"})),
                &[],
            )
            .await;
        assert_eq!(st, status, "{body}");
    }
}

/// Follows a local `$ref` (`#/components/...`) once.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(&Value::Null),
        None => v,
    }
}

/// The document states what every operation can answer (issue 13, item 5):
/// a schema for every answer with a body, the route family's error format,
/// 503 on every admin route (they all read the key from the store), 404
/// wherever a path names something, and the body refusals wherever there
/// is a body.
#[tokio::test]
async fn openapi_documents_every_answer_with_its_schema() {
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
    let admin_error = "#/components/schemas/Error";
    let data_plane_error = "#/components/schemas/DataPlaneError";
    let mut missing = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().unwrap();
            for (status, r) in responses {
                let r = resolve(&doc, r);
                if !matches!(status.as_str(), "204" | "303" | "304")
                    && r["content"]
                        .as_object()
                        .is_none_or(|c| c.values().any(|m| m["schema"].is_null()))
                {
                    missing.push(format!("{at}: {status} has no schema"));
                }
            }
            let has = |status: &str| responses.contains_key(status);
            let error_schema = |status: &str| {
                responses.get(status).map(|r| {
                    resolve(&doc, r)["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                })
            };
            // CORS preflights answer before any key is looked at.
            let tag = match op["tags"][0].as_str() {
                Some(_) if method == "options" => "operations",
                Some(t) => t,
                None => "",
            };
            let expected: Vec<&str> = match tag {
                "admin" => vec!["400", "401", "403", "429", "503"],
                "evaluation" => vec!["401", "403", "429", "503"],
                _ => vec![],
            };
            for status in expected {
                if !has(status) {
                    missing.push(format!("{at}: no {status}"));
                }
            }
            // The web UI's routes answer in the admin format where they refuse.
            for status in ["401", "403", "429"] {
                if tag == "ui" && !has(status) {
                    continue;
                }
                let want = if tag == "admin" || tag == "ui" {
                    admin_error
                } else {
                    data_plane_error
                };
                if tag != "operations" && error_schema(status).as_deref() != Some(want) {
                    missing.push(format!("{at}: {status} is not {want}"));
                }
            }
            if tag == "admin" && path.contains('{') && !has("404") {
                missing.push(format!("{at}: no 404"));
            }
            if op.get("requestBody").is_some() {
                for status in ["413", "415"] {
                    if !has(status) {
                        missing.push(format!("{at}: a body but no {status}"));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Found by schemathesis (issue 13, item 5): with `If-None-Match: *` the
/// bulk OFREP route answered 304 to a body whose context is not an object.
#[tokio::test]
async fn an_invalid_bulk_request_is_refused_even_when_if_none_match_matches() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = crate::ofrep::setup(&s).await;
    let (st, _, body) = s
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(&client),
            Some(&json!({"context": 10})),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errorCode"], "INVALID_CONTEXT");
    let (st, _, _) = s
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(&client),
            Some(&json!({"context": {}})),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_MODIFIED);
}

/// Found by schemathesis (issue 13, item 5): the audit routes clamped
/// `limit` and took a negative `after` instead of refusing them, as the
/// list routes refuse a `limit` out of range.
#[tokio::test]
async fn audit_refuses_limit_and_after_out_of_range() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    for q in ["limit=0", "limit=1001", "after=-1"] {
        let (st, _, body) = s
            .admin(Method::GET, &format!("{ENV}/audit?{q}"), None, &[])
            .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{q}: {body}"
        );
    }
    for q in ["limit=1", "limit=1000", "after=0"] {
        let (st, _, body) = s
            .admin(Method::GET, &format!("{ENV}/audit?{q}"), None, &[])
            .await;
        assert_eq!(st, StatusCode::OK, "{q}: {body}");
    }
}

/// The documented `If-Match` (`*`, `"12"`, `W/"12"`, `12`) and
/// `If-None-Match` (`*`) formats are the only ones taken (issue 13, item 5):
/// `""5""` deleted the flag at version 5, and `If-None-Match: x` with
/// `If-Match` replaced it.
#[tokio::test]
async fn preconditions_outside_the_documented_formats_are_refused() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let flag = format!("{ENV}/flags/pre");
    let def = crate::support::flag_def(true);
    let (_, headers, _) = s
        .admin(Method::PUT, &flag, Some(&def), &[("if-none-match", "*")])
        .await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let bare = etag.trim_matches('"').to_owned();
    for (name, value) in [
        ("if-match", "W/5"),
        ("if-match", "\"5"),
        ("if-match", "\"\""),
        ("if-match", "\"-1\""),
        ("if-match", "\"\"5\"\""),
    ] {
        let (st, _, body) = s.admin(Method::DELETE, &flag, None, &[(name, value)]).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_header")),
            "{name}: {value}: {body}"
        );
    }
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &flag,
            Some(&def),
            &[("if-match", etag.as_str()), ("if-none-match", "x")],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    // The bare version is taken too.
    let (st, headers, body) = s
        .admin(
            Method::PUT,
            &flag,
            Some(&def),
            &[("if-match", bare.as_str())],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let weak = format!("W/{etag}");
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &flag,
            Some(&def),
            &[("if-match", weak.as_str())],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _, body) = s
        .admin(Method::DELETE, &flag, None, &[("if-match", "*")])
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
}

/// Found by schemathesis (issue 13, item 5): `minVersion: 161.0` is the
/// integer 161 in JSON, but was refused with 400.
#[tokio::test]
async fn min_version_may_be_written_with_a_zero_fraction() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = crate::ofrep::setup(&s).await;
    let (st, _, body) = s
        .call(
            Method::POST,
            "/api/v1/evaluate",
            Some(&server),
            Some(&json!({"minVersion": 1.0})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _, body) = s
        .call(
            Method::POST,
            "/api/v1/evaluate",
            Some(&server),
            Some(&json!({"minVersion": 1.5})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
}

/// Found by schemathesis (issue 13, item 5): `"name": null` was accepted
/// while the document said a string. Optional fields take null as absent,
/// as the document now says; this keeps the server to it.
#[tokio::test]
async fn null_optional_fields_are_absent() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = crate::ofrep::setup(&s).await;
    let (st, _, body) = s
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(&json!({"key": "nulls", "name": null})),
            &[],
        )
        .await;
    assert_eq!(
        (st, body["name"].as_str()),
        (StatusCode::CREATED, Some("nulls"))
    );
    let (st, _, body) = s
        .call(
            Method::POST,
            "/api/v1/evaluate",
            Some(&server),
            Some(&json!({"minVersion": null, "flags": null})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// Found by schemathesis (issue 13, item 5): an import without a body (the
/// document says it is required) was an empty document, and with
/// `mode=replace` deleted every flag.
#[tokio::test]
async fn an_import_without_a_body_is_refused() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let flag = format!("{ENV}/flags/kept");
    let (st, _, _) = s
        .admin(
            Method::PUT,
            &flag,
            Some(&crate::support::flag_def(true)),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let import = format!("{ENV}/import?mode=replace");
    for body in ["", " \n"] {
        let (st, resp) = s.raw(Method::POST, &import, body.into(), &[]).await;
        assert_eq!(
            (st, resp["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_body")),
            "{resp}"
        );
    }
    let (st, _, _) = s.admin(Method::GET, &flag, None, &[]).await;
    assert_eq!(st, StatusCode::OK, "the flag is still there");
    let (st, resp) = s.raw(Method::POST, &import, b"{}".to_vec(), &[]).await;
    assert_eq!(st, StatusCode::OK, "{resp}");
    assert_eq!(resp["flags"]["deleted"], json!(["kept"]));
}
