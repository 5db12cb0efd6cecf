//! The data plane: OFREP evaluation (single flag and bulk) and snapshot
//! delivery to edges and SDKs.
//!
//! Everything here answers from the in-memory snapshots and key cache:
//! no request touches the store, so evaluation keeps working while the
//! store is down.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vexil_engine::{Context, ErrorCode, Evaluation, ValueType};
use vexil_store::Scope;

use crate::api::auth::secret;
use crate::keys;
use crate::state::{AppState, EnvSnapshot};

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(ofrep_single).options(preflight),
        )
        .route(
            "/ofrep/v1/evaluate/flags",
            post(ofrep_bulk).options(preflight),
        )
        .route("/api/v1/snapshot", get(snapshot))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/evaluate", post(native_evaluate).options(preflight))
        .route("/ofrep/v1/events", get(ofrep_events).options(preflight))
}

/// CORS for browsers calling with client keys, written by hand: a layer
/// cost a tenth of the data plane's throughput. Any origin may call; the
/// ETag must be readable for bulk caching.
pub(crate) fn cors(request: &HeaderMap, resp: &mut Response) {
    if request.contains_key(header::ORIGIN) {
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, Retry-After"),
        );
    }
}

/// Refused at once: too many requests in flight.
fn overloaded() -> Response {
    let mut resp = ofrep_error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "GENERAL",
        "the server is at its limit of requests in flight; retry shortly",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The CORS preflight of the evaluation routes.
async fn preflight(headers: HeaderMap) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, if-none-match, x-api-key"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    cors(&headers, &mut resp);
    resp
}

/// A JSON answer from pre-serialised bytes.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An OFREP error body: `{key?, errorCode, errorDetails}`.
fn ofrep_error(status: StatusCode, key: Option<&str>, code: &str, details: &str) -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Failure<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<&'a str>,
        error_code: &'a str,
        error_details: &'a str,
    }
    let body = serde_json::to_vec(&Failure {
        key,
        error_code: code,
        error_details: details,
    })
    .unwrap_or_default();
    json_response(status, body)
}

/// An admitted caller of the data plane.
struct Caller {
    /// The environment it evaluates, at the version current on admission.
    env: Arc<EnvSnapshot>,
    scope: Scope,
    /// The digest of its key: streams end when that key is revoked.
    key_hash: keys::Digest,
}

/// Who is calling, and which environment they evaluate.
fn caller(st: &AppState, headers: &HeaderMap, need_rules: bool) -> Result<Caller, Box<Response>> {
    let Some(secret) = secret(headers).filter(|s| !s.is_empty()) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        ));
    };
    let key_hash = keys::digest(secret);
    let Some(key) = st.cached_key(&key_hash) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked API key",
        ));
    };
    if let Err(retry) = st.limiter.admit(&key, crate::limits::Use::Evaluation) {
        let mut resp = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("this key's rate limit is reached; retry in {} s", retry.0),
        );
        if let Ok(v) = HeaderValue::from_str(&retry.0.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(resp);
    }
    let env_id = match (key.scope, key.environment_id) {
        (Scope::Client, _) if need_rules => {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "client keys get evaluated values only, not rules; use a server key",
            ));
        }
        (Scope::Server | Scope::Client, Some(env)) => env,
        _ => {
            // An admin key names no environment; a flag file has only one.
            let snapshots = st.snapshots();
            match (snapshots.len(), snapshots.keys().next()) {
                (1, Some(&only)) if st.read_only() => only,
                _ => {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "evaluation needs a server or client key: they name the environment",
                    ));
                }
            }
        }
    };
    let env = st.snapshots().get(&env_id).cloned().ok_or_else(|| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "flags are not loaded yet; retry shortly",
        )
    })?;
    Ok(Caller {
        env,
        scope: key.scope,
        key_hash,
    })
}

/// A refusal before any flag is looked at: `{errorCode: GENERAL, errorDetails}`.
fn refuse(status: StatusCode, details: &str) -> Box<Response> {
    Box::new(ofrep_error(status, None, "GENERAL", details))
}

