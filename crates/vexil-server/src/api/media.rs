//! The media-type rules every route family applies to request bodies
//! (JSON, or JSON or YAML for imports; a body without a label is read as
//! the route's format), and to the error answers it rewrites.

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{HeaderMap, header};

/// The media type of a request body, lowercased and without parameters
/// (`application/json; charset=utf-8` is `application/json`); `None`
/// without a `Content-Type` header.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(v.as_bytes());
    let essence = text.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// `application/json`, or a `+json` type such as `application/ld+json`.
pub(crate) fn is_json(media_type: &str) -> bool {
    media_type == "application/json"
        || media_type
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The YAML media types in use (`application/yaml` is the registered one).
pub(crate) fn is_yaml(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
    )
}

/// The media type of a request whose non-empty body is labelled with a
/// type `accepted` refuses. A body without `Content-Type` is read as the
/// route's format (clients that do not label their bodies keep working);
/// a request without a body is never refused for its label.
pub(crate) fn refused_media_type(req: &Request, accepted: impl Fn(&str) -> bool) -> Option<String> {
    let empty = req.body().size_hint().exact() == Some(0);
    refused_body_type(req.headers(), empty, accepted)
}

/// [`refused_media_type`] of a request's headers, knowing whether its
/// body is empty.
pub(crate) fn refused_body_type(
    headers: &HeaderMap,
    empty: bool,
    accepted: impl Fn(&str) -> bool,
) -> Option<String> {
    if empty {
        return None;
    }
    // The common case without allocating: exactly `application/json`.
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"))
        && accepted("application/json")
    {
        return None;
    }
    media_type(headers).filter(|t| !accepted(t))
}
