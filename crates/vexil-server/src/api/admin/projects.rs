//! Projects: list, create and read them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vexil_store::Project;

use super::{AppResult, St, admin_project, check_key, check_name};
use crate::api::auth::Principal;
use crate::api::extract::ApiJson;

fn project_json(p: &Project) -> Value {
    json!({"key": p.key, "name": p.name, "createdAt": p.created_at})
}

/// The body of a new project, and of a new environment too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewProject {
    pub(super) key: String,
    #[serde(default)]
    pub(super) name: Option<String>,
}

pub(super) async fn list(State(st): St, who: Principal) -> AppResult<Json<Value>> {
    who.require_admin(None)?;
    let projects: Vec<Value> = st
        .store
        .projects()
        .await?
        .iter()
        .filter(|p| who.key.project_id.is_none_or(|id| id == p.id))
        .map(project_json)
        .collect();
    Ok(Json(json!({"items": projects})))
}

pub(super) async fn create(
    State(st): St,
    who: Principal,
    ApiJson(body): ApiJson<NewProject>,
) -> AppResult<Response> {
    who.require_global_admin()?;
    check_key("project", &body.key)?;
    let name = body.name.unwrap_or_else(|| body.key.clone());
    check_name("project", &name)?;
    let p = st
        .store
        .create_project(&body.key, &name, st.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(project_json(&p))).into_response())
}

pub(super) async fn get(
    State(st): St,
    who: Principal,
    Path(project): Path<String>,
) -> AppResult<Json<Value>> {
    let p = admin_project(&st, &who, &project).await?;
    Ok(Json(project_json(&p)))
}
