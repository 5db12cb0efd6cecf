//! `ApiError`, the only `IntoResponse` error: a status and a stable
//! `{code, message}` body (plus `problems` for invalid documents), and
//! `ApiJson`, the JSON extractor whose rejections use the same format.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use vexil_engine::Problem;
use vexil_store::{ErrorKind, StoreError};

use crate::state::problems_json;

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

/// JSON request body; malformed bodies get an `ApiError` naming the place.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            ApiError::bad_request(
                "invalid_json",
                format!("invalid JSON body{at}: {}", e.inner()),
            )
        })?;
        de.end().map_err(|e| {
            ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}"))
        })?;
        Ok(ApiJson(value))
    }
}

/// Reads a request body within the configured limit.
async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "body_too_large",
                    "request body is larger than the configured limit",
                )
            } else {
                ApiError::new(status, "invalid_body", e.body_text())
            }
        })
}

/// A UTF-8 text body (documents to import: JSON or YAML).
pub(crate) struct ApiText(pub(crate) String);

impl<S: Send + Sync> FromRequest<S> for ApiText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(ApiText)
            .map_err(|_| ApiError::bad_request("invalid_body", "request body is not UTF-8 text"))
    }
}

/// Maps axum's JSON rejection (unused paths) into our format.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::new(r.status(), "invalid_json", r.body_text())
    }
}
