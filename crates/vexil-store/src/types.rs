//! The records the store keeps.

use serde::{Deserialize, Serialize};
use vexil_engine::model::Bucketing;

use crate::Definition;

/// A project: a set of environments sharing flag keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Store id.
    pub id: i64,
    /// URL-safe key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// An environment: one flag document with its own version sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Store id.
    pub id: i64,
    /// Owning project's id.
    pub project_id: i64,
    /// Owning project's key.
    pub project_key: String,
    /// URL-safe key, unique in the project.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Version of the last accepted change (0 for none).
    pub version: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// How its rollouts hash (the document's `bucketing`): changed by a
    /// commit with an [`ItemKind::Setting`] mutation keyed
    /// [`BUCKETING_SETTING`]; a flag file's is the file's own field.
    #[serde(default)]
    pub bucketing: Bucketing,
}

/// The key of the environment's bucketing setting in mutations and the
/// change log.
pub const BUCKETING_SETTING: &str = "bucketing";

/// The stored name of a bucketing scheme (as documents name it).
pub fn bucketing_name(b: Bucketing) -> &'static str {
    match b {
        Bucketing::Concat => "concat",
        Bucketing::Cbor => "cbor",
    }
}

/// Parses a stored bucketing name.
pub fn parse_bucketing(s: &str) -> Option<Bucketing> {
    match s {
        "concat" => Some(Bucketing::Concat),
        "cbor" => Some(Bucketing::Cbor),
        _ => None,
    }
}

/// Flags and segments are stored alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A flag definition.
    Flag,
    /// A segment definition.
    Segment,
    /// A setting of the environment itself (only [`BUCKETING_SETTING`]
    /// so far). Never an [`Item`]: it appears only in mutations (whose
    /// `after` is the new value as a JSON string) and in the change log.
    Setting,
}

impl ItemKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ItemKind::Flag => "flag",
            ItemKind::Segment => "segment",
            ItemKind::Setting => "setting",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "flag" => Some(ItemKind::Flag),
            "segment" => Some(ItemKind::Segment),
            "setting" => Some(ItemKind::Setting),
            _ => None,
        }
    }
}

/// A stored flag or segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Flag or segment.
    pub kind: ItemKind,
    /// Its key.
    pub key: String,
    /// The engine model as JSON (a `FlagDef` or `SegmentDef`), shared
    /// by every copy.
    pub definition: Definition,
    /// Environment version of its last change: its ETag.
    pub version: i64,
    /// Archived items are kept but not served.
    pub archived: bool,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// An environment's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvState {
    /// The environment, with its current version.
    pub env: Environment,
    /// Flags and segments, by kind then key.
    pub items: Vec<Item>,
}

/// What a change did to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    pub(crate) fn as_str(self) -> &'static str {
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

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => Action::Create,
            "update" => Action::Update,
            "toggle" => Action::Toggle,
            "archive" => Action::Archive,
            "restore" => Action::Restore,
            "delete" => Action::Delete,
            "copy" => Action::Copy,
            "import" => Action::Import,
            _ => return None,
        })
    }
}

/// One item's part of a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Flag or segment.
    pub kind: ItemKind,
    /// Its key.
    pub key: String,
    /// What happened.
    pub action: Action,
    /// The definition before (for the audit log), if it existed.
    pub before: Option<Definition>,
    /// The definition after; `None` deletes.
    pub after: Option<Definition>,
    /// Whether it is archived after the change.
    pub archived: bool,
}

/// One change log (and audit log) entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Environment version this change produced.
    pub version: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// Who: the API key name (or `system`, `file`).
    pub actor: String,
    /// Flag or segment.
    pub kind: ItemKind,
    /// Its key.
    pub key: String,
    /// What happened.
    pub action: Action,
    /// Definition before.
    pub before: Option<Definition>,
    /// Definition after.
    pub after: Option<Definition>,
}

/// Which change log entries to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeFilter {
    /// Only changes to this item.
    pub item: Option<(ItemKind, String)>,
    /// Only changes with a version greater than this.
    pub after_version: i64,
    /// At most this many (the store caps it).
    pub limit: i64,
}

/// Most change log entries one read returns, on every backend.
pub(crate) const MAX_CHANGES: usize = 1000;

/// Refuses text that not every backend can store: PostgreSQL rejects NUL
/// characters in text, SQLite would keep them. Every backend checks with
/// this, so all refuse alike.
pub(crate) fn storable(what: &str, text: &str) -> crate::Result<()> {
    if text.contains('\0') {
        return Err(crate::StoreError::new(
            crate::ErrorKind::Invalid,
            format!("{what} contains a NUL character"),
        ));
    }
    Ok(())
}

/// The text of a commit that must be storable: its actor and item keys;
/// and its settings, which must be known ones with valid values.
pub(crate) fn storable_commit(actor: &str, mutations: &[Mutation]) -> crate::Result<()> {
    storable("actor", actor)?;
    for m in mutations {
        storable("item key", &m.key)?;
        setting_of(m)?;
    }
    Ok(())
}

/// The bucketing a mutation sets: `None` for a flag or segment; an
/// [`crate::ErrorKind::Invalid`] error for an unknown setting or value.
pub(crate) fn setting_of(m: &Mutation) -> crate::Result<Option<Bucketing>> {
    if m.kind != ItemKind::Setting {
        return Ok(None);
    }
    let value: Option<String> = m.after.as_ref().and_then(|d| d.parse().ok());
    match value.as_deref().and_then(parse_bucketing) {
        Some(b) if m.key == BUCKETING_SETTING => Ok(Some(b)),
        _ => Err(crate::StoreError::new(
            crate::ErrorKind::Invalid,
            format!(
                "unknown environment setting `{}` or value {}",
                m.key,
                m.after
                    .as_ref()
                    .map_or("null".into(), Definition::to_string)
            ),
        )),
    }
}

impl ChangeFilter {
    /// Whether an entry passes the filter (the limit aside).
    pub fn admits(&self, c: &Change) -> bool {
        c.version > self.after_version
            && self
                .item
                .as_ref()
                .is_none_or(|(kind, key)| c.kind == *kind && c.key == *key)
    }

    /// How many entries to return at most: `limit`, or `cap` when it is
    /// not positive or larger.
    pub fn capped(&self, cap: usize) -> usize {
        if self.limit <= 0 {
            cap
        } else {
            (self.limit as usize).min(cap)
        }
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything, or everything in one project.
    Admin,
    /// Read the rules of one environment (edges, server SDKs).
    Server,
    /// Evaluated values only, for one environment (browsers, mobile).
    Client,
}

impl Scope {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Server => "server",
            Scope::Client => "client",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Scope::Admin),
            "server" => Some(Scope::Server),
            "client" => Some(Scope::Client),
            _ => None,
        }
    }
}

/// A stored API key (never the secret itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Store id.
    pub id: i64,
    /// Name, recorded as the actor of changes made with it.
    pub name: String,
    /// The first characters of the secret, to recognise it in lists.
    pub prefix: String,
    /// What it may do.
    pub scope: Scope,
    /// Restricts an admin key to a project; required for server and
    /// client keys (the environment's project).
    pub project_id: Option<i64>,
    /// The environment of a server or client key.
    pub environment_id: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// A key to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKey {
    /// Name.
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// First characters of the secret.
    pub prefix: String,
    /// Scope.
    pub scope: Scope,
    /// Project restriction.
    pub project_id: Option<i64>,
    /// Environment of server and client keys.
    pub environment_id: Option<i64>,
    /// Unix milliseconds.
    pub now: i64,
}
