//! What only flags have, beyond the shared item handlers: toggle, archive,
//! restore, and copy to another environment of the project.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use vexil_store::{Action, Definition, Item, ItemKind, Mutation};

use super::flagd_view::item_view_response;
use super::{AppResult, St, admin_env, check_if_match, env_to_write, find, if_match};
use crate::api::auth::Principal;
use crate::api::extract::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Toggle {
    enabled: bool,
}

pub(super) async fn toggle(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Toggle>,
) -> AppResult<Response> {
    let precondition = if_match(&headers)?;
    modify_flag(&st, &who, (p, e, key), Action::Toggle, move |item| {
        check_if_match(precondition, ItemKind::Flag, &item.key, Some(item))?;
        let mut def = item.definition.to_value();
        def["enabled"] = Value::Bool(body.enabled);
        Ok((Definition::from(def), item.archived))
    })
    .await
}

pub(super) async fn archive(
    State(st): St,
    who: Principal,
    Path(pek): Path<(String, String, String)>,
) -> AppResult<Response> {
    modify_flag(&st, &who, pek, Action::Archive, |item| {
        Ok((item.definition.clone(), true))
    })
    .await
}

pub(super) async fn restore(
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
    F: Fn(&Item) -> AppResult<(Definition, bool)>,
{
    let env = env_to_write(st, who, &p, &e).await?;
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
    Ok(item_view_response(
        st,
        &env,
        &written.items,
        StatusCode::OK,
        find(&written.items, ItemKind::Flag, &key)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CopyTo {
    /// Target environment key, in the same project.
    to: String,
}

pub(super) async fn copy(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<CopyTo>,
) -> AppResult<Response> {
    let from = admin_env(&st, &who, &p, &e).await?;
    let to = env_to_write(&st, &who, &p, &body.to).await?;
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
    Ok(item_view_response(
        &st,
        &to,
        &written.items,
        StatusCode::OK,
        find(&written.items, ItemKind::Flag, &key)?,
    ))
}
