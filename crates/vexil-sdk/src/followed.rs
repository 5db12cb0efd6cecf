//! `Followed`: one environment at one version, as every evaluator outside
//! the server holds it (the typed document, its JSON, the compiled
//! snapshot, the latest keys event), and how it is made: from a snapshot's
//! JSON, from a cached `Seed`, from a bootstrap file, or by applying a
//! change event to the version before.
//!
//! Everything here is synchronous and may take a while on large documents
//! (parsing and compiling): async callers run it on a blocking thread.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;
use vexil_engine::model::{FlagDef, SegmentDef};
use vexil_engine::{Document, Format, Keyed, Snapshot, Source};
use vexil_protocol::event::{ChangeEvent, ItemKind, KeysEvent};

use crate::error::{Error, ErrorKind};

#[cfg(test)]
mod tests;

/// Where a [`Followed`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// The upstream (a snapshot download, a stream's snapshot event, or a
    /// change event applied to the version before).
    Upstream,
    /// A cache file written from an upstream version: its version is
    /// the upstream's, so a follower resumes after it.
    Cache,
    /// A bootstrap file: version 0, not the upstream's, so a follower
    /// never resumes after it (it downloads the whole environment).
    Bootstrap,
}

/// One environment at one version: what a follower serves and publishes.
///
/// Immutable; a new version (or a new keys event) is a new `Followed`,
/// shared as `Arc<Followed>` and swapped in whole.
#[derive(Debug)]
pub struct Followed {
    version: i64,
    origin: Origin,
    /// The native document (live items only), entries in key order as
    /// the server keeps them.
    document: Arc<Document>,
    /// The document as JSON: the bytes the upstream sent for a snapshot,
    /// or the typed document serialised once after a change (which is
    /// what the server serves for that version) when first asked for — a
    /// client without a cache never needs it.
    json: OnceLock<Bytes>,
    snapshot: Arc<Snapshot>,
    keys: Option<Arc<KeysEvent>>,
    /// Whether some flag's targeting reads `$flagd.timestamp` (or could):
    /// only then does the client stamp contexts with the time.
    uses_time: bool,
}

/// What a cache file holds, and what a follower can start from: a version
/// of the upstream's, its document's JSON, and the latest keys event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The upstream's environment version.
    pub version: i64,
    /// The native document as JSON.
    pub document: Bytes,
    /// The latest keys event seen with it, if any.
    pub keys: Option<KeysEvent>,
}

impl Followed {
    /// The environment version (0 for a bootstrap file).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Where this state came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The typed native document.
    pub fn document(&self) -> &Arc<Document> {
        &self.document
    }

    /// The document as JSON (a native document), serialised on the first
    /// call for a version made by applying a change (that call may take a
    /// while on a large document: async callers make it on a blocking
    /// thread, or let the follower make it, see
    /// [`FollowerConfig::keep_json`](crate::FollowerConfig::keep_json)).
    pub fn json(&self) -> Result<&Bytes, Error> {
        if let Some(json) = self.json.get() {
            return Ok(json);
        }
        let json = to_json(&self.document, self.version)?;
        Ok(self.json.get_or_init(|| json))
    }

    /// The compiled snapshot flags are evaluated on.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The latest keys event (who may read the environment), when the
    /// upstream sent one.
    pub fn keys(&self) -> Option<&Arc<KeysEvent>> {
        self.keys.as_ref()
    }

