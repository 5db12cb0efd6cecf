//! Items (what the store holds: definitions as JSON) and the typed
//! document the engine compiles, and how a change moves both. The
//! environment's bucketing setting is the document's `bucketing`; a
//! setting mutation changes the document, never the items.

use std::sync::Arc;

use vexil_engine::Keyed;
use vexil_engine::model::{Bucketing, Document, FlagDef, SegmentDef};
use vexil_store::{ErrorKind, Item, ItemKind, Mutation, StoreError};

/// A stored definition that does not parse: corruption, or a newer
/// server's format.
fn corrupt(key: &str, e: serde_json::Error) -> StoreError {
    StoreError {
        kind: ErrorKind::Internal,
        message: format!("stored definition of `{key}` does not parse"),
        source: Some(Box::new(e)),
    }
}

/// Puts a document's entries in key order (byte order): the same
/// document whatever order the store or a change produced, so evaluation
/// order and the downloaded document do not depend on a database's
/// collation.
fn sorted<T>(pairs: Vec<(String, T)>) -> Keyed<T> {
    let mut pairs = pairs;
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Keyed::from_pairs(pairs)
}

/// The document of an environment's current, non-archived items, with
/// the environment's bucketing.
pub(crate) fn document_of<'a>(
    items: impl Iterator<Item = &'a Item>,
    bucketing: Bucketing,
) -> Result<Document, StoreError> {
    let mut flags = Vec::new();
    let mut segments = Vec::new();
    for item in items.filter(|i| !i.archived) {
        let key = item.key.clone();
        match item.kind {
            ItemKind::Flag => flags.push((
                key,
                FlagDef::deserialize_from(&item.definition).map_err(|e| corrupt(&item.key, e))?,
            )),
            ItemKind::Segment => segments.push((
                key,
                SegmentDef::deserialize_from(&item.definition)
                    .map_err(|e| corrupt(&item.key, e))?,
            )),
            // The store never returns one; nothing to serve either way.
            ItemKind::Setting => {}
        }
    }
    Ok(Document {
        flags: sorted(flags),
        segments: sorted(segments),
        bucketing,
        ..Document::default()
    })
}

/// Parsing a definition from borrowed JSON without cloning it first.
trait FromJson: Sized {
    fn deserialize_from(v: &serde_json::Value) -> Result<Self, serde_json::Error>;
}

impl<T: serde::de::DeserializeOwned> FromJson for T {
    fn deserialize_from(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        T::deserialize(v)
    }
}

/// The items after `mutations`, as the store will hold them once it
/// commits them as `version` at `now`.
pub(crate) fn apply_items(
    items: &[Item],
    mutations: &[Mutation],
    version: i64,
    now: i64,
) -> Vec<Item> {
    let mut out: Vec<Item> = items.to_vec();
    for m in mutations.iter().filter(|m| m.kind != ItemKind::Setting) {
        out.retain(|i| !(i.kind == m.kind && i.key == m.key));
        if let Some(def) = &m.after {
            out.push(Item {
                kind: m.kind,
                key: m.key.clone(),
                definition: def.clone(),
                version,
                archived: m.archived,
                updated_at: now,
            });
        }
    }
    out.sort_by(|a, b| {
        (a.kind == ItemKind::Segment, &a.key).cmp(&(b.kind == ItemKind::Segment, &b.key))
    });
    out
}

/// The document after `mutations`: `doc` with only the changed items
/// parsed again (a mutation's definition is the whole new definition).
pub(crate) fn apply_document(
    doc: &Document,
    mutations: &[Mutation],
) -> Result<Document, StoreError> {
    let mut flags = doc.flags.clone().into_pairs();
    let mut segments = doc.segments.clone().into_pairs();
    let mut bucketing = doc.bucketing;
    for m in mutations {
        match m.kind {
            ItemKind::Flag => flags.retain(|(k, _)| *k != m.key),
            ItemKind::Segment => segments.retain(|(k, _)| *k != m.key),
            ItemKind::Setting => {
                bucketing = setting(m)?;
                continue;
            }
        }
        let Some(def) = m.after.as_ref().filter(|_| !m.archived) else {
            continue;
        };
        match m.kind {
            ItemKind::Flag => flags.push((
                m.key.clone(),
                FlagDef::deserialize_from(def).map_err(|e| corrupt(&m.key, e))?,
            )),
            ItemKind::Segment => segments.push((
                m.key.clone(),
                SegmentDef::deserialize_from(def).map_err(|e| corrupt(&m.key, e))?,
            )),
            ItemKind::Setting => {}
        }
    }
    Ok(Document {
        flags: sorted(flags),
        segments: sorted(segments),
        bucketing,
        ..Document::default()
    })
}

/// The bucketing a setting mutation sets (the store refuses others too).
fn setting(m: &Mutation) -> Result<Bucketing, StoreError> {
    m.after
        .as_ref()
        .and_then(|v| v.as_str())
        .and_then(vexil_store::parse_bucketing)
        .filter(|_| m.key == vexil_store::BUCKETING_SETTING)
        .ok_or_else(|| StoreError {
            kind: ErrorKind::Invalid,
            message: format!("unknown environment setting `{}`", m.key),
            source: None,
        })
}

/// Both at once, for the write path.
pub(crate) fn apply(
    items: &[Item],
    doc: &Document,
    mutations: &[Mutation],
    version: i64,
    now: i64,
) -> Result<(Arc<Vec<Item>>, Document), StoreError> {
    Ok((
        Arc::new(apply_items(items, mutations, version, now)),
        apply_document(doc, mutations)?,
    ))
}

#[cfg(test)]
mod tests;