/// An OFREP request body; the context is deserialised straight into the
/// engine's `Context` (no intermediate JSON map). Other fields are ignored.
#[derive(Deserialize)]
struct EvalRequest {
    #[serde(default)]
    context: Context,
}

/// Reads `{"context": {...}}`; an empty body or `{}` is an empty context.
fn context_of(body: &[u8]) -> Result<Context, String> {
    let ctx = if body.iter().all(u8::is_ascii_whitespace) {
        Context::new()
    } else if !crate::api::error::is_json_object(body) {
        return Err("request body must be a JSON object".to_owned());
    } else {
        let req: EvalRequest = serde_json::from_slice(body).map_err(|e| {
            match vexil_engine::ContextError::from(e) {
                vexil_engine::ContextError::Syntax(m) => {
                    format!("request body is not valid JSON: {m}")
                }
                shape => shape.to_string(),
            }
        })?;
        req.context
    };
    Ok(ctx.with_timestamp(unix_seconds()))
}

fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Serialize)]
struct Success<'a> {
    /// OFREP names the flag in each answer; the native API keys a map by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Value>,
    reason: &'static str,
    /// Always present (null without a value): the Python provider reads it
    /// unconditionally.
    variant: Option<&'a str>,
    metadata: &'a Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failed<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Success(Success<'a>),
    Failed(Failed<'a>),
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

fn entry<'a>(key: Option<&'a str>, e: &'a Evaluation<'a>) -> Entry<'a> {
    match &e.error {
        Some(err) => Entry::Failed(Failed {
            key,
            error_code: err.code.as_str(),
            error_details: &err.details,
        }),
        None => Entry::Success(Success {
            key,
            value: e.value,
            reason: e.reason.as_str(),
            variant: e.variant,
            metadata: e.metadata().unwrap_or(&EMPTY),
        }),
    }
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
async fn ofrep_single(
    State(st): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = match st.limiter.enter() {
        Some(g) => g,
        None => return overloaded(),
    };
    let mut resp = ofrep_single_inner(&st, &key, &headers, &body);
    cors(&headers, &mut resp);
    st.metrics
        .hot
        .ofrep_single
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

fn ofrep_single_inner(st: &AppState, key: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let env = match caller(st, headers, false) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let ctx = match context_of(body) {
        Ok(c) => c,
        Err(msg) => {
            return ofrep_error(StatusCode::BAD_REQUEST, Some(key), "INVALID_CONTEXT", &msg);
        }
    };
    let eval = env.snapshot.evaluate(key, &ctx, ValueType::Any);
    env.evaluations.add(eval.reason, 1);
    let status = match eval.error.as_ref().map(|e| e.code) {
        None => StatusCode::OK,
        Some(ErrorCode::FlagNotFound) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::BAD_REQUEST,
    };
    let body = serde_json::to_vec(&entry(Some(key), &eval)).unwrap_or_default();
    json_response(status, body)
}

/// The bulk ETag: the environment version and a hash of the request body,
/// so it changes when either the flags or the context change.
fn bulk_etag(version: i64, body: &[u8]) -> String {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(body);
    format!("\"{version}-{:016x}\"", h.finish())
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// `POST /ofrep/v1/evaluate/flags`: every flag for one context.
async fn ofrep_bulk(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = match st.limiter.enter() {
        Some(g) => g,
        None => return overloaded(),
    };
    let mut resp = ofrep_bulk_inner(&st, &headers, &body);
    cors(&headers, &mut resp);
    st.metrics
        .hot
        .ofrep_bulk
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

fn ofrep_bulk_inner(st: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    let (env, scope) = match caller(st, headers, false) {
        Ok(c) => (c.env, c.scope),
        Err(resp) => return *resp,
    };
    let etag = bulk_etag(env.env.version, body);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let not_modified = |etag_value| {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp.headers_mut().insert(header::ETAG, etag_value);
        resp
    };
    // The exact ETag of this body at this version: this server answered the
    // same body before, so it is valid; answer at once, without parsing.
    let tags = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if tags.split(',').any(|t| t.trim() == etag) {
        return not_modified(etag_value);
    }
    // An invalid request is refused even when `If-None-Match: *` would match.
    let ctx = match context_of(body) {
        Ok(c) => c,
        Err(msg) => return ofrep_error(StatusCode::BAD_REQUEST, None, "INVALID_CONTEXT", &msg),
    };
    if tags.split(',').any(|t| t.trim() == "*") {
        return not_modified(etag_value);
    }
    let evals = env.snapshot.evaluate_all(&ctx);
    env.evaluations.add_all(&evals);
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Bulk<'a> {
        flags: Vec<Entry<'a>>,
        metadata: &'a Map<String, Value>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        event_streams: Vec<Value>,
    }
    let flags: Vec<Entry<'_>> = evals
        .iter()
        .map(|e| entry(Some(e.key().unwrap_or("")), e))
        .collect();
    let body = serde_json::to_vec(&Bulk {
        flags,
        metadata: &EMPTY,
        event_streams: event_streams(st, scope, headers),
    })
    .unwrap_or_default();
    let mut resp = json_response(StatusCode::OK, body);
    resp.headers_mut().insert(header::ETAG, etag_value);
    resp
}

/// `GET /api/v1/snapshot`: the environment's rules as a native document,
/// for edges and server SDKs, with `ETag` = version and 304 on a match.
async fn snapshot(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let started = std::time::Instant::now();
    let resp = snapshot_inner(&st, &headers);
    st.metrics
        .hot
        .snapshot
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

fn snapshot_inner(st: &AppState, headers: &HeaderMap) -> Response {
    let env = match caller(st, headers, true) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let etag = format!("\"{}\"", env.env.version);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let mut resp = if if_none_match(headers, &etag) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(env.document.clone()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag_value);
    // Shared caches may keep it but must revalidate; the key is part of
    // the request, so cache per key.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, must-revalidate"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, X-API-Key"),
    );
    if let Ok(v) = HeaderValue::from_str(&env.env.version.to_string()) {
        h.insert("x-vexil-version", v);
    }
    resp.into_response()
}

/// `GET /api/v1/stream`: server-sent events for edges and server SDKs. A
/// full `snapshot` event first, then one `change` event per environment
/// version, each with `id: <version>`. Reconnecting with `Last-Event-ID`
/// (header, or `?lastEventId=`) sends only the changes since that version,
/// or a snapshot when they cannot be read. A subscriber that falls more
/// than the buffer behind is dropped; it reconnects and resumes.
async fn stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let (env, key_hash) = match caller(&st, &headers, true) {
        Ok(c) => (c.env, c.key_hash),
        Err(resp) => return *resp,
    };
    let env_id = env.env.id;
    // Subscribe before looking at the current version: nothing falls
    // between the two.
    let rx = st.subscribe(env_id);
    let current = st.snapshots().get(&env_id).cloned().unwrap_or(env);
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query.as_deref().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("lastEventId=").map(str::to_owned))
            })
        })
        .and_then(|v| v.trim().parse::<i64>().ok());

    let version = current.env.version;
    let mut initial: Vec<Bytes> = Vec::new();
    match last_id {
        Some(last) if last == version => {}
        Some(last) if (0..version).contains(&last) => {
            let filter = vexil_store::ChangeFilter {
                item: None,
                after_version: last,
                limit: 1000,
            };
            let frames = match st.store.changes(env_id, &filter).await {
                Ok(changes) => crate::state::frames_of(&changes),
                Err(_) => Vec::new(),
            };
            let versions: Vec<i64> = frames
                .iter()
                .map(|(v, _)| *v)
                .filter(|v| *v <= version)
                .collect();
            if versions == ((last + 1)..=version).collect::<Vec<_>>() {
                initial.extend(
                    frames
                        .into_iter()
                        .filter(|(v, _)| *v <= version)
                        .map(|(_, f)| f),
                );
            } else {
                // The log does not reach back (or the store is down).
                initial.push(crate::state::snapshot_frame(&current));
            }
        }
        _ => initial.push(crate::state::snapshot_frame(&current)),
    }

    let body = event_body(&st, rx, key_hash, initial, version, |ev| ev.frame.clone());
    event_stream_response(body)
}

