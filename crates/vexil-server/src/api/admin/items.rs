//! The item handlers flags and segments share: list, read, create or
//! replace, and delete, with their optimistic-concurrency rules
//! (`If-None-Match: *` to create, `If-Match: "<version>"` to change).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vexil_engine::model::{FlagDef, SegmentDef};
use vexil_store::{Action, Definition, Item, ItemKind, Mutation};

use super::flagd_view::{availability, item_view_response};
use super::{
    AppResult, St, admin_env, check_if_match, env_to_write, find, if_match, item_json, kind_name,
};
use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;

/// Flags or segments, for the handlers here and in `audit`: the route
/// table names them `items::list::<Flags>`, `audit::item::<Segments>` and
/// so on.
pub(super) trait Kind {
    const KIND: ItemKind;
    /// What a `PUT` body must parse into.
    type Def: DeserializeOwned + Serialize + Send;
}

pub(super) struct Flags;

impl Kind for Flags {
    const KIND: ItemKind = ItemKind::Flag;
    type Def = FlagDef;
}

pub(super) struct Segments;

impl Kind for Segments {
    const KIND: ItemKind = ItemKind::Segment;
    type Def = SegmentDef;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
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

/// The tags of a definition, for the list's filter (the other fields are
/// skipped, not built).
#[derive(Deserialize)]
struct Tags {
    tags: Option<Value>,
}

pub(super) async fn list<K: Kind>(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> AppResult<Json<Value>> {
    let kind = K::KIND;
    let env = admin_env(&st, &who, &p, &e).await?;
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
                i.definition
                    .parse::<Tags>()
                    .ok()
                    .and_then(|d| d.tags)
                    .as_ref()
                    .and_then(Value::as_array)
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
    let mut views: Vec<Value> = page.iter().map(|i| item_json(i)).collect();
    if kind == ItemKind::Flag {
        let flagd = availability(&st, &state.env, &state.items, &page);
        for (view, flagd) in views.iter_mut().zip(flagd) {
            if let Some(flagd) = flagd {
                view["flagdInProcess"] = flagd;
            }
        }
    }
    Ok(Json(json!({
        "items": views,
        "next": next,
        "version": state.env.version,
    })))
}

pub(super) async fn get<K: Kind>(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
) -> AppResult<Response> {
    let env = admin_env(&st, &who, &p, &e).await?;
    let state = st.store.load(env.id).await?;
    let item = find(&state.items, K::KIND, &key)?;
    Ok(item_view_response(
        &st,
        &state.env,
        &state.items,
        StatusCode::OK,
        item,
    ))
}

/// Creates (`If-None-Match: *`) or replaces (`If-Match: "<version>"`) an item.
pub(super) async fn put<K: Kind>(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<K::Def>,
) -> AppResult<Response> {
    let kind = K::KIND;
    let env = env_to_write(&st, &who, &p, &e).await?;
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
    let precondition = if_match(&headers)?;
    if !create && precondition.is_none() {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "send `If-Match: \"<version>\"` with the version you read to update, or `If-None-Match: *` to create",
        ));
    }
    let definition = Definition::to_json(&body)
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
                check_if_match(precondition, kind, &key, current.map(|c| &**c))?;
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
    Ok(item_view_response(
        &st,
        &env,
        &written.items,
        if create {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        item,
    ))
}

pub(super) async fn delete<K: Kind>(
    State(st): St,
    who: Principal,
    Path((p, e, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let kind = K::KIND;
    let env = env_to_write(&st, &who, &p, &e).await?;
    let precondition = if_match(&headers)?;
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
