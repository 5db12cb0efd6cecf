//! The audit log: an environment's changes, or one flag's or segment's.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use vexil_store::{Change, ChangeFilter, ItemKind};

use super::items::Kind;
use super::{AppResult, St, admin_env};
use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::state::AppState;

fn change_json(c: &Change) -> Value {
    json!({"version": c.version, "at": c.at, "actor": c.actor, "kind": c.kind, "key": c.key, "action": c.action, "before": c.before, "after": c.after})
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
pub(super) struct AuditParams {
    /// Changes with a version greater than this.
    after: Option<i64>,
    /// At most this many (1 to 1000).
    limit: Option<i64>,
}

/// The changes of one flag or segment.
pub(super) async fn item<K: Kind>(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    audit(&st, &who, (p, e), Some((K::KIND, key)), q).await
}

/// The changes of every item of an environment.
pub(super) async fn env(
    State(st): St,
    who: Principal,
    Path(pe): Path<(String, String)>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    audit(&st, &who, pe, None, q).await
}
