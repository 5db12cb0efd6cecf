//! `/ui/api/session`: signing in to the web UI with an admin key (a
//! session cookie and its CSRF token in exchange), asking who is signed in
//! (the page reads its CSRF token again after a reload), and signing out.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vexil_store::{ApiKey, Scope};

use super::session::{Session, csrf_ok, session_id};
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::keys;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    /// The admin key's secret.
    key: String,
}

/// `POST /ui/api/session`: an admin key for a session. A wrong, revoked
/// or non-admin key opens none.
pub(super) async fn sign_in(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    // A page of another site must not sign a browser in either (to a key
    // of the attacker's): the JSON body already needs a CORS preflight,
    // and the browser's own word on where the request comes from is
    // checked too.
    if from_another_site(&headers) {
        return Err(ApiError::forbidden_code(
            "csrf_refused",
            "signing in must come from the UI's own origin",
        ));
    }
    let hash = keys::hash(body.key.trim());
    let key = live_key(&st, &hash).await?;
    if key.scope != Scope::Admin {
        return Err(ApiError::forbidden(format!(
            "the web UI needs an admin key; this key has scope `{}`",
            key.scope.as_str()
        )));
    }
    st.limiter
        .admit(&key, crate::http::limits::Use::Admin)
        .map_err(|r| ApiError::rate_limited(r.0))?;
    let (id, session) = st
        .sessions
        .open(hash)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = (StatusCode::CREATED, Json(describe(&key, &session))).into_response();
    let h = resp.headers_mut();
    h.insert(header::SET_COOKIE, st.sessions.cookie(&id));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /ui/api/session`: the signed-in key and the session's CSRF token.
pub(super) async fn current(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = session_id(&headers)
        .and_then(|id| st.sessions.touch(id))
        .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
    let key = live_key(&st, &session.key_hash).await?;
    let mut resp = Json(describe(&key, &session)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `DELETE /ui/api/session`: signs out (the session is removed from the
/// server, the cookie from the browser). Needs the CSRF token while the
/// session lives.
pub(super) async fn sign_out(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_id(&headers)
        && let Some(session) = st.sessions.touch(id)
    {
        if !csrf_ok(&headers, &session) {
            return Err(ApiError::forbidden_code(
                "csrf_refused",
                "signing out needs the session's `X-CSRF-Token` header",
            ));
        }
        st.sessions.close(id);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, st.sessions.cleared_cookie());
    Ok(resp)
}

/// Whether the browser says the request comes from another site.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
}

/// The key with this stored hash, unless unknown or revoked.
async fn live_key(st: &AppState, hash: &str) -> Result<ApiKey, ApiError> {
    match st.store.key_by_hash(hash).await? {
        Some(k) if k.revoked_at.is_none() => Ok(k),
        Some(_) => Err(ApiError::unauthorized("this API key has been revoked")),
        None => Err(ApiError::unauthorized("unknown API key")),
    }
}

fn describe(key: &ApiKey, session: &Session) -> serde_json::Value {
    json!({
        "key": {"id": key.id, "name": key.name, "prefix": key.prefix, "projectId": key.project_id},
        "csrfToken": session.csrf,
    })
}
