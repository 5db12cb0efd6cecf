//! OFREP evaluation: one flag (`POST /ofrep/v1/evaluate/flags/{key}`) and
//! every flag for a context (`POST /ofrep/v1/evaluate/flags`, with a bulk
//! ETag and, for client keys, the event stream to follow).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use vexil_engine::{ErrorCode, ValueType};
use vexil_protocol::ofrep::{BulkAnswer, Entry, EventStream, events_url, parse_context};
use vexil_store::Scope;

use super::Plane;
use super::caller::{Needs, caller, error, hot, json_response};
use crate::keys;

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub(super) async fn single(
    State(plane): State<Arc<Plane>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer_single(&plane, &key, &headers, &body)
}

/// The single-flag answer, for the router's handler and for the accept
/// loop, which answers this route without the router.
pub(super) fn answer_single(
    plane: &Plane,
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let route = &plane.metrics.hot.ofrep_single;
    hot(plane, route, headers, || {
        single_inner(plane, key, headers, body)
    })
}

fn single_inner(plane: &Plane, key: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let env = match caller(plane, headers, Needs::Values) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let ctx = match parse_context(body) {
        Ok(c) => c.with_timestamp(plane.clock.unix_seconds()),
        Err(msg) => return error(StatusCode::BAD_REQUEST, Some(key), "INVALID_CONTEXT", &msg),
    };
    let eval = env.snapshot.evaluate(key, &ctx, ValueType::Any);
    env.evaluations.add(eval.reason, 1);
    let status = match eval.error.as_ref().map(|e| e.code) {
        None => StatusCode::OK,
        Some(ErrorCode::FlagNotFound) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::BAD_REQUEST,
    };
    json_response(
        status,
        vexil_protocol::json::encode(&Entry::new(Some(key), &eval)),
    )
}

/// The bulk ETag: the environment version and a hash of the request body,
/// so it changes when either the flags or the context change.
fn bulk_etag(version: i64, body: &[u8]) -> String {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(body);
    format!("\"{version}-{:016x}\"", h.finish())
}

/// `POST /ofrep/v1/evaluate/flags`: every flag for one context.
pub(super) async fn bulk(
    State(plane): State<Arc<Plane>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer_bulk(&plane, &headers, &body)
}

/// The bulk answer, for the router's handler and for the accept loop.
pub(super) fn answer_bulk(plane: &Plane, headers: &HeaderMap, body: &[u8]) -> Response {
    let route = &plane.metrics.hot.ofrep_bulk;
    hot(plane, route, headers, || bulk_inner(plane, headers, body))
}

fn bulk_inner(plane: &Plane, headers: &HeaderMap, body: &[u8]) -> Response {
    let (env, scope) = match caller(plane, headers, Needs::Values) {
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
    let ctx = match parse_context(body) {
        Ok(c) => c.with_timestamp(plane.clock.unix_seconds()),
        Err(msg) => return error(StatusCode::BAD_REQUEST, None, "INVALID_CONTEXT", &msg),
    };
    if tags.split(',').any(|t| t.trim() == "*") {
        return not_modified(etag_value);
    }
    let evals = env.snapshot.evaluate_all(&ctx);
    env.evaluations.add_all(&evals);
    let url = event_stream_url(plane, scope, headers);
    let streams: Vec<EventStream<'_>> = url.iter().map(|u| EventStream::sse(u.as_str())).collect();
    let prepared = env.prepared();
    let mut body = Vec::with_capacity(prepared.size_hint() + 256);
    prepared.write_bulk(
        &mut body,
        &BulkAnswer {
            evaluations: &evals,
            metadata: None,
            event_streams: &streams,
        },
    );
    let mut resp = json_response(StatusCode::OK, body);
    resp.headers_mut().insert(header::ETAG, etag_value);
    resp
}

/// Where web clients hear about changes: the OFREP event stream of this
/// server, whose URL carries the caller's client key because `EventSource`
/// cannot send headers. Offered to client keys only (they are public by
/// design); a server key is a secret and never goes into a URL. The URL is
/// absolute under `--public-url`, relative otherwise: never built from the
/// request's `Host` header.
fn event_stream_url(plane: &Plane, scope: Scope, headers: &HeaderMap) -> Option<String> {
    let key = keys::secret(headers).filter(|_| scope == Scope::Client)?;
    Some(events_url(plane.settings.public_url.as_deref(), key))
}
