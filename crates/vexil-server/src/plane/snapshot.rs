//! `EnvSnapshot`: one environment at one version, as every evaluator
//! holds it: its items (what the store holds), the native document, the
//! compiled snapshot, and the document's JSON for downloads.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use vexil_engine::Snapshot;
use vexil_engine::model::Document;
use vexil_store::{Environment, Item};

use crate::metrics::EvalCounters;

/// An environment's items, each shared with the versions before and
/// after that did not change it.
pub(crate) type Items = Arc<Vec<Arc<Item>>>;

/// One environment's compiled flags at one version. Immutable: a new
/// version is a new `EnvSnapshot`, swapped in whole.
#[derive(Debug)]
pub(crate) struct EnvSnapshot {
    pub(crate) env: Environment,
    /// Every item, archived ones included, in `item_order`: what the
    /// write path plans against without reading the store. Empty on an
    /// edge, which has no store to write to.
    pub(crate) items: Items,
    /// The live (not archived) items as a typed document: the write path
    /// starts from it and parses only the items a change touches.
    pub(crate) doc: Arc<Document>,
    /// Shared with the follower that compiled it, on an edge.
    pub(crate) snapshot: Arc<Snapshot>,
    /// The document as JSON, serialised once per version, when an edge or
    /// SDK first downloads it (a write does not pay for it: with many
    /// flags it costs more than the rest of the write).
    document: OnceLock<Bytes>,
    /// The document as the change stream's `snapshot` event (built on
    /// first use): every subscriber that starts with a snapshot shares it.
    snapshot_frame: OnceLock<Bytes>,
    /// Each flag's fixed JSON for bulk answers (built on first use).
    prepared: OnceLock<vexil_protocol::bulk::Prepared>,
    /// When this version was installed here.
    pub(crate) installed_at: tokio::time::Instant,
    /// The environment's evaluation counters (shared by all its versions).
    pub(crate) evaluations: Arc<EvalCounters>,
}

impl EnvSnapshot {
    /// An environment at a version; `evaluations` are the environment's
    /// counters (`Plane::eval_counters`).
    pub(crate) fn new(
        env: Environment,
        items: Items,
        doc: Arc<Document>,
        snapshot: Snapshot,
        evaluations: Arc<EvalCounters>,
    ) -> Self {
        EnvSnapshot {
            env,
            items,
            doc,
            snapshot: Arc::new(snapshot),
            document: OnceLock::new(),
            snapshot_frame: OnceLock::new(),
            prepared: OnceLock::new(),
            installed_at: tokio::time::Instant::now(),
            evaluations,
        }
    }

    /// An environment at a version whose snapshot and document JSON exist
    /// already (an edge's follower made them).
    pub(crate) fn compiled(
        env: Environment,
        items: Items,
        doc: Arc<Document>,
        snapshot: Arc<Snapshot>,
        document: Bytes,
        evaluations: Arc<EvalCounters>,
    ) -> Self {
        EnvSnapshot {
            env,
            items,
            doc,
            snapshot,
            document: OnceLock::from(document),
            snapshot_frame: OnceLock::new(),
            prepared: OnceLock::new(),
            installed_at: tokio::time::Instant::now(),
            evaluations,
        }
    }

    /// The document as JSON (serialised on first use).
    pub(crate) fn document(&self) -> &Bytes {
        self.document
            .get_or_init(|| serde_json::to_vec(&*self.doc).unwrap_or_default().into())
    }

    /// The document as an SSE `snapshot` event of this version.
    pub(crate) fn snapshot_frame(&self) -> &Bytes {
        self.snapshot_frame.get_or_init(|| {
            vexil_protocol::event::snapshot_frame(self.env.version, self.document()).into()
        })
    }

    /// Each flag's fixed JSON, from which bulk answers are written.
    pub(crate) fn prepared(&self) -> &vexil_protocol::bulk::Prepared {
        self.prepared
            .get_or_init(|| vexil_protocol::bulk::Prepared::new(&self.snapshot))
    }

    /// `project/environment`, as metrics and logs name it.
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.env.project_key, self.env.key)
    }
}
