//! API keys: create (the secret is shown once), list and revoke them.
//! The secrets themselves are made and hashed by `crate::keys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vexil_store::{Environment, NewKey, Project, Scope};

use super::{AppResult, St, check_name};
use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::keys;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKeyBody {
    name: String,
    scope: String,
    /// Project key: limits an admin key; required for server and client keys.
    project: Option<String>,
    /// Environment key: required for server and client keys.
    environment: Option<String>,
}

fn key_json(k: &vexil_store::ApiKey, projects: &[Project], envs: &[Environment]) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scope": k.scope.as_str(),
        "project": k.project_id.and_then(|id| projects.iter().find(|p| p.id == id)).map(|p| p.key.clone()),
        "environment": k.environment_id.and_then(|id| envs.iter().find(|e| e.id == id)).map(|e| e.key.clone()),
        "createdAt": k.created_at,
        "revokedAt": k.revoked_at,
    })
}

pub(super) async fn create(
    State(st): St,
    who: Principal,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> AppResult<Response> {
    who.require_admin(None)?;
    let scope = Scope::parse(&body.scope).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_scope",
            format!(
                "unknown scope `{}`: use admin, server or client",
                body.scope
            ),
        )
    })?;
    check_name("key", &body.name)?;
    let project = match &body.project {
        Some(key) => Some(st.store.project(key).await?),
        None => None,
    };
    let env = match (&project, &body.environment) {
        (Some(p), Some(e)) => Some(st.store.environment(&p.key, e).await?),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_key_scope",
                "an environment needs its project",
            ));
        }
        _ => None,
    };
    match (scope, &project, &env) {
        (Scope::Admin, _, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_key_scope",
                "admin keys cover a project or everything, not one environment",
            ));
        }
        (Scope::Server | Scope::Client, _, None) => {
            return Err(ApiError::bad_request(
                "invalid_key_scope",
                format!("{} keys need a project and an environment", scope.as_str()),
            ));
        }
        _ => {}
    }
    match &project {
        Some(p) => who.require_admin(Some(p))?,
        None => who.require_global_admin()?,
    }
    let secret = keys::generate(scope).map_err(|e| ApiError::internal(e.to_string()))?;
    let key = st
        .store
        .create_key(&NewKey {
            name: body.name.trim().to_owned(),
            hash: keys::hash(&secret),
            prefix: keys::prefix(&secret),
            scope,
            project_id: project.as_ref().map(|p| p.id),
            environment_id: env.as_ref().map(|e| e.id),
            now: st.now_ms(),
        })
        .await?;
    st.refresh_keys().await?;
    let mut out = key_json(&key, project.as_slice(), env.as_slice());
    out["secret"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub(super) async fn list(State(st): St, who: Principal) -> AppResult<Json<Value>> {
    who.require_admin(None)?;
    let projects = st.store.projects().await?;
    let envs = st.store.environments(None).await?;
    let keys: Vec<Value> = st
        .store
        .keys()
        .await?
        .iter()
        .filter(|k| who.key.project_id.is_none() || k.project_id == who.key.project_id)
        .map(|k| key_json(k, &projects, &envs))
        .collect();
    Ok(Json(json!({"items": keys})))
}

pub(super) async fn revoke(
    State(st): St,
    who: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    who.require_admin(None)?;
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_path",
            format!("key id must be a number, got `{id}`"),
        )
    })?;
    let existing = st.store.keys().await?.into_iter().find(|k| k.id == id);
    let existing =
        existing.ok_or_else(|| ApiError::not_found(format!("API key {id} not found")))?;
    if who.key.project_id.is_some() && existing.project_id != who.key.project_id {
        return Err(ApiError::forbidden(
            "this admin key cannot revoke keys of other projects",
        ));
    }
    let key = st.store.revoke_key(id, st.now_ms()).await?;
    st.refresh_keys().await?;
    let projects = st.store.projects().await?;
    let envs = st.store.environments(None).await?;
    Ok(Json(key_json(&key, &projects, &envs)))
}
