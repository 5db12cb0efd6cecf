//! Environments of a project: list, create and read them, and change
//! their settings (the bucketing scheme) through the write path.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vexil_engine::model::Bucketing;
use vexil_store::{
    Action, BUCKETING_SETTING, Definition, Environment, ItemKind, Mutation, bucketing_name,
};

use super::projects::NewProject;
use super::{AppResult, St, admin_env, admin_project, check_key, check_name, env_to_write};
use crate::api::auth::Principal;
use crate::api::extract::ApiJson;

fn env_json(e: &Environment) -> Value {
    json!({"project": e.project_key, "key": e.key, "name": e.name, "version": e.version, "createdAt": e.created_at, "bucketing": bucketing_name(e.bucketing)})
}

/// The settings `PATCH` changes; absent ones stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvPatch {
    /// How rollouts hash: `concat` or `cbor` (absent: unchanged; `null`
    /// is refused, as the description says).
    #[serde(default, deserialize_with = "present")]
    bucketing: Option<Bucketing>,
}

/// A field that may be absent but not `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Bucketing>, D::Error> {
    Bucketing::deserialize(d).map(Some)
}

/// The mutation that moves an environment's bucketing from `from` to
/// `to`; none when they are the same.
pub(super) fn bucketing_change(from: Bucketing, to: Bucketing, action: Action) -> Option<Mutation> {
    (from != to).then(|| Mutation {
        kind: ItemKind::Setting,
        key: BUCKETING_SETTING.to_owned(),
        action,
        before: Some(Definition::string(bucketing_name(from))),
        after: Some(Definition::string(bucketing_name(to))),
        archived: false,
    })
}

/// Changes an environment's settings: a write like any other (the whole
/// environment compiled, a new version, audited, announced).
pub(super) async fn patch(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
    ApiJson(body): ApiJson<EnvPatch>,
) -> AppResult<Response> {
    let mut env = env_to_write(&st, &who, &p, &e).await?;
    if let Some(bucketing) = body.bucketing {
        let written = st
            .write(&env, who.actor(), |view| {
                Ok(bucketing_change(view.bucketing, bucketing, Action::Update)
                    .into_iter()
                    .collect())
            })
            .await?;
        env.version = written.version;
        env.bucketing = bucketing;
    }
    Ok(Json(env_json(&env)).into_response())
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
