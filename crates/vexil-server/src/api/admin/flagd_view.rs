//! The admin flag view's read-only `flagdInProcess`: whether in-process
//! flagd providers get the flag (the sync service sends only flags with an
//! exact flagd form), and if not why, with `to_flagd`'s reason code and
//! message. Computed for the flags shown only: their definitions with the
//! environment's segments and bucketing, translated for the hashing scheme
//! of `--flagd-bucketing` (whether or not gRPC is on).

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vexil_engine::Keyed;
use vexil_engine::flagd::to_flagd;
use vexil_engine::model::{Document, FlagDef};
use vexil_store::{Environment, Item, ItemKind};

use super::{etag, item_json};
use crate::state::{AppState, document_of};

/// `flagdInProcess` of each flag in `flags`, in order; `None` for a
/// definition that does not parse (not stored by this server). `items` and
/// `env` are the environment the flags belong to, read when this server
/// has not installed it.
pub(super) fn availability<I: std::borrow::Borrow<Item>>(
    st: &AppState,
    env: &Environment,
    items: &[I],
    flags: &[&Item],
) -> Vec<Option<Value>> {
    // The installed document has the segments parsed already.
    let installed = st.plane.snapshot(env.id).map(|s| s.doc.clone());
    let (segments, bucketing) = match &installed {
        Some(doc) => (doc.segments.clone(), doc.bucketing),
        None => match document_of(items.iter(), env.bucketing) {
            Ok(doc) => (doc.segments, doc.bucketing),
            Err(_) => return vec![None; flags.len()],
        },
    };
    let mut parsed = Vec::with_capacity(flags.len());
    for item in flags {
        if let Ok(def) = item.definition.parse::<FlagDef>() {
            parsed.push((item.key.clone(), def));
        }
    }
    // Flag keys are unique in an environment; `from_pairs` keeps them all.
    let doc = Document {
        flags: Keyed::from_pairs(parsed),
        segments,
        bucketing,
        ..Document::default()
    };
    let translation = to_flagd(&doc, st.flagd_bucketing);
    flags
        .iter()
        .map(|item| {
            doc.flags.get(&item.key)?;
            Some(
                match translation.left_out.iter().find(|l| l.flag == item.key) {
                    Some(l) => json!({
                        "available": false,
                        "reason": l.reason.code(),
                        "message": l.reason.to_string(),
                    }),
                    None => json!({"available": true, "reason": null, "message": null}),
                },
            )
        })
        .collect()
}

/// An item's representation; a flag's with its `flagdInProcess`.
pub(super) fn item_view<I: std::borrow::Borrow<Item>>(
    st: &AppState,
    env: &Environment,
    items: &[I],
    item: &Item,
) -> Value {
    let mut view = item_json(item);
    if item.kind == ItemKind::Flag
        && let Some(Some(flagd)) = availability(st, env, items, &[item]).pop()
    {
        view["flagdInProcess"] = flagd;
    }
    view
}

/// An item with its ETag, as [`item_view`] shows it.
pub(super) fn item_view_response<I: std::borrow::Borrow<Item>>(
    st: &AppState,
    env: &Environment,
    items: &[I],
    status: StatusCode,
    item: &Item,
) -> Response {
    (
        status,
        [(header::ETAG, etag(item.version))],
        Json(item_view(st, env, items, item)),
    )
        .into_response()
}
