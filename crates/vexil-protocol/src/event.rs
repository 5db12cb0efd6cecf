//! What a change stream carries: the whole environment (`snapshot`), what
//! one environment version changed (`change`), and, on the OFREP event
//! stream of web clients, the `refetchEvaluation` message.
//!
//! Encoding borrows ([`ChangedItem`], written by [`change_frame`]);
//! decoding owns ([`ChangeEvent`], read by [`Event::from_frame`]).

use std::io::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vexil_engine::{Document, Format, Source};

use crate::Error;
use crate::sse::Frame;

#[cfg(test)]
mod tests;

/// Flags and segments are changed alike. The serde spellings (`flag`,
/// `segment`) are the wire spellings, the same as the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A flag definition.
    Flag,
    /// A segment definition.
    Segment,
}

impl ItemKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Flag => "flag",
            ItemKind::Segment => "segment",
        }
    }
}

/// What a change did to one item. The serde spellings (`create`,
/// `update`, …) are the wire spellings, the same as the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// Created.
    Create,
    /// Replaced.
    Update,
    /// Turned on or off.
    Toggle,
    /// Archived (kept, not served).
    Archive,
    /// Brought back from the archive.
    Restore,
    /// Deleted for good.
    Delete,
    /// Copied from another environment.
    Copy,
    /// Written by an import.
    Import,
}

impl Action {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Toggle => "toggle",
            Action::Archive => "archive",
            Action::Restore => "restore",
            Action::Delete => "delete",
            Action::Copy => "copy",
            Action::Import => "import",
        }
    }
}

/// One item of a change, borrowed from the store's records for encoding:
/// `{"kind", "key", "action", "definition", "archived"}`. The definition
/// is any JSON the caller holds: a [`Value`], or text kept as JSON (a
/// server's stored definitions), written as it is.
#[derive(Debug, PartialEq, Serialize)]
pub struct ChangedItem<'a, D: ?Sized = Value> {
    /// Flag or segment.
    pub kind: ItemKind,
    /// Its key.
    pub key: &'a str,
    /// What happened to it.
    pub action: Action,
    /// The definition after the change; `null` when deleted.
    pub definition: Option<&'a D>,
    /// Whether it is archived after the change: an archived item is kept
    /// by the store but not served, so followers drop it.
    pub archived: bool,
}

impl<D: ?Sized> Clone for ChangedItem<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: ?Sized> Copy for ChangedItem<'_, D> {}

/// One item of a decoded change (see [`ChangedItem`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Change {
    /// Flag or segment.
    pub kind: ItemKind,
    /// Its key.
    pub key: String,
    /// What happened to it.
    pub action: Action,
    /// The definition after the change; `None` when deleted.
    #[serde(default)]
    pub definition: Option<Value>,
    /// Whether it is archived after the change (then not served).
    #[serde(default)]
    pub archived: bool,
}

impl Change {
    /// The item borrowed for encoding again (an edge relaying a change).
    pub fn as_item(&self) -> ChangedItem<'_> {
        ChangedItem {
            kind: self.kind,
            key: &self.key,
            action: self.action,
            definition: self.definition.as_ref(),
            archived: self.archived,
        }
    }

    /// Whether a follower serves this item after the change: it has a
    /// definition and is not archived.
    pub fn is_live(&self) -> bool {
        self.definition.is_some() && !self.archived
    }
}

/// The data of a `change` event, for encoding: `{"version", "changes"}`.
#[derive(Serialize)]
pub(crate) struct ChangeData<'a, D: ?Sized> {
    pub(crate) version: i64,
    pub(crate) changes: &'a [ChangedItem<'a, D>],
}

/// A decoded `change` event: what one environment version changed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChangeEvent {
    /// The environment version this change produced.
    pub version: i64,
    /// Every item it touched.
    pub changes: Vec<Change>,
}

/// A decoded `snapshot` event: the whole environment at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEvent {
    /// The environment version (the event's id).
    pub version: i64,
    /// The native document as JSON text, kept as received: an edge serves
    /// it again as is, and parsing it is left to [`SnapshotEvent::document`].
    pub document: String,
}

impl SnapshotEvent {
    /// Parses the document (a native document in JSON).
    pub fn document(&self) -> Result<Document, Error> {
        let source =
            vexil_engine::parse(&self.document, Format::Native).map_err(Error::InvalidDocument)?;
        match source {
            Source::Native(doc) => Ok(doc),
            // `Format::Native` parses nothing else; converting is the
            // right answer should that ever change.
            flagd => flagd
                .into_native()
                .map_err(|p| Error::InvalidDocument(vexil_engine::LoadError::Invalid(p))),
        }
    }
}

/// The OFREP `refetchEvaluation` message: the environment changed, and web
/// clients evaluate again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefetchEvent {
    /// The environment version as an ETag (`"7"`, quotes included), when
    /// the message carries one.
    pub etag: Option<String>,
}

impl RefetchEvent {
    /// The environment version the ETag names, when it is one.
    pub fn version(&self) -> Option<i64> {
        self.etag
            .as_deref()?
            .strip_prefix('"')?
            .strip_suffix('"')?
            .parse()
            .ok()
    }
}