fn event_stream_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The body of an SSE response: `initial` frames, then one frame per
/// change event newer than `sent` (made by `frame`), heartbeats while idle;
/// ends when the subscriber lags behind the buffer, the key it was opened
/// with is revoked, or the server shuts down.
fn event_body(
    st: &Arc<AppState>,
    rx: tokio::sync::broadcast::Receiver<Arc<crate::state::StreamEvent>>,
    key_hash: keys::Digest,
    initial: Vec<Bytes>,
    sent: i64,
    frame: fn(&crate::state::StreamEvent) -> Bytes,
) -> Body {
    struct Feed {
        st: Arc<AppState>,
        closing: tokio::sync::watch::Receiver<bool>,
        rx: tokio::sync::broadcast::Receiver<Arc<crate::state::StreamEvent>>,
        revocations: tokio::sync::watch::Receiver<u64>,
        key_hash: keys::Digest,
        initial: std::vec::IntoIter<Bytes>,
        sent: i64,
        frame: fn(&crate::state::StreamEvent) -> Bytes,
    }
    let feed = Feed {
        closing: st.closing(),
        revocations: st.key_revocations(),
        key_hash,
        st: st.clone(),
        rx,
        initial: initial.into_iter(),
        sent,
        frame,
    };
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        if let Some(frame) = feed.initial.next() {
            return Some((Ok::<Bytes, std::convert::Infallible>(frame), feed));
        }
        loop {
            if *feed.closing.borrow() {
                return None;
            }
            let heartbeat = feed.st.heartbeat;
            let next = tokio::select! {
                _ = feed.closing.changed() => return None,
                _ = feed.revocations.changed() => {
                    // The key was revoked: end the stream.
                    feed.st.cached_key(&feed.key_hash)?;
                    continue;
                }
                next = tokio::time::timeout(heartbeat, feed.rx.recv()) => next,
            };
            match next {
                Err(_) => return Some((Ok(Bytes::from_static(b": keepalive\n\n")), feed)),
                Ok(Ok(ev)) if ev.version > feed.sent => {
                    feed.sent = ev.version;
                    let out = (feed.frame)(&ev);
                    return Some((Ok(out), feed));
                }
                Ok(Ok(_)) => continue,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    feed.st
                        .metrics
                        .subscribers_dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return None;
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    Body::from_stream(body)
}

/// How long a request naming a `minVersion` this server has not reached
/// waits for it before answering "stale".
const MIN_VERSION_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeRequest {
    #[serde(default)]
    context: Context,
    /// Only these flags (default: all).
    #[serde(default)]
    flags: Option<Vec<String>>,
    /// Read-your-writes: the version a caller has just written.
    #[serde(default, deserialize_with = "integer")]
    min_version: Option<i64>,
}

/// A JSON integer, also when written with a zero fraction (`161.0`): JSON
/// has one number type.
fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {n}")))
}

/// `POST /api/v1/evaluate`: all flags, or a listed set, for one context,
/// with the version that answered. With `minVersion`, a server that has not
/// reached it waits up to two seconds, then answers `503 stale` rather
/// than an old value.
async fn native_evaluate(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let resp = native_evaluate_inner(&st, &headers, &body).await;
    st.metrics
        .hot
        .native_evaluate
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

async fn native_evaluate_inner(st: &Arc<AppState>, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(_in_flight) = st.limiter.enter() else {
        return overloaded();
    };
    let env = match caller(st, headers, false) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let req: NativeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        NativeRequest {
            context: Context::new(),
            flags: None,
            min_version: None,
        }
    } else if !crate::api::error::is_json_object(body) {
        let mut resp = crate::api::error::ApiError::bad_request(
            "invalid_request",
            "request body must be a JSON object",
        )
        .into_response();
        cors(headers, &mut resp);
        return resp;
    } else {
        match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                let msg = match vexil_engine::ContextError::from(e) {
                    vexil_engine::ContextError::Syntax(m) => format!("invalid request body: {m}"),
                    shape => shape.to_string(),
                };
                let mut resp = crate::api::error::ApiError::bad_request("invalid_request", msg)
                    .into_response();
                cors(headers, &mut resp);
                return resp;
            }
        }
    };
    let mut env = env;
    if let Some(min) = req.min_version {
        let deadline = std::time::Instant::now() + MIN_VERSION_WAIT;
        while env.env.version < min && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            if let Some(fresh) = st.snapshots().get(&env.env.id) {
                env = fresh.clone();
            }
        }
        if env.env.version < min {
            let body = serde_json::json!({
                "code": "stale",
                "message": format!("this server has version {} of the environment, not yet {min}; retry", env.env.version),
                "version": env.env.version,
            });
            let mut resp = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            cors(headers, &mut resp);
            return resp;
        }
    }
    let ctx = req.context.with_timestamp(unix_seconds());
    // The key asked for, or (evaluating all) none: the evaluation names it.
    let evals: Vec<(Option<&str>, Evaluation<'_>)> = match &req.flags {
        Some(keys) => keys
            .iter()
            .map(|k| {
                let e = env.snapshot.evaluate(k, &ctx, ValueType::Any);
                (Some(k.as_str()), e)
            })
            .collect(),
        None => env
            .snapshot
            .evaluate_all(&ctx)
            .into_iter()
            .map(|e| (None, e))
            .collect(),
    };
    env.evaluations.add_all(evals.iter().map(|(_, e)| e));
    /// `{key: answer, …}` written straight from the evaluations.
    struct Flags<'a>(&'a [(Option<&'a str>, Evaluation<'a>)]);
    impl Serialize for Flags<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (key, e) in self.0 {
                let key = key.or(e.key()).unwrap_or("");
                map.serialize_entry(key, &entry(None, e))?;
            }
            map.end()
        }
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        version: i64,
        flags: Flags<'a>,
    }
    let body = serde_json::to_vec(&Answer {
        version: env.env.version,
        flags: Flags(&evals),
    })
    .unwrap_or_default();
    let mut resp = json_response(StatusCode::OK, body);
    cors(headers, &mut resp);
    resp
}

