//! The admin API's body extractors, `ApiJson` and `ApiText`, whose
//! rejections are `ApiError`s.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::media::{is_json, is_yaml, refused_media_type};

/// JSON request body; malformed bodies get an `ApiError` naming the place.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(refused) = refused_media_type(&req, is_json) {
            return Err(unsupported_media_type(&refused, "application/json"));
        }
        let bytes = body_bytes(req, state).await?;
        if !is_json_object(&bytes) {
            return Err(ApiError::bad_request(
                "invalid_json",
                "request body must be a JSON object",
            ));
        }
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
        if let Some(refused) = refused_media_type(&req, |t| is_json(t) || is_yaml(t)) {
            return Err(unsupported_media_type(
                &refused,
                "application/json, application/yaml or text/yaml",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        // Without a copy when the body is held once (an import's can be
        // large).
        String::from_utf8(Vec::from(bytes))
            .map(ApiText)
            .map_err(|_| ApiError::bad_request("invalid_body", "request body is not UTF-8 text"))
    }
}

/// Whether a body holds a JSON object (or starts like one: the parser
/// reports the rest). serde reads a struct from an array too, by field
/// position, so `["p"]` would otherwise create project `p`.
pub(crate) fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The admin API's 415.
fn unsupported_media_type(got: &str, want: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("request body must be {want}, not `{got}`"),
    )
}
