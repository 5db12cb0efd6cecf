//! The admin API under `/api/v1`: the route table of every resource
//! (projects, environments, flags, segments, the audit log, export and
//! import, API keys), and the helpers they share: key and name checks,
//! admin lookups, items with their ETags, and `If-Match` preconditions.

mod api_keys;
mod audit;
mod environments;
mod flagd_view;
mod flags;
mod items;
mod projects;
mod transfer;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use vexil_store::{Environment, Item, ItemKind, Project};

use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::http::Table;
use crate::state::AppState;

use self::items::{Flags, Segments};

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

/// The admin API's routes.
pub(crate) fn routes() -> Table<Arc<AppState>> {
    let env = "/api/v1/projects/{project}/environments/{env}";
    let flag = format!("{env}/flags/{{key}}");
    let segment = format!("{env}/segments/{{key}}");
    Table::new()
        .route(Method::GET, "/api/v1/projects", projects::list)
        .route(Method::POST, "/api/v1/projects", projects::create)
        .route(Method::GET, "/api/v1/projects/{project}", projects::get)
        .route(
            Method::GET,
            "/api/v1/projects/{project}/environments",
            environments::list,
        )
        .route(
            Method::POST,
            "/api/v1/projects/{project}/environments",
            environments::create,
        )
        .route(Method::GET, env, environments::get)
        .route(Method::PATCH, env, environments::patch)
        .route(Method::GET, &format!("{env}/flags"), items::list::<Flags>)
        .route(Method::GET, &flag, items::get::<Flags>)
        .route(Method::PUT, &flag, items::put::<Flags>)
        .route(Method::DELETE, &flag, items::delete::<Flags>)
        .route(Method::POST, &format!("{flag}/toggle"), flags::toggle)
        .route(Method::POST, &format!("{flag}/archive"), flags::archive)
        .route(Method::POST, &format!("{flag}/restore"), flags::restore)
        .route(Method::POST, &format!("{flag}/copy"), flags::copy)
        .route(Method::GET, &format!("{flag}/audit"), audit::item::<Flags>)
        .route(
            Method::GET,
            &format!("{env}/segments"),
            items::list::<Segments>,
        )
        .route(Method::GET, &segment, items::get::<Segments>)
        .route(Method::PUT, &segment, items::put::<Segments>)
        .route(Method::DELETE, &segment, items::delete::<Segments>)
        .route(
            Method::GET,
            &format!("{segment}/audit"),
            audit::item::<Segments>,
        )
        .route(Method::GET, &format!("{env}/audit"), audit::env)
        .route(Method::GET, &format!("{env}/export"), transfer::export)
        .route(Method::POST, &format!("{env}/import"), transfer::import)
        .route(Method::GET, "/api/v1/keys", api_keys::list)
        .route(Method::POST, "/api/v1/keys", api_keys::create)
        .route(Method::POST, "/api/v1/keys/{id}/revoke", api_keys::revoke)
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

fn item_json(i: &Item) -> Value {
    json!({"key": i.key, "version": i.version, "archived": i.archived, "updatedAt": i.updated_at, "definition": i.definition})
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Authenticates an admin for the project and returns it.
async fn admin_project(st: &AppState, who: &Principal, project: &str) -> AppResult<Project> {
    who.require_admin(None)?;
    let p = st.store.project(project).await?;
    who.require_admin(Some(&p))?;
    Ok(p)
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

/// As [`admin_env`], for a write: the environment comes from the
/// installed snapshots (the write path plans on them and its commit checks
/// the version), so the write reads the store only for the caller's key.
async fn env_to_write(
    st: &AppState,
    who: &Principal,
    project: &str,
    env: &str,
) -> AppResult<Environment> {
    let installed = st
        .plane
        .snapshots()
        .values()
        .find(|s| s.env.project_key == project && s.env.key == env)
        .map(|s| s.env.clone());
    match installed {
        Some(env) => {
            who.require_admin(None)?;
            who.require_env_admin(&env)?;
            Ok(env)
        }
        None => admin_env(st, who, project, env).await,
    }
}

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Flag => "flag",
        _ => "segment",
    }
}

fn find<'a, I: std::borrow::Borrow<Item>>(
    items: &'a [I],
    kind: ItemKind,
    key: &str,
) -> AppResult<&'a Item> {
    items
        .iter()
        .map(|i| i.borrow())
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