/// Where web clients hear about changes: the OFREP event stream of this
/// server, whose URL carries the caller's client key because `EventSource`
/// cannot send headers. Offered to client keys only (they are public by
/// design); a server key is a secret and never goes into a URL. The URL is
/// absolute under `--public-url`, relative otherwise: never built from the
/// request's `Host` header.
fn event_streams(st: &AppState, scope: Scope, headers: &HeaderMap) -> Vec<Value> {
    let Some(key) = secret(headers).filter(|_| scope == Scope::Client) else {
        return Vec::new();
    };
    let mut url = st.public_url.clone().unwrap_or_default();
    url.push_str("/ofrep/v1/events?key=");
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                url.push(b as char)
            }
            _ => {
                let _ = std::fmt::Write::write_fmt(&mut url, format_args!("%{b:02X}"));
            }
        }
    }
    vec![serde_json::json!({
        "type": "sse",
        "url": url,
        "inactivityDelaySec": 120,
    })]
}

/// `GET /ofrep/v1/events?key=…`: OFREP event stream for web clients: a
/// `refetchEvaluation` message whenever the environment changes. Client
/// keys only: other keys are secrets and do not belong in URLs.
async fn ofrep_events(
    State(st): State<Arc<AppState>>,
    mut headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if let Some(key) = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")))
    {
        let key = percent_decode(key);
        if let Ok(v) = HeaderValue::from_str(&key) {
            headers.insert("x-api-key", v);
        }
    }
    let (env, key_hash) = match caller(&st, &headers, false) {
        Ok(c) if c.scope == Scope::Client => (c.env, c.key_hash),
        Ok(_) => {
            let mut resp = *refuse(
                StatusCode::FORBIDDEN,
                "the event stream takes client keys only: other keys are secrets and must not travel in URLs",
            );
            cors(&headers, &mut resp);
            return resp;
        }
        Err(mut resp) => {
            cors(&headers, &mut resp);
            return *resp;
        }
    };
    let rx = st.subscribe(env.env.id);
    let body = event_body(&st, rx, key_hash, Vec::new(), env.env.version, |ev| {
        let data =
            serde_json::json!({"type": "refetchEvaluation", "etag": format!("\"{}\"", ev.version)});
        format!("event: message\ndata: {data}\n\n").into()
    });
    let mut resp = event_stream_response(body);
    cors(&headers, &mut resp);
    resp
}

/// Decodes `%XX` escapes of a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
