//! Items (what the store holds: definitions as JSON) and the typed
//! document the engine compiles, and how a change moves both. The
//! environment's bucketing setting is the document's `bucketing`; a
//! setting mutation changes the document, never the items.

use std::sync::Arc;

use vexil_engine::Keyed;
use vexil_engine::model::{Bucketing, Document, FlagDef, SegmentDef};
use vexil_store::{Definition, ErrorKind, Item, ItemKind, Mutation, StoreError};

use crate::plane::Items;

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
pub(crate) fn document_of<'a, I: std::borrow::Borrow<Item> + 'a>(
    items: impl Iterator<Item = &'a I>,
    bucketing: Bucketing,
) -> Result<Document, StoreError> {
    let mut flags = Vec::new();
    let mut segments = Vec::new();
    for item in items.map(|i| i.borrow()).filter(|i| !i.archived) {
        let key = item.key.clone();
        match item.kind {
            ItemKind::Flag => flags.push((
                key,
                item.definition
                    .parse::<FlagDef>()
                    .map_err(|e| corrupt(&item.key, e))?,
            )),
            ItemKind::Segment => segments.push((
                key,
                item.definition
                    .parse::<SegmentDef>()
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

/// The last mutation of each item `mutations` touch (a later one replaces
/// an earlier one's result), in item order; settings are not items.
fn last_per_item(mutations: &[Mutation]) -> Vec<&Mutation> {
    let mut last: Vec<&Mutation> = Vec::with_capacity(mutations.len());
    // Stable: of two mutations of one item, the later stays after.
    let mut sorted: Vec<&Mutation> = mutations
        .iter()
        .filter(|m| m.kind != ItemKind::Setting)
        .collect();
    sorted.sort_by(|a, b| item_order(a.kind, &a.key).cmp(&item_order(b.kind, &b.key)));
    for m in sorted {
        match last.last_mut() {
            Some(prev) if prev.kind == m.kind && prev.key == m.key => *prev = m,
            _ => last.push(m),
        }
    }
    last
}

/// The order items are kept in: flags, then segments, each by key (byte
/// order, whatever the database's collation).
pub(crate) fn item_order(kind: ItemKind, key: &str) -> (bool, &str) {
    (kind == ItemKind::Segment, key)
}

/// `base` (sorted) with `edits` (sorted the same way, one per key)
/// applied: an edit's value replaces the entry `order` finds equal to its
/// key or is inserted in order; `None` removes it. Untouched entries are
/// cloned (pointers, here) in runs: the cost is one pass of copying plus a
/// binary search per edit.
fn edit_sorted<T: Clone, K>(
    base: &[T],
    order: impl Fn(&T, &K) -> std::cmp::Ordering,
    edits: impl IntoIterator<Item = (K, Option<T>)>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(base.len() + 1);
    let mut rest = base;
    for (k, value) in edits {
        let at = rest.partition_point(|t| order(t, &k).is_lt());
        out.extend_from_slice(&rest[..at]);
        rest = &rest[at..];
        if rest.first().is_some_and(|t| order(t, &k).is_eq()) {
            rest = &rest[1..];
        }
        out.extend(value);
    }
    out.extend_from_slice(rest);
    out
}

/// The items after `mutations`, as the store will hold them once it
/// commits them as `version` at `now`. Untouched items are shared with
/// `items`, which must be in [`item_order`].
pub(crate) fn apply_items(
    items: &[Arc<Item>],
    mutations: &[Mutation],
    version: i64,
    now: i64,
) -> Vec<Arc<Item>> {
    let edits = last_per_item(mutations).into_iter().map(|m| {
        let item = m.after.as_ref().map(|def| {
            Arc::new(Item {
                kind: m.kind,
                key: m.key.clone(),
                definition: def.clone(),
                version,
                archived: m.archived,
                updated_at: now,
            })
        });
        (item_order(m.kind, &m.key), item)
    });
    edit_sorted(items, |i, k| item_order(i.kind, &i.key).cmp(k), edits)
}

/// Definitions parsed already, each with the text it was written as
/// (an import's document): a mutation whose definition is that very text
/// (the same `Arc`, see [`Definition::same`]) takes the parsed form
/// instead of parsing the text again. Each list is in key order.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) flags: Vec<(String, Definition, Arc<FlagDef>)>,
    pub(crate) segments: Vec<(String, Definition, Arc<SegmentDef>)>,
}

impl Parsed {
    /// Puts the lists in key order.
    pub(crate) fn sorted(mut self) -> Self {
        self.flags.sort_by(|a, b| a.0.cmp(&b.0));
        self.segments.sort_by(|a, b| a.0.cmp(&b.0));
        self
    }
}

/// The parsed form of `def`, the definition of `key`: from `known` (in
/// key order) when it is there for this very text, else parsed.
fn parse_known<T: serde::de::DeserializeOwned>(
    known: &[(String, Definition, Arc<T>)],
    key: &str,
    def: &Definition,
) -> Result<Arc<T>, StoreError> {
    if let Ok(at) = known.binary_search_by(|(k, _, _)| k.as_str().cmp(key)) {
        let (_, text, parsed) = &known[at];
        if text.same(def) {
            return Ok(parsed.clone());
        }
    }
    Ok(Arc::new(def.parse::<T>().map_err(|e| corrupt(key, e))?))
}

/// `map` (in key order) with the definitions of `kind` that `touched`
/// sets or removes: untouched entries shared, changed ones parsed (or
/// taken from `known`).
fn apply_map<T: serde::de::DeserializeOwned>(
    map: &Keyed<T>,
    kind: ItemKind,
    touched: &[&Mutation],
    known: &[(String, Definition, Arc<T>)],
) -> Result<Keyed<T>, StoreError> {
    let mut edits = Vec::new();
    for m in touched.iter().filter(|m| m.kind == kind) {
        let value = match m.after.as_ref().filter(|_| !m.archived) {
            Some(def) => Some(parse_known(known, &m.key, def)?),
            None => None,
        };
        edits.push((m.key.as_str(), value.map(|v| (m.key.clone(), v))));
    }
    Ok(Keyed::from_shared(edit_sorted(
        map.shared(),
        |(k, _), edit: &&str| k.as_str().cmp(edit),
        edits,
    )))
}

/// The document after `mutations`: `doc` with only the changed items
/// parsed again (a mutation's definition is the whole new definition;
/// those in `parsed` are not parsed) and the others shared.
pub(crate) fn apply_document(
    doc: &Document,
    mutations: &[Mutation],
    parsed: &Parsed,
) -> Result<Document, StoreError> {
    let mut bucketing = doc.bucketing;
    for m in mutations.iter().filter(|m| m.kind == ItemKind::Setting) {
        bucketing = setting(m)?;
    }
    let touched = last_per_item(mutations);
    Ok(Document {
        flags: apply_map(&doc.flags, ItemKind::Flag, &touched, &parsed.flags)?,
        segments: apply_map(&doc.segments, ItemKind::Segment, &touched, &parsed.segments)?,
        bucketing,
        ..Document::default()
    })
}

/// The bucketing a setting mutation sets (the store refuses others too).
fn setting(m: &Mutation) -> Result<Bucketing, StoreError> {
    m.after
        .as_ref()
        .and_then(|v| v.parse::<String>().ok())
        .and_then(|v| vexil_store::parse_bucketing(&v))
        .filter(|_| m.key == vexil_store::BUCKETING_SETTING)
        .ok_or_else(|| StoreError {
            kind: ErrorKind::Invalid,
            message: format!("unknown environment setting `{}`", m.key),
            source: None,
        })
}

/// Both at once, for the write path.
pub(crate) fn apply(
    items: &[Arc<Item>],
    doc: &Document,
    mutations: &[Mutation],
    parsed: &Parsed,
    version: i64,
    now: i64,
) -> Result<(Items, Document), StoreError> {
    Ok((
        Arc::new(apply_items(items, mutations, version, now)),
        apply_document(doc, mutations, parsed)?,
    ))
}

#[cfg(test)]
mod tests;
