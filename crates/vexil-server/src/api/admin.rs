//! The admin API under `/api/v1`: projects, environments, flags,
//! segments, the audit log, export and API keys.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vexil_engine::model::{FlagDef, SegmentDef};
use vexil_store::{
    Action, Change, ChangeFilter, Environment, Item, ItemKind, Mutation, NewKey, Project, Scope,
};

use crate::api::auth::Principal;
use crate::api::error::{ApiError, ApiJson, ApiText};
use crate::keys;
use crate::state::{AppState, document_of};

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    let env = "/api/v1/projects/{project}/environments/{env}";
    Router::new()
        .route("/api/v1/projects", get(list_projects).post(create_project))
        .route("/api/v1/projects/{project}", get(get_project))
        .route(
            "/api/v1/projects/{project}/environments",
            get(list_envs).post(create_env),
        )
        .route(env, get(get_env))
        .route(&format!("{env}/flags"), get(list_flags))
        .route(
            &format!("{env}/flags/{{key}}"),
            get(get_flag).put(put_flag).delete(delete_flag),
        )
        .route(&format!("{env}/flags/{{key}}/toggle"), post(toggle_flag))
        .route(&format!("{env}/flags/{{key}}/archive"), post(archive_flag))
        .route(&format!("{env}/flags/{{key}}/restore"), post(restore_flag))
        .route(&format!("{env}/flags/{{key}}/copy"), post(copy_flag))
        .route(&format!("{env}/flags/{{key}}/audit"), get(flag_audit))
        .route(&format!("{env}/segments"), get(list_segments))
        .route(
            &format!("{env}/segments/{{key}}"),
            get(get_segment).put(put_segment).delete(delete_segment),
        )
        .route(&format!("{env}/segments/{{key}}/audit"), get(segment_audit))
        .route(&format!("{env}/audit"), get(env_audit))
        .route(&format!("{env}/export"), get(export))
        .route(&format!("{env}/import"), post(import))
        .route("/api/v1/keys", get(list_keys).post(create_key))
        .route("/api/v1/keys/{id}/revoke", post(revoke_key))
}

/// Keys of projects and environments follow the flag key rules.
fn check_key(what: &str, key: &str) -> AppResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_key",
            format!(
                "invalid {what} key `{key}`: use 1 to 64 letters, digits, `_`, `-` and `.`, starting with a letter or digit"
            ),
        ))
    }
}

/// Longest project, environment or API key name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// Names of projects, environments and API keys: 1 to 100 characters, not
/// blank, no control characters (the same on every backend).
fn check_name(what: &str, name: &str) -> AppResult<()> {
    let problem = if name.trim().is_empty() {
        Some("must not be empty or blank".to_owned())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!(
            "is {} characters long; the limit is {MAX_NAME_CHARS}",
            name.chars().count()
        ))
    } else {
        name.chars()
            .find(|c| c.is_control())
            .map(|c| format!("contains the control character U+{:04X}", c as u32))
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(ApiError::bad_request(
            "invalid_name",
            format!("{what} name {p}"),
        )),
    }
}

fn project_json(p: &Project) -> Value {
    json!({"key": p.key, "name": p.name, "createdAt": p.created_at})
}

fn env_json(e: &Environment) -> Value {
    json!({"project": e.project_key, "key": e.key, "name": e.name, "version": e.version, "createdAt": e.created_at})
}

fn item_json(i: &Item) -> Value {
    json!({"key": i.key, "version": i.version, "archived": i.archived, "updatedAt": i.updated_at, "definition": i.definition})
}

