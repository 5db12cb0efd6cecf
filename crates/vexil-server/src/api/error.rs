//! `ApiError`, the only `IntoResponse` error of the admin API: a status
//! and a stable `{code, message}` body (plus `problems` for invalid
//! documents); store and write-path errors mapped to it in one place; and
//! `Family`, which error format (admin or data plane) a path answers in,
//! with the rewriting of axum's plain-text rejections into it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vexil_engine::Problem;
use vexil_store::{ErrorKind, StoreError};

use super::media::{is_json, media_type};

use crate::control::WriteError;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    /// Stable, machine-readable.
    pub(crate) code: &'static str,
    /// For people; never internals.
    pub(crate) message: String,
    pub(crate) problems: Vec<Problem>,
    /// Whole seconds, for 429 and 503.
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn invalid(problems: Vec<Problem>) -> Self {
        let n = problems.len();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_document",
            message: format!(
                "the change would leave {n} problem{} in the environment",
                if n == 1 { "" } else { "s" }
            ),
            problems,
            retry_after: None,
        }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A refusal with its own code (`forbidden` is the usual one).
    pub(crate) fn forbidden_code(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn busy() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many concurrent writes to this environment; retry",
        )
    }

    pub(crate) fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this key's rate limit is reached; retry in {retry_after} s"),
            )
        }
    }

    pub(crate) fn overloaded() -> Self {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is at its limit of requests in flight; retry shortly",
            )
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.kind {
            ErrorKind::NotFound => ApiError::not_found(e.message),
            ErrorKind::AlreadyExists => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", e.message)
            }
            ErrorKind::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", e.message),
            ErrorKind::ReadOnly => ApiError::new(StatusCode::CONFLICT, "read_only", e.message),
            ErrorKind::Invalid => ApiError::bad_request("invalid_input", e.message),
            ErrorKind::Unavailable => {
                // The store wrapper logs once when the store goes down; the
                // fast failures after that (no source) would only repeat it.
                if e.source.is_some() {
                    tracing::warn!(error = %e, "store unavailable");
                } else {
                    tracing::debug!(error = %e, "store unavailable");
                }
                ApiError {
                    retry_after: Some(2),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the store is unavailable; retry later",
                    )
                }
            }
            _ => {
                tracing::error!(error = %e, "store error");
                ApiError::internal("internal error")
            }
        }
    }
}

impl From<WriteError<ApiError>> for ApiError {
    fn from(e: WriteError<ApiError>) -> Self {
        match e {
            WriteError::Refused(e) => e,
            WriteError::Invalid(problems) => ApiError::invalid(problems),
            WriteError::CompileTimeout(limit) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "compile_timeout",
                    format!(
                        "compiling the environment took longer than the limit of {} ms (--compile-timeout-ms); nothing was changed",
                        limit.as_millis()
                    ),
                )
            },
            WriteError::Busy => ApiError::busy(),
            WriteError::Store(e) => e.into(),
            WriteError::Internal => ApiError::internal("the compilation task failed"),
        }
    }
}

/// Problems as JSON for error bodies: `[{pointer, message}]`.
fn problems_json(problems: &[Problem]) -> serde_json::Value {
    serde_json::Value::Array(
        problems
            .iter()
            .map(|p| json!({"pointer": p.pointer.as_str(), "message": p.message}))
            .collect(),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if !self.problems.is_empty() {
            body["problems"] = problems_json(&self.problems);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", r.body_text())
    }
}

/// Maps axum's JSON rejection (unused paths) into our format.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::new(r.status(), "invalid_json", r.body_text())
    }
}

/// Which error format a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `{code, message}`: the admin API, health, metrics, unknown routes.
    Admin,
    /// `{errorCode, errorDetails}`: OFREP and the other evaluation and
    /// delivery routes.
    DataPlane,
}

impl Family {
    /// The family of a request path.
    pub(crate) fn of(path: &str) -> Family {
        if path.starts_with("/ofrep/")
            || matches!(
                path,
                "/api/v1/snapshot" | "/api/v1/stream" | "/api/v1/evaluate"
            )
        {
            Family::DataPlane
        } else {
            Family::Admin
        }
    }

    /// An error answer in this family's format.
    pub(crate) fn error(self, status: StatusCode, code: &'static str, message: &str) -> Response {
        match self {
            Family::Admin => ApiError::new(status, code, message).into_response(),
            Family::DataPlane => crate::plane::error(status, None, "GENERAL", message),
        }
    }
}

/// An error answer whose body is not JSON.
pub(crate) fn is_plain_error(resp: &Response) -> bool {
    let status = resp.status();
    (status.is_client_error() || status.is_server_error())
        && !media_type(resp.headers()).is_some_and(|t| is_json(&t))
}

/// Replaces an error answer that is not JSON (axum's own rejections: a bad
/// path parameter's 400, the body limit's 413, 405 with an empty body)
/// with the family's JSON error, keeping the status and headers such as
/// `Allow`.
pub(crate) async fn json_error(family: Family, resp: Response) -> Response {
    let status = resp.status();
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "request body is larger than the configured limit".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            match parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
            {
                Some(allow) => format!("method not allowed here; allowed: {allow}"),
                None => "method not allowed here".to_owned(),
            },
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_owned()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "unsupported request media type".to_owned(),
        ),
        StatusCode::REQUEST_TIMEOUT => {
            ("timeout", "the request took too long to arrive".to_owned())
        }
        s if s.is_server_error() => ("internal", "internal error".to_owned()),
        StatusCode::BAD_REQUEST if text.starts_with("Invalid URL") => {
            ("invalid_path", lowercase_first(text.trim()))
        }
        _ => ("invalid_request", lowercase_first(text.trim())),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        message
    };
    let fresh = family.error(status, code, &message);
    let (fresh_parts, fresh_body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &fresh_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, fresh_body)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
