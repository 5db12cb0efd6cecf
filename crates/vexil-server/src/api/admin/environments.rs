//! Environments of a project: list, create and read them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vexil_store::Environment;

use super::projects::NewProject;
use super::{AppResult, St, admin_env, admin_project, check_key, check_name};
use crate::api::auth::Principal;
use crate::api::extract::ApiJson;

fn env_json(e: &Environment) -> Value {
    json!({"project": e.project_key, "key": e.key, "name": e.name, "version": e.version, "createdAt": e.created_at})
}

pub(super) async fn list(
    State(st): St,
    who: Principal,
    Path(project): Path<String>,
) -> AppResult<Json<Value>> {
    let p = admin_project(&st, &who, &project).await?;
    let envs: Vec<Value> = st
        .store
        .environments(Some(p.id))
        .await?
        .iter()
        .map(env_json)
        .collect();
    Ok(Json(json!({"items": envs})))
}

pub(super) async fn create(
    State(st): St,
    who: Principal,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<NewProject>,
) -> AppResult<Response> {
    let p = admin_project(&st, &who, &project).await?;
    check_key("environment", &body.key)?;
    let name = body.name.unwrap_or_else(|| body.key.clone());
    check_name("environment", &name)?;
    let env = st
        .store
        .create_environment(p.id, &body.key, &name, st.now_ms())
        .await?;
    st.reload(env.id).await?;
    Ok((StatusCode::CREATED, Json(env_json(&env))).into_response())
}

pub(super) async fn get(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let env = admin_env(&st, &who, &p, &e).await?;
    Ok(Json(env_json(&env)))
}
