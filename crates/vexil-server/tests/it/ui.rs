//! The web UI's server side over plain HTTP: its files and their headers,
//! signing in and out, the session cookie's flags, expiry and bound, the
//! CSRF rules for changes made with a session (a cross-site form post is
//! refused), API keys working as before, and the UI's evaluate and events
//! routes (issue 10).

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{ADMIN_KEY, ENV, Server, flag_def, sqlite};

/// Signs in with `key`: the status, the `Set-Cookie` header, the body.
async fn sign_in(s: &Server, key: &str) -> (StatusCode, Option<String>, Value) {
    let resp = s
        .http
        .post(s.url("/ui/api/session"))
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, cookie, resp.json().await.unwrap_or(Value::Null))
}

/// A signed-in session: the `Cookie` header value and the CSRF token.
async fn session(s: &Server) -> (String, String) {
    let (status, cookie, body) = sign_in(s, ADMIN_KEY).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = cookie.unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    (pair, body["csrfToken"].as_str().unwrap().to_owned())
}

/// A request with the session cookie (and these headers), no API key.
async fn with_cookie(
    s: &Server,
    method: Method,
    path: &str,
    cookie: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .request(method, s.url(path))
        .header(header::COOKIE, cookie);
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_ui_is_served_with_its_types_a_strict_policy_and_etags() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects.get(s.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/ui/");
    for (path, content_type) in [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let resp = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let h = resp.headers().clone();
        assert_eq!(h[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        let again = s
            .http
            .get(s.url(path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // Every file of `web/` is served (a new module not added to the
    // table would fail only in a browser).
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    for entry in std::fs::read_dir(web).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = if name == "index.html" {
            "/ui/".to_owned()
        } else {
            format!("/ui/{name}")
        };
        let resp = s.http.get(s.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    // No inline script in the page: the policy would block it.
    let page = s
        .http
        .get(s.url("/ui/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<script type="module" src="/ui/app.js"></script>"#));
    assert_eq!(page.matches("<script").count(), 1);
    let (st, _, body) = s.call(Method::GET, "/ui/nope.js", None, None, &[]).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_cookie_and_a_wrong_key_gets_none() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    for wrong in ["not-a-key", ""] {
        let (status, cookie, body) = sign_in(&s, wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], "unauthorized");
        assert!(cookie.is_none());
    }
    // Server and client keys are for evaluation, not for the UI.
    let (_, _, key) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": "svc", "scope": "server", "project": "default", "environment": "development"})),
            &[],
        )
        .await;
    let (status, cookie, _) = sign_in(&s, key["secret"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(cookie.is_none());

    let (status, cookie, body) = sign_in(&s, ADMIN_KEY).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = cookie.unwrap();
    assert!(cookie.starts_with("vexil_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(!cookie.contains(ADMIN_KEY), "the key is not in the cookie");
    assert_eq!(body["key"]["name"], "admin");
    assert_eq!(body["csrfToken"].as_str().unwrap().len(), 64);
    // The page reads its token again after a reload.
    let pair = cookie.split(';').next().unwrap();
    let (st, me) = with_cookie(&s, Method::GET, "/ui/api/session", pair, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["csrfToken"], body["csrfToken"]);

    let s = Server::start_with(&data, &["--ui-secure-cookie"]);
    let (_, cookie, _) = sign_in(&s, ADMIN_KEY).await;
    assert!(cookie.unwrap().contains("; Secure"));
}

#[tokio::test]
async fn a_session_changes_nothing_without_its_csrf_token() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let (cookie, csrf) = session(&s).await;
    let flag = format!("{ENV}/flags/ui-flag");
    // Reads need only the cookie.
    let (st, _) = with_cookie(&s, Method::GET, &format!("{ENV}/flags"), &cookie, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    // A change without the token, with a wrong one, or that the browser
    // says comes from another site, is refused.
    let def = flag_def(true);
    for headers in [
        vec![],
        vec![("x-csrf-token", "0000")],
        vec![
            ("x-csrf-token", csrf.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        let mut h = headers.clone();
        h.push(("if-none-match", "*"));
        let (st, body) = with_cookie(&s, Method::PUT, &flag, &cookie, Some(&def), &h).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_refused")),
            "{headers:?}"
        );
    }
    let (st, _, _) = s.admin(Method::GET, &flag, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was written");
    // With the token, from the UI's own origin: written, and the audit
    // log names the key the session was made from.
    let (st, body) = with_cookie(
        &s,
        Method::PUT,
        &flag,
        &cookie,
        Some(&def),
        &[
            ("if-none-match", "*"),
            ("x-csrf-token", &csrf),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (_, _, audit) = s
        .admin(Method::GET, &format!("{flag}/audit"), None, &[])
        .await;
    assert_eq!(audit["items"][0]["actor"], "admin");
    // The API key works as before, without cookie or token.
    let (st, _, _) = s
        .admin(
            Method::POST,
            &format!("{flag}/toggle"),
            Some(&json!({"enabled": false})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

/// What a page of another site can make a browser send: a form post with
/// the cookie (were it not `SameSite=Strict`), no custom header.
#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let flag = format!("{ENV}/flags/guarded");
    s.admin(
        Method::PUT,
        &flag,
        Some(&flag_def(true)),
        &[("if-none-match", "*")],
    )
    .await;
    let (cookie, _) = session(&s).await;
    for path in [format!("{flag}/toggle"), "/api/v1/keys".to_owned()] {
        let resp = s
            .http
            .post(s.url(&path))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .body("enabled=false&name=x&scope=admin")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "csrf_refused");
    }
    let (_, _, got) = s.admin(Method::GET, &flag, None, &[]).await;
    assert_eq!(got["definition"]["enabled"], true, "still on");
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let (cookie, csrf) = session(&s).await;
    let (st, _) = with_cookie(&s, Method::DELETE, "/ui/api/session", &cookie, None, &[]).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "sign-out needs the token too");
    let resp = s
        .http
        .delete(s.url("/ui/api/session"))
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (st, body) =
        with_cookie(&s, Method::GET, &format!("{ENV}/flags"), &cookie, None, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_limit_and_are_bounded() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(&data, &["--ui-session-idle-secs", "1"]);
    let (cookie, _) = session(&s).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (st, body) = with_cookie(&s, Method::GET, "/api/v1/projects", &cookie, None, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    drop(s);

    let s = Server::start_with(&data, &["--ui-session-max-secs", "2"]);
    let (cookie, _) = session(&s).await;
    for _ in 0..2 {
        let (st, _) = with_cookie(&s, Method::GET, "/api/v1/projects", &cookie, None, &[]).await;
        assert_eq!(st, StatusCode::OK, "in use, within its lifetime");
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (st, _) = with_cookie(&s, Method::GET, "/api/v1/projects", &cookie, None, &[]).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "used, but past its absolute limit"
    );
    drop(s);

    let s = Server::start_with(&data, &["--ui-max-sessions", "2"]);
    let (first, _) = session(&s).await;
    let (second, _) = session(&s).await;
    let (st, _) = with_cookie(&s, Method::GET, "/api/v1/projects", &second, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let (third, _) = session(&s).await;
    let (st, _) = with_cookie(&s, Method::GET, "/api/v1/projects", &first, None, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the least recently used went");
    for c in [&second, &third] {
        let (st, _) = with_cookie(&s, Method::GET, "/api/v1/projects", c, None, &[]).await;
        assert_eq!(st, StatusCode::OK);
    }
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let (_, _, key) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": "ops", "scope": "admin"})),
            &[],
        )
        .await;
    let (status, cookie, _) = sign_in(&s, key["secret"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let cookie = cookie.unwrap().split(';').next().unwrap().to_owned();
    s.revoke(&key["id"]).await;
    let (st, _) = with_cookie(&s, Method::GET, "/api/v1/projects", &cookie, None, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_ui_evaluates_with_traces_and_follows_versions() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let (cookie, csrf) = session(&s).await;
    let def = json!({
        "variants": {"on": true, "off": false}, "offVariant": "off",
        "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": {"variant": "on"}}],
        "defaultServe": {"rollout": {"weights": {"on": 30, "off": 70}}}
    });
    s.admin(
        Method::PUT,
        &format!("{ENV}/flags/f"),
        Some(&def),
        &[("if-none-match", "*")],
    )
    .await;
    let evaluate = "/ui/api/projects/default/environments/development/evaluate";
    let (st, body) = with_cookie(
        &s,
        Method::POST,
        evaluate,
        &cookie,
        Some(&json!({"context": {"targetingKey": "u1", "plan": "free"}})),
        &[("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let steps = body["flags"]["f"]["trace"]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "rule");
    assert_eq!(steps[0]["clauses"][0]["result"], false);
    assert_eq!(steps[1]["by"], "default");
    assert!(steps[1]["rollout"]["bucket"].is_u64(), "{body}");
    // The events route: the current version at once, then each new one.
    let mut resp = s
        .http
        .get(s.url("/ui/api/projects/default/environments/development/events"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let first = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("event: version\n"), "{first}");
    s.admin(
        Method::POST,
        &format!("{ENV}/flags/f/toggle"),
        Some(&json!({"enabled": false})),
        &[],
    )
    .await;
    let next = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let next = String::from_utf8(next.to_vec()).unwrap();
    assert!(
        next.contains("event: version") && next.contains("\"version\":"),
        "{next}"
    );
    // Without a session or a key, neither.
    let (st, _, _) = s
        .call(Method::POST, evaluate, None, Some(&json!({})), &[])
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