/// The `type` of the OFREP message that asks clients to evaluate again.
pub const REFETCH_EVALUATION: &str = "refetchEvaluation";

/// The data of an OFREP event stream message: `{"type", "etag"}`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
}

/// Who may read an environment, as an edge learns it from the change
/// stream (`event: keys`): the environment's name, and the SHA-256 (hex)
/// of each of its live server and client keys, never the secrets. Sent
/// after the first snapshot or changes of a stream and again whenever the
/// environment's keys change; it has no id, so it does not move
/// `Last-Event-ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysEvent {
    /// The project's key.
    pub project: String,
    /// The environment's key.
    pub environment: String,
    /// The live keys that may read the environment.
    pub keys: Vec<KeyHash>,
}

/// One key that may read an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHash {
    /// The SHA-256 of the secret, as 64 lowercase hex digits.
    pub hash: String,
    /// `server` (rules and values) or `client` (evaluated values only).
    pub scope: KeyScope,
}

/// What a key may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Rules and evaluated values (edges, server SDKs).
    Server,
    /// Evaluated values only (browsers, mobile apps).
    Client,
}

/// The `keys` event (see [`KeysEvent`]), without an id.
pub fn keys_frame(event: &KeysEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + 90 * event.keys.len());
    out.extend_from_slice(b"event: keys\ndata: ");
    crate::json::write(&mut out, event);
    out.extend_from_slice(b"\n\n");
    out
}

/// What one event of a stream means.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `event: snapshot`: the whole environment.
    Snapshot(SnapshotEvent),
    /// `event: change`: one environment version's changes.
    Change(ChangeEvent),
    /// A `message` whose type is `refetchEvaluation`.
    Refetch(RefetchEvent),
    /// `event: keys`: who may read the environment.
    Keys(KeysEvent),
    /// Any other event, as received: streams may grow new event types,
    /// which older followers skip.
    Other(Frame),
}

impl Event {
    /// Reads a decoded frame. The frame is taken whole so that a
    /// snapshot's (possibly large) document moves instead of being copied.
    pub fn from_frame(frame: Frame) -> Result<Event, Error> {
        match frame.event.as_str() {
            "snapshot" => {
                let version = version_of("snapshot", frame.id.as_deref())?;
                if !crate::json::is_json_object(frame.data.as_bytes()) {
                    return Err(Error::NotADocument);
                }
                Ok(Event::Snapshot(SnapshotEvent {
                    version,
                    document: frame.data,
                }))
            }
            "change" => {
                let id = version_of("change", frame.id.as_deref())?;
                let change: ChangeEvent =
                    serde_json::from_str(&frame.data).map_err(|source| Error::InvalidData {
                        event: "change",
                        source,
                    })?;
                if change.version != id {
                    return Err(Error::VersionMismatch {
                        id,
                        version: change.version,
                    });
                }
                Ok(Event::Change(change))
            }
            "keys" => serde_json::from_str(&frame.data)
                .map(Event::Keys)
                .map_err(|source| Error::InvalidData {
                    event: "keys",
                    source,
                }),
            "message" => {
                let message: Message<'_> =
                    serde_json::from_str(&frame.data).map_err(|source| Error::InvalidData {
                        event: "message",
                        source,
                    })?;
                if message.kind == REFETCH_EVALUATION {
                    Ok(Event::Refetch(RefetchEvent { etag: message.etag }))
                } else {
                    Ok(Event::Other(frame))
                }
            }
            _ => Ok(Event::Other(frame)),
        }
    }
}

/// The version an event's id names.
fn version_of(event: &'static str, id: Option<&str>) -> Result<i64, Error> {
    let id = id.ok_or(Error::MissingId { event })?;
    id.parse().map_err(|_| Error::InvalidId {
        event,
        id: id.to_owned(),
    })
}

/// The `change` event of one environment version: `id: <version>`,
/// `event: change`, data `{"version":<version>,"changes":[<items>]}`.
pub fn change_frame<D: Serialize + ?Sized>(version: i64, items: &[ChangedItem<'_, D>]) -> Vec<u8> {
    // The JSON has no raw line breaks (serde_json escapes them in
    // strings), so it is written straight into the frame.
    let mut out = Vec::with_capacity(64 + 160 * items.len());
    let _ = write!(out, "id: {version}\nevent: change\ndata: ");
    crate::json::write(
        &mut out,
        &ChangeData {
            version,
            changes: items,
        },
    );
    out.extend_from_slice(b"\n\n");
    out
}

/// The `snapshot` event of a whole environment: `id: <version>`,
/// `event: snapshot`, data the native document's JSON.
pub fn snapshot_frame(version: i64, document_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::sse::write_frame(&mut out, Some(version), "snapshot", document_json);
    out
}

/// The OFREP event stream's message after a change: `event: message`, data
/// `{"type":"refetchEvaluation","etag":"\"<version>\""}`, without an id.
pub fn refetch_frame(version: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    out.extend_from_slice(b"event: message\ndata: ");
    crate::json::write(
        &mut out,
        &Message {
            kind: REFETCH_EVALUATION.into(),
            etag: Some(format!("\"{version}\"")),
        },
    );
    out.extend_from_slice(b"\n\n");
    out
}