    /// Whether some flag's targeting may read `$flagd.timestamp`.
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }

    /// Whether a follower may resume after this version (`Last-Event-ID`,
    /// `If-None-Match`): it is one of the upstream's versions.
    pub fn is_resumable(&self) -> bool {
        self.origin != Origin::Bootstrap
    }

    /// Parses and compiles a native document's JSON. Compiling is strict:
    /// a document with any problem is refused (the server never stores
    /// one; a flag file served with broken flags is refused whole).
    pub fn from_json(
        version: i64,
        origin: Origin,
        json: Bytes,
        keys: Option<Arc<KeysEvent>>,
    ) -> Result<Followed, Error> {
        let text = std::str::from_utf8(&json).map_err(|e| {
            Error::with_source(
                ErrorKind::Invalid,
                format!("document of version {version} is not UTF-8"),
                e,
            )
        })?;
        let document = match vexil_engine::parse(text, Format::Native) {
            Ok(Source::Native(doc)) => doc,
            Ok(flagd) => flagd.into_native().map_err(|p| invalid(version, p))?,
            Err(e) => {
                return Err(Error::with_source(
                    ErrorKind::Invalid,
                    format!("document of version {version} does not parse: {e}"),
                    e,
                ));
            }
        };
        Followed::compile(version, origin, document, Some(json), keys)
    }

    /// Compiles a cached state (origin [`Origin::Cache`]).
    pub fn from_seed(seed: Seed) -> Result<Followed, Error> {
        Followed::from_json(
            seed.version,
            Origin::Cache,
            seed.document,
            seed.keys.map(Arc::new),
        )
    }

    /// A bootstrap document: native or flagd, JSON or YAML (detected),
    /// version 0, origin [`Origin::Bootstrap`]. It is compiled the way the
    /// engine loads files (`vexil_engine::load`): flagd targeting that does
    /// not parse makes only that flag answer `PARSE_ERROR`, as flagd does.
    pub fn bootstrap(text: &str) -> Result<Followed, Error> {
        let source = vexil_engine::parse(text, Format::Auto).map_err(|e| {
            Error::with_source(
                ErrorKind::Invalid,
                format!("bootstrap document does not parse: {e}"),
                e,
            )
        })?;
        let compiled = source.compile().map_err(|p| {
            Error::with_source(
                ErrorKind::Invalid,
                format!("bootstrap document is invalid: {p}"),
                p,
            )
        })?;
        let document = source.into_native_serving();
        Ok(Followed {
            version: 0,
            origin: Origin::Bootstrap,
            uses_time: uses_time(&document),
            document: Arc::new(document),
            json: OnceLock::new(),
            snapshot: Arc::new(compiled.snapshot),
            keys: None,
        })
    }

    /// Reads and compiles a bootstrap file (see [`Followed::bootstrap`]).
    pub fn bootstrap_file(path: &Path) -> Result<Followed, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot read bootstrap file {}", path.display()),
                e,
            )
        })?;
        Followed::bootstrap(&text).map_err(|e| {
            Error::with_source(
                e.kind(),
                format!(
                    "bootstrap file {} is not usable: {}",
                    path.display(),
                    e.message()
                ),
                e,
            )
        })
    }

    /// This state as a [`Seed`], for a cache file (serialises the
    /// document when nothing did yet, see [`Followed::json`]).
    pub fn seed(&self) -> Result<Seed, Error> {
        Ok(Seed {
            version: self.version,
            document: self.json()?.clone(),
            keys: self.keys.as_deref().cloned(),
        })
    }

    /// The same version with another keys event.
    pub(crate) fn with_keys(&self, keys: Arc<KeysEvent>) -> Followed {
        Followed {
            version: self.version,
            origin: self.origin,
            document: self.document.clone(),
            json: self.json.clone(),
            snapshot: self.snapshot.clone(),
            keys: Some(keys),
            uses_time: self.uses_time,
        }
    }

    /// The next version: `change` applied to this document (a definition
    /// replaces the item, `null` deletes it, `archived: true` takes it out
    /// of what is served), then the whole document compiled. The caller
    /// checks that `change.version` continues this one.
    pub(crate) fn apply(&self, change: &ChangeEvent) -> Result<Followed, Error> {
        let document = apply_change(&self.document, change)?;
        // Flags the change did not touch keep their compiled form.
        let compiled = vexil_engine::compile_reusing(
            &document,
            &self.document,
            &self.snapshot,
            &std::sync::atomic::AtomicBool::new(false),
        );
        Followed::compiled(
            change.version,
            Origin::Upstream,
            document,
            compiled,
            None,
            self.keys.clone(),
        )
    }

    fn compile(
        version: i64,
        origin: Origin,
        document: Document,
        json: Option<Bytes>,
        keys: Option<Arc<KeysEvent>>,
    ) -> Result<Followed, Error> {
        let compiled = vexil_engine::compile(&document);
        Followed::compiled(version, origin, document, compiled, json, keys)
    }

    fn compiled(
        version: i64,
        origin: Origin,
        document: Document,
        compiled: Result<vexil_engine::Compiled, vexil_engine::Problems>,
        json: Option<Bytes>,
        keys: Option<Arc<KeysEvent>>,
    ) -> Result<Followed, Error> {
        let compiled = compiled.map_err(|p| invalid(version, p))?;
        let json = match json {
            Some(json) => OnceLock::from(json),
            None => OnceLock::new(),
        };
        Ok(Followed {
            version,
            origin,
            uses_time: uses_time(&document),
            document: Arc::new(document),
            json,
            snapshot: Arc::new(compiled.snapshot),
            keys,
        })
    }
}