fn change_json(c: &Change) -> Value {
    json!({"version": c.version, "at": c.at, "actor": c.actor, "kind": c.kind, "key": c.key, "action": c.action, "before": c.before, "after": c.after})
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// An item with its ETag.
fn item_response(status: StatusCode, item: &Item) -> Response {
    (
        status,
        [(header::ETAG, etag(item.version))],
        Json(item_json(item)),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    key: String,
    #[serde(default)]
    name: Option<String>,
}

async fn list_projects(State(st): St, who: Principal) -> AppResult<Json<Value>> {
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

async fn create_project(
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

async fn get_project(
    State(st): St,
    who: Principal,
    Path(project): Path<String>,
) -> AppResult<Json<Value>> {
    who.require_admin(None)?;
    let p = st.store.project(&project).await?;
    who.require_admin(Some(&p))?;
    Ok(Json(project_json(&p)))
}

async fn list_envs(
    State(st): St,
    who: Principal,
    Path(project): Path<String>,
) -> AppResult<Json<Value>> {
    who.require_admin(None)?;
    let p = st.store.project(&project).await?;
    who.require_admin(Some(&p))?;
    let envs: Vec<Value> = st
        .store
        .environments(Some(p.id))
        .await?
        .iter()
        .map(env_json)
        .collect();
    Ok(Json(json!({"items": envs})))
}

async fn create_env(
    State(st): St,
    who: Principal,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<NewProject>,
) -> AppResult<Response> {
    who.require_admin(None)?;
    let p = st.store.project(&project).await?;
    who.require_admin(Some(&p))?;
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

/// Authenticates an admin for the environment and returns it.
async fn admin_env(
    st: &AppState,
    who: &Principal,
    project: &str,
    env: &str,
) -> AppResult<Environment> {
    who.require_admin(None)?;
    let env = st.store.environment(project, env).await?;
    who.require_env_admin(&env)?;
    Ok(env)
}

async fn get_env(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let env = admin_env(&st, &who, &p, &e).await?;
    Ok(Json(env_json(&env)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Substring of the key, case-insensitive.
    q: Option<String>,
    /// Only flags with this tag.
    tag: Option<String>,
    /// `true`: only archived items; default: only live ones.
    #[serde(default)]
    archived: bool,
    /// Page size, 1 to 500.
    limit: Option<usize>,
    /// Keys after this one (the previous page's `next`).
    after: Option<String>,
}

async fn list_items(
    st: &AppState,
    who: &Principal,
    kind: ItemKind,
    (p, e): (String, String),
    params: Result<Query<ListParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    let env = admin_env(st, who, &p, &e).await?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    let q = params.q.as_deref().map(str::to_lowercase);
    let state = st.store.load(env.id).await?;
    let mut matching = state.items.iter().filter(|i| {
        i.kind == kind
            && i.archived == params.archived
            && q.as_deref()
                .is_none_or(|q| i.key.to_lowercase().contains(q))
            && params.tag.as_deref().is_none_or(|t| {
                i.definition["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|x| x.as_str() == Some(t)))
            })
            && params.after.as_deref().is_none_or(|a| i.key.as_str() > a)
    });
    let page: Vec<&Item> = matching.by_ref().take(limit).collect();
    let next = if matching.next().is_some() {
        page.last().map(|i| i.key.clone())
    } else {
        None
    };
    Ok(Json(json!({
        "items": page.iter().map(|i| item_json(i)).collect::<Vec<_>>(),
        "next": next,
        "version": state.env.version,
    })))
}

async fn get_item(
    st: &AppState,
    who: &Principal,
    kind: ItemKind,
    (p, e, key): (String, String, String),
) -> AppResult<Response> {
    let env = admin_env(st, who, &p, &e).await?;
    let state = st.store.load(env.id).await?;
    let item = find(&state.items, kind, &key)?;
    Ok(item_response(StatusCode::OK, item))
}

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Flag => "flag",
        _ => "segment",
    }
}

fn find<'a>(items: &'a [Item], kind: ItemKind, key: &str) -> AppResult<&'a Item> {
    items
        .iter()
        .find(|i| i.kind == kind && i.key == key)
        .ok_or_else(|| ApiError::not_found(format!("{} `{key}` not found", kind_name(kind))))
}

/// The version an `If-Match` header names: `Some(None)` for `*`.
fn if_match<'a>(headers: &'a HeaderMap) -> AppResult<Option<Option<i64>>> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(Some(None));
    }
    // An entity tag is quoted (RFC 9110): `"12"` or `W/"12"`; the bare
    // version `12` is taken too.
    let quoted = |t: &'a str| t.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
    let version = match text.strip_prefix("W/") {
        Some(weak) => quoted(weak),
        None => quoted(text).or(Some(text)),
    }
    .filter(|t| !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit()))
    .and_then(|t| t.parse::<i64>().ok());
    version.map(|n| Some(Some(n))).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_header",
            format!("If-Match must be a version ETag such as \"12\", got `{text}`"),
        )
    })
}

