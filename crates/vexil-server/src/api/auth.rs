//! Who is calling: the API key from `Authorization: Bearer …` or
//! `X-API-Key` (or the web UI's session cookie, which names one), looked
//! up by hash, and the scope checks routes make.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use vexil_store::{ApiKey, Environment, Project, Scope};

use crate::api::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) key: ApiKey,
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let hash = match keys::secret(&parts.headers) {
            Some(secret) => keys::hash(secret),
            None => session_key(parts, state)?,
        };
        let key = state
            .store
            .key_by_hash(&hash)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
        if key.revoked_at.is_some() {
            return Err(ApiError::unauthorized("this API key has been revoked"));
        }
        state
            .limiter
            .admit(&key, crate::http::limits::Use::Admin)
            .map_err(|r| ApiError::rate_limited(r.0))?;
        Ok(Principal { key })
    }
}

/// The key hash of the web UI session a request's cookie names (the API
/// key, when sent, wins over a cookie). A state-changing request needs the
/// session's CSRF token as well: a cookie alone is what a page of another
/// site can make the browser send.
fn session_key(parts: &Parts, state: &AppState) -> Result<String, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`, or sign in to the web UI",
        )
    };
    let id = crate::api::ui::session_id(&parts.headers).ok_or_else(missing)?;
    let session = state
        .sessions
        .touch(id)
        .ok_or_else(|| ApiError::unauthorized("the web UI session has ended: sign in again"))?;
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !crate::api::ui::csrf_ok(&parts.headers, &session) {
        return Err(ApiError::forbidden_code(
            "csrf_refused",
            "a change made with a web UI session needs the session's `X-CSRF-Token` header and must come from the UI's own origin",
        ));
    }
    Ok(session.key_hash)
}

impl Principal {
    /// The name recorded as the actor of changes.
    pub(crate) fn actor(&self) -> &str {
        &self.key.name
    }

    /// An admin key for every project.
    pub(crate) fn require_global_admin(&self) -> Result<(), ApiError> {
        self.require_admin(None)?;
        if self.key.project_id.is_some() {
            return Err(ApiError::forbidden(
                "this route needs an admin key that is not limited to one project",
            ));
        }
        Ok(())
    }

    /// An admin key for `project` (or for every project).
    pub(crate) fn require_admin(&self, project: Option<&Project>) -> Result<(), ApiError> {
        if self.key.scope != Scope::Admin {
            return Err(ApiError::forbidden(format!(
                "this route needs an admin key; this key has scope `{}`",
                self.key.scope.as_str()
            )));
        }
        match (self.key.project_id, project) {
            (Some(allowed), Some(p)) if allowed != p.id => Err(ApiError::forbidden(format!(
                "this admin key is not for project `{}`",
                p.key
            ))),
            _ => Ok(()),
        }
    }

    /// An admin key for the environment's project.
    pub(crate) fn require_env_admin(&self, env: &Environment) -> Result<(), ApiError> {
        if self.key.scope != Scope::Admin {
            return Err(ApiError::forbidden(format!(
                "this route needs an admin key; this key has scope `{}`",
                self.key.scope.as_str()
            )));
        }
        match self.key.project_id {
            Some(allowed) if allowed != env.project_id => Err(ApiError::forbidden(format!(
                "this admin key is not for project `{}`",
                env.project_key
            ))),
            _ => Ok(()),
        }
    }
}
