//! The plumbing every data-plane route shares: who is calling (the key
//! from the in-memory cache, its rate limit, its environment), the error
//! body `{errorCode, errorDetails}`, CORS for browsers and JSON answers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use vexil_store::Scope;

use super::{EnvSnapshot, Plane};
use crate::http::limits::Use;
use crate::keys;
use crate::metrics::HotRoute;

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

/// The CORS preflight of the evaluation routes.
pub(super) async fn preflight(headers: HeaderMap) -> Response {
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
pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The data plane's error answer: `{key?, errorCode, errorDetails}`, the
/// OFREP error body, for every data-plane route and every refusal of a
/// data-plane request (the accept loop's and the router's too).
pub(crate) fn error(status: StatusCode, key: Option<&str>, code: &str, details: &str) -> Response {
    let body =
        vexil_protocol::json::encode(&vexil_protocol::ofrep::ErrorBody::new(key, code, details));
    json_response(status, body)
}

/// A refusal before any flag is looked at: `errorCode` `GENERAL`.
pub(super) fn refuse(status: StatusCode, details: &str) -> Response {
    error(status, None, "GENERAL", details)
}

/// With `Retry-After` (whole seconds).
pub(super) fn retry_after(mut resp: Response, seconds: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Refused at once: too many requests in flight.
pub(super) fn overloaded() -> Response {
    retry_after(
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is at its limit of requests in flight; retry shortly",
        ),
        1,
    )
}

/// Answers an evaluation route: within the in-flight bound (503 at once
/// beyond it), with CORS, counted in the route's lock-free series.
pub(super) fn hot(
    plane: &Plane,
    route: &HotRoute,
    headers: &HeaderMap,
    answer: impl FnOnce() -> Response,
) -> Response {
    let started = tokio::time::Instant::now();
    let mut resp = match plane.limiter.enter() {
        Some(_in_flight) => answer(),
        None => overloaded(),
    };
    cors(headers, &mut resp);
    route.observe(resp.status().as_u16(), started.elapsed());
    resp
}

/// An admitted caller of the data plane.
pub(super) struct Caller {
    /// The environment it evaluates, at the version current on admission.
    pub(super) env: Arc<EnvSnapshot>,
    pub(super) scope: Scope,
    /// The digest of its key: streams end when that key is revoked.
    pub(super) key_hash: keys::Digest,
}

/// What a route gives a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
    /// Evaluated values: any key.
    Values,
    /// The rules themselves (snapshot, change stream): not client keys.
    Rules,
}

/// Who is calling, and which environment they evaluate.
pub(super) fn caller(
    plane: &Plane,
    headers: &HeaderMap,
    needs: Needs,
) -> Result<Caller, Box<Response>> {
    let Some(secret) = keys::secret(headers) else {
        return Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        )));
    };
    let key_hash = keys::digest(secret);
    let Some(key) = plane.key(&key_hash) else {
        return Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked API key",
        )));
    };
    if let Err(retry) = plane.limiter.admit(&key, Use::Evaluation) {
        return Err(Box::new(retry_after(
            refuse(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("this key's rate limit is reached; retry in {} s", retry.0),
            ),
            retry.0,
        )));
    }
    let env_id = match (key.scope, key.environment_id) {
        (Scope::Client, _) if needs == Needs::Rules => {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "client keys get evaluated values only, not rules; use a server key",
            )));
        }
        (Scope::Server | Scope::Client, Some(env)) => env,
        _ => {
            // An admin key names no environment; a flag file has only one.
            let snapshots = plane.snapshots();
            match (snapshots.len(), snapshots.keys().next()) {
                (1, Some(&only)) if plane.settings.admin_evaluates_single_env => only,
                _ => {
                    return Err(Box::new(refuse(
                        StatusCode::FORBIDDEN,
                        "evaluation needs a server or client key: they name the environment",
                    )));
                }
            }
        }
    };
    let env = plane.snapshot(env_id).ok_or_else(|| {
        Box::new(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "flags are not loaded yet; retry shortly",
        ))
    })?;
    Ok(Caller {
        env,
        scope: key.scope,
        key_hash,
    })
}