fn invalid(version: i64, problems: vexil_engine::Problems) -> Error {
    Error::with_source(
        ErrorKind::Invalid,
        format!("version {version} does not compile: {problems}"),
        problems,
    )
}

fn to_json(document: &Document, version: i64) -> Result<Bytes, Error> {
    serde_json::to_vec(document).map(Bytes::from).map_err(|e| {
        Error::with_source(
            ErrorKind::Invalid,
            format!("document of version {version} cannot be written as JSON"),
            e,
        )
    })
}

/// `document` after `change`, as the server computes it
/// (`control::document::apply_document`): each touched item is taken out,
/// and put back parsed from its new definition unless deleted or
/// archived; entries in key order (byte order), as the server keeps them,
/// so that the JSON is the server's byte for byte.
pub(crate) fn apply_change(document: &Document, change: &ChangeEvent) -> Result<Document, Error> {
    // Untouched definitions are shared with `document`.
    let mut flags = document.flags.clone().into_shared();
    let mut segments = document.segments.clone().into_shared();
    for item in &change.changes {
        match item.kind {
            ItemKind::Flag => flags.retain(|(k, _)| *k != item.key),
            ItemKind::Segment => segments.retain(|(k, _)| *k != item.key),
        }
        let Some(definition) = item.definition.as_ref().filter(|_| !item.archived) else {
            continue;
        };
        let bad = |e: serde_json::Error| {
            Error::with_source(
                ErrorKind::Invalid,
                format!(
                    "version {}: {} `{}` does not parse: {e}",
                    change.version,
                    item.kind.as_str(),
                    item.key
                ),
                e,
            )
        };
        match item.kind {
            ItemKind::Flag => flags.push((
                item.key.clone(),
                Arc::new(<FlagDef as serde::Deserialize>::deserialize(definition).map_err(bad)?),
            )),
            ItemKind::Segment => segments.push((
                item.key.clone(),
                Arc::new(<SegmentDef as serde::Deserialize>::deserialize(definition).map_err(bad)?),
            )),
        }
    }
    Ok(Document {
        flags: sorted(flags),
        segments: sorted(segments),
        schema: document.schema.clone(),
        bucketing: document.bucketing,
        metadata: document.metadata.clone(),
    })
}

fn sorted<T>(mut pairs: Vec<(String, Arc<T>)>) -> Keyed<T> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Keyed::from_shared(pairs)
}

/// Whether some flag's flagd targeting may read `$flagd.timestamp`: it
/// names it (or the whole `$flagd` object), or builds a `var` path at
/// evaluation time. (`$flagd.flagKey` is compiled into a literal.)
/// Checked once per version so that evaluations of documents without
/// such targeting never copy a context to stamp it.
fn uses_time(document: &Document) -> bool {
    document
        .flags
        .iter()
        .filter_map(|(_, f)| f.targeting.as_ref())
        .any(mentions_flagd)
}

fn mentions_flagd(v: &Value) -> bool {
    match v {
        Value::String(s) => s == "$flagd" || s.starts_with("$flagd.timestamp"),
        Value::Array(items) => items.iter().any(mentions_flagd),
        Value::Object(map) => map.iter().any(|(k, v)| {
            let dynamic_var = k == "var"
                && match v {
                    Value::Object(_) => true,
                    Value::Array(a) => a.first().is_some_and(Value::is_object),
                    _ => false,
                };
            dynamic_var || mentions_flagd(v)
        }),
        _ => false,
    }
}