fn precondition_failed(kind: ItemKind, key: &str, current: i64, wanted: i64) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        format!(
            "{} `{key}` is at version {current}, not {wanted}: it changed since you read it",
            kind_name(kind)
        ),
    )
}

/// Checks `If-Match` against the item's current version.
fn check_if_match(
    precondition: Option<Option<i64>>,
    kind: ItemKind,
    key: &str,
    current: Option<&Item>,
) -> AppResult<()> {
    match (precondition, current) {
        (Some(Some(wanted)), Some(item)) if item.version != wanted => {
            Err(precondition_failed(kind, key, item.version, wanted))
        }
        (Some(_), None) => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            format!("{} `{key}` does not exist", kind_name(kind)),
        )),
        _ => Ok(()),
    }
}

/// Creates (`If-None-Match: *`) or replaces (`If-Match: "<version>"`) an item.
async fn put_item<T: DeserializeOwned + serde::Serialize>(
    st: &AppState,
    who: &Principal,
    kind: ItemKind,
    (p, e, key): (String, String, String),
    headers: &HeaderMap,
    body: T,
) -> AppResult<Response> {
    let env = admin_env(st, who, &p, &e).await?;
    let create = match headers.get(header::IF_NONE_MATCH) {
        None => false,
        Some(v) if v.as_bytes() == b"*" => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_header",
                "If-None-Match must be `*` (create only if it does not exist)",
            ));
        }
    };
    let precondition = if_match(headers)?;
    if !create && precondition.is_none() {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "send `If-Match: \"<version>\"` with the version you read to update, or `If-None-Match: *` to create",
        ));
    }
    let definition = serde_json::to_value(&body)
        .map_err(|e| ApiError::internal(format!("cannot encode definition: {e}")))?;
    let written = st
        .write(&env, who.actor(), |state| {
            let current = state.items.iter().find(|i| i.kind == kind && i.key == key);
            if create {
                if current.is_some() {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "already_exists",
                        format!("{} `{key}` already exists", kind_name(kind)),
                    ));
                }
            } else {
                check_if_match(precondition, kind, &key, current)?;
            }
            Ok(vec![Mutation {
                kind,
                key: key.clone(),
                action: if create {
                    Action::Create
                } else {
                    Action::Update
                },
                before: current.map(|i| i.definition.clone()),
                after: Some(definition.clone()),
                archived: current.is_some_and(|i| i.archived),
            }])
        })
        .await?;
    let item = find(&written.items, kind, &key)?;
    Ok(item_response(
        if create {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        item,
    ))
}

