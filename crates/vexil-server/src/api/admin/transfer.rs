//! Export of an environment as a native document (with its bucketing),
//! and import of a native or flagd document (JSON or YAML), merged or
//! replacing, with a dry run. An imported document's `bucketing: cbor`
//! becomes the environment's setting; so does `concat` (the default) when
//! replacing.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use vexil_engine::model::{Bucketing, Document};

use vexil_store::{Action, Definition, Item, ItemKind, Mutation};

use super::environments::bucketing_change;
use super::{AppResult, St, admin_env, env_to_write, etag};
use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::api::extract::ApiText;
use crate::state::{Parsed, document_of};

pub(super) async fn export(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
) -> AppResult<Response> {
    let env = admin_env(&st, &who, &p, &e).await?;
    let state = st.store.load(env.id).await?;
    let doc = document_of(state.items.iter(), state.env.bucketing)?;
    Ok(([(header::ETAG, etag(state.env.version))], Json(doc)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ImportParams {
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

/// What an import's document holds, as stored: kind, key, definition.
type Desired = Vec<(ItemKind, String, Definition)>;

/// The definitions an import stores (as `vexil_store::definitions_of`
/// writes them: segments, then flags with the document's metadata), each
/// written once; and the same texts with their parsed forms, which the
/// write takes instead of parsing the texts again.
fn definitions(doc: Document) -> AppResult<(Desired, Parsed)> {
    let encode =
        |e: serde_json::Error| ApiError::internal(format!("cannot encode definition: {e}"));
    let mut desired = Vec::with_capacity(doc.segments.len() + doc.flags.len());
    let mut parsed = Parsed::default();
    for (key, segment) in doc.segments.shared() {
        let def = Definition::to_json(&**segment).map_err(encode)?;
        desired.push((ItemKind::Segment, key.clone(), def.clone()));
        parsed.segments.push((key.clone(), def, segment.clone()));
    }
    for (key, flag) in doc.flags.shared() {
        let flag = vexil_store::stored_flag(&doc, flag);
        let def = Definition::to_json(&*flag).map_err(encode)?;
        desired.push((ItemKind::Flag, key.clone(), def.clone()));
        parsed.flags.push((key.clone(), def, flag));
    }
    Ok((desired, parsed.sorted()))
}

/// Imports a native or flagd document (JSON or YAML) into an environment.
pub(super) async fn import(
    State(st): St,
    who: Principal,
    Path((p, e)): Path<(String, String)>,
    params: Result<Query<ImportParams>, QueryRejection>,
    ApiText(text): ApiText,
) -> AppResult<Json<Value>> {
    let env = env_to_write(&st, &who, &p, &e).await?;
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
    // With a large import, the text is a good part of what is held.
    drop(text);
    // A merge keeps the environment's bucketing unless the document names
    // the non-default one: a document without the field (any flagd one)
    // says nothing about it.
    let sets_bucketing =
        params.mode == ImportMode::Replace || doc.bucketing != Bucketing::default();
    let bucketing = doc.bucketing;
    let (desired, parsed) = definitions(doc)?;
    let parsed = Arc::new(parsed);
    let plan = |state: &crate::control::EnvView<'_>| -> AppResult<Vec<Mutation>> {
        let mut mutations = Vec::new();
        if sets_bucketing {
            mutations.extend(bucketing_change(state.bucketing, bucketing, Action::Import));
        }
        // Indexes, not searches: a document of n items against an
        // environment of n items must not cost n².
        let held: HashMap<(ItemKind, &str), &Item> = state
            .items
            .iter()
            .map(|i| ((i.kind, i.key.as_str()), &**i))
            .collect();
        for (kind, key, def) in &desired {
            let current = held.get(&(*kind, key.as_str())).copied();
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
            let wanted: HashSet<(ItemKind, &str)> = desired
                .iter()
                .map(|(k, key, _)| (*k, key.as_str()))
                .collect();
            for item in state.items {
                if !wanted.contains(&(item.kind, item.key.as_str())) {
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
        (st.preview(&env, parsed, plan).await?, None)
    } else {
        let written = st.write_parsed(&env, who.actor(), parsed, plan).await?;
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
    let bucketing = mutations
        .iter()
        .find(|m| m.kind == ItemKind::Setting)
        .and_then(|m| m.after.clone());
    Ok(Json(json!({
        "dryRun": params.dry_run,
        "flags": summary(ItemKind::Flag),
        "segments": summary(ItemKind::Segment),
        "bucketing": bucketing,
        "version": version,
    })))
}