async fn delete_item(
    st: &AppState,
    who: &Principal,
    kind: ItemKind,
    (p, e, key): (String, String, String),
    headers: &HeaderMap,
) -> AppResult<Response> {
    let env = admin_env(st, who, &p, &e).await?;
    let precondition = if_match(headers)?;
    st.write(&env, who.actor(), |state| {
        let current = find(state.items, kind, &key)?;
        check_if_match(precondition, kind, &key, Some(current))?;
        Ok(vec![Mutation {
            kind,
            key: key.clone(),
            action: Action::Delete,
            before: Some(current.definition.clone()),
            after: None,
            archived: false,
        }])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn audit(
    st: &AppState,
    who: &Principal,
    (p, e): (String, String),
    item: Option<(ItemKind, String)>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    let env = admin_env(st, who, &p, &e).await?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let after_version = params.after.unwrap_or(0);
    if after_version < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "after must be a version, 0 or more",
        ));
    }
    let changes = st
        .store
        .changes(
            env.id,
            &ChangeFilter {
                item,
                after_version,
                limit,
            },
        )
        .await?;
    Ok(Json(
        json!({"items": changes.iter().map(change_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    /// Changes with a version greater than this.
    after: Option<i64>,
    /// At most this many (1 to 1000).
    limit: Option<i64>,
}

async fn list_flags(
    State(st): St,
    who: Principal,
    Path(pe): Path<(String, String)>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    list_items(&st, &who, ItemKind::Flag, pe, q).await
}

async fn get_flag(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
) -> AppResult<Response> {
    get_item(&st, &who, ItemKind::Flag, pek).await
}

async fn put_flag(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FlagDef>,
) -> AppResult<Response> {
    put_item(&st, &who, ItemKind::Flag, pek, &headers, body).await
}

async fn delete_flag(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    delete_item(&st, &who, ItemKind::Flag, pek, &headers).await
}

async fn flag_audit(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    audit(&st, &who, (p, e), Some((ItemKind::Flag, key)), q).await
}

async fn list_segments(
    State(st): St,
    who: Principal,
    Path(pe): Path<(String, String)>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    list_items(&st, &who, ItemKind::Segment, pe, q).await
}

async fn get_segment(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
) -> AppResult<Response> {
    get_item(&st, &who, ItemKind::Segment, pek).await
}

async fn put_segment(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SegmentDef>,
) -> AppResult<Response> {
    put_item(&st, &who, ItemKind::Segment, pek, &headers, body).await
}

async fn delete_segment(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    delete_item(&st, &who, ItemKind::Segment, pek, &headers).await
}

async fn segment_audit(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    audit(&st, &who, (p, e), Some((ItemKind::Segment, key)), q).await
}

async fn env_audit(
    State(st): St,
    who: Principal,
    Path(pe): Path<(String, String)>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    audit(&st, &who, pe, None, q).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Toggle {
    enabled: bool,
}

async fn toggle_flag(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Toggle>,
) -> AppResult<Response> {
    let precondition = if_match(&headers)?;
    modify_flag(&st, &who, (p, e, key), Action::Toggle, move |item| {
        check_if_match(precondition, ItemKind::Flag, &item.key, Some(item))?;
        let mut def = item.definition.clone();
        def["enabled"] = Value::Bool(body.enabled);
        Ok((def, item.archived))
    })
    .await
}

async fn archive_flag(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
) -> AppResult<Response> {
    modify_flag(&st, &who, pek, Action::Archive, |item| {
        Ok((item.definition.clone(), true))
    })
    .await
}

async fn restore_flag(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
) -> AppResult<Response> {
    modify_flag(&st, &who, pek, Action::Restore, |item| {
        Ok((item.definition.clone(), false))
    })
    .await
}

/// Changes one existing flag; a change to the same state writes nothing.
async fn modify_flag<F>(
    st: &AppState,
    who: &Principal,
    (p, e, key): (String, String, String),
    action: Action,
    change: F,
) -> AppResult<Response>
where
    F: Fn(&Item) -> AppResult<(Value, bool)>,
{
    let env = admin_env(st, who, &p, &e).await?;
    let written = st
        .write(&env, who.actor(), |state| {
            let current = find(state.items, ItemKind::Flag, &key)?;
            let (after, archived) = change(current)?;
            if after == current.definition && archived == current.archived {
                return Ok(Vec::new());
            }
            Ok(vec![Mutation {
                kind: ItemKind::Flag,
                key: key.clone(),
                action,
                before: Some(current.definition.clone()),
                after: Some(after),
                archived,
            }])
        })
        .await?;
    Ok(item_response(
        StatusCode::OK,
        find(&written.items, ItemKind::Flag, &key)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyTo {
    /// Target environment key, in the same project.
    to: String,
}

async fn copy_flag(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<CopyTo>,
) -> AppResult<Response> {
    let from = admin_env(&st, &who, &p, &e).await?;
    let to = admin_env(&st, &who, &p, &body.to).await?;
    let source = st.store.load(from.id).await?;
    let definition = find(&source.items, ItemKind::Flag, &key)?
        .definition
        .clone();
    let written = st
        .write(&to, who.actor(), |state| {
            let current = state
                .items
                .iter()
                .find(|i| i.kind == ItemKind::Flag && i.key == key);
            if current.is_some_and(|c| c.definition == definition) {
                return Ok(Vec::new());
            }
            Ok(vec![Mutation {
                kind: ItemKind::Flag,
                key: key.clone(),
                action: Action::Copy,
                before: current.map(|c| c.definition.clone()),
                after: Some(definition.clone()),
                archived: current.is_some_and(|c| c.archived),
            }])
        })
        .await?;
    Ok(item_response(
        StatusCode::OK,
        find(&written.items, ItemKind::Flag, &key)?,
    ))
}

async fn export(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
) -> AppResult<Response> {
    let env = admin_env(&st, &who, &p, &e).await?;
    let state = st.store.load(env.id).await?;
    let doc = document_of(state.items.iter())?;
    Ok(([(header::ETAG, etag(state.env.version))], Json(doc)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
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

async fn create_key(
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

async fn list_keys(State(st): St, who: Principal) -> AppResult<Json<Value>> {
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

async fn revoke_key(
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImportParams {
    /// Validate and report what would change, without changing anything.
    #[serde(default)]
    dry_run: bool,
    /// `merge` (default): create and update what the document has.
    /// `replace`: also delete flags and segments it does not have.
    #[serde(default)]
    mode: ImportMode,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ImportMode {
    #[default]
    Merge,
    Replace,
}

/// Imports a native or flagd document (JSON or YAML) into an environment.
async fn import(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
    params: Result<Query<ImportParams>, QueryRejection>,
    ApiText(text): ApiText,
) -> AppResult<Json<Value>> {
    let env = admin_env(&st, &who, &p, &e).await?;
    let Query(params) = params?;
    // A forgotten body is not an empty document (with `mode=replace` it
    // would delete everything); `{}` is one.
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the request body is empty: send a native or flagd document (`{}` is an empty one)",
        ));
    }
    let doc = vexil_engine::parse(&text, vexil_engine::Format::Auto)
        .map_err(|e| ApiError::invalid(e.problems()))?
        .into_native()
        .map_err(|p| ApiError::invalid(p.0))?;
    if doc.bucketing != vexil_engine::model::Bucketing::default() {
        return Err(ApiError::bad_request(
            "unsupported_bucketing",
            "this document uses `bucketing: cbor`; environments in the store use the default bucketing for now",
        ));
    }
    let desired = vexil_store::definitions_of(&doc)
        .map_err(|e| ApiError::internal(format!("cannot encode definition: {e}")))?;
    let plan = |state: &crate::control::EnvView<'_>| -> AppResult<Vec<Mutation>> {
        let mut mutations = Vec::new();
        for (kind, key, def) in &desired {
            let current = state
                .items
                .iter()
                .find(|i| i.kind == *kind && &i.key == key);
            if current.is_some_and(|c| &c.definition == def && !c.archived) {
                continue;
            }
            mutations.push(Mutation {
                kind: *kind,
                key: key.clone(),
                action: Action::Import,
                before: current.map(|c| c.definition.clone()),
                after: Some(def.clone()),
                archived: false,
            });
        }
        if params.mode == ImportMode::Replace {
            for item in state.items {
                if !desired
                    .iter()
                    .any(|(k, key, _)| *k == item.kind && *key == item.key)
                {
                    mutations.push(Mutation {
                        kind: item.kind,
                        key: item.key.clone(),
                        action: Action::Delete,
                        before: Some(item.definition.clone()),
                        after: None,
                        archived: false,
                    });
                }
            }
        }
        Ok(mutations)
    };
    let (mutations, version) = if params.dry_run {
        (st.preview(&env, plan).await?, None)
    } else {
        let written = st.write(&env, who.actor(), plan).await?;
        (written.mutations, Some(written.version))
    };
    let summary = |kind: ItemKind| {
        let pick = |f: &dyn Fn(&Mutation) -> bool| -> Vec<&str> {
            mutations
                .iter()
                .filter(|m| m.kind == kind && f(m))
                .map(|m| m.key.as_str())
                .collect()
        };
        let total = desired.iter().filter(|(k, _, _)| *k == kind).count();
        let created = pick(&|m| m.before.is_none());
        let updated = pick(&|m| m.before.is_some() && m.after.is_some());
        let deleted = pick(&|m| m.after.is_none());
        json!({
            "created": created,
            "updated": updated,
            "deleted": deleted,
            "unchanged": total - created.len() - updated.len(),
        })
    };
    Ok(Json(json!({
        "dryRun": params.dry_run,
        "flags": summary(ItemKind::Flag),
        "segments": summary(ItemKind::Segment),
        "version": version,
    })))
}
