//! The control plane: the write path (plan a change on the environment's
//! current state, validate the whole result, commit it with the version it
//! was based on, install and announce it) and the sync with the store
//! (`sync.rs`: loading environments and keys, and picking up changes other
//! servers or the watched flag file made).
//!
//! The control plane is the server's snapshot source: it installs into the
//! [`Plane`] and publishes change frames there; the plane never calls back.

pub(crate) mod document;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use vexil_engine::model::Document;
use vexil_engine::{Problem, Snapshot};
use vexil_protocol::event::ChangedItem;
use vexil_store::{
    Definition, Environment, ErrorKind, Item, ItemKind, Mutation, Store, StoreError,
};

use self::document::Parsed;
use crate::clock::Clock;
use crate::plane::{EnvSnapshot, Items, Plane};

/// How many times a write is re-validated and retried when another server
/// wrote to the same environment first.
const MAX_WRITE_ATTEMPTS: usize = 16;

/// What a change is planned on: the environment's items, as the store
/// holds them at the version the change is based on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvView<'a> {
    pub(crate) items: &'a [Arc<Item>],
    /// The environment's bucketing setting.
    pub(crate) bucketing: vexil_engine::model::Bucketing,
}

/// Why a write did not happen. `E` is the plan's own refusal (e.g. a
/// failed precondition), passed through unchanged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError<E> {
    /// The plan refused the change.
    #[error("the change was refused")]
    Refused(E),
    /// The environment would not compile: every problem, with its place.
    #[error("the change would leave {} problems in the environment", .0.len())]
    Invalid(Vec<Problem>),
    /// Compiling took longer than the configured bound; nothing changed.
    #[error("compiling the environment took longer than {0:?}")]
    CompileTimeout(Duration),
    /// Other servers kept writing first, attempt after attempt.
    #[error("too many concurrent writes to this environment")]
    Busy,
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The compilation task failed.
    #[error("the compilation task failed")]
    Internal,
}

/// What a write did.
pub(crate) struct Written {
    /// The environment's items after the write.
    pub(crate) items: Items,
    /// What was committed (empty when there was nothing to do).
    pub(crate) mutations: Vec<Mutation>,
    /// The environment version after the write.
    pub(crate) version: i64,
}

/// The write path and the sync with the store.
pub(crate) struct Control {
    pub(crate) store: Arc<dyn Store>,
    plane: Arc<Plane>,
    clock: Arc<dyn Clock>,
    /// One write queue per environment. Writes to an environment are
    /// totally ordered anyway (each needs the previous version); queueing
    /// them here instead of letting them race on the version check keeps
    /// concurrent writers on this server from starving each other. This is
    /// the one lock held across `.await`, and only by writers.
    write_queues: std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Bound on compiling an environment for one write.
    compile_timeout: Duration,
}

impl Control {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        plane: Arc<Plane>,
        clock: Arc<dyn Clock>,
        compile_timeout: Duration,
    ) -> Self {
        Control {
            store,
            plane,
            clock,
            write_queues: std::sync::Mutex::new(HashMap::new()),
            compile_timeout,
        }
    }

    /// Milliseconds since the Unix epoch, from the injected clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.unix_ms()
    }

    /// The environment's current state: the installed snapshot, or the
    /// store's when none is installed yet.
    async fn current(&self, env_id: i64) -> Result<Arc<EnvSnapshot>, StoreError> {
        if let Some(snap) = self.plane.snapshot(env_id) {
            return Ok(snap);
        }
        self.refresh(env_id).await
    }

    /// Reads the environment from the store and installs it (announcing
    /// what changed meanwhile); the snapshot now installed.
    async fn refresh(&self, env_id: i64) -> Result<Arc<EnvSnapshot>, StoreError> {
        self.reload(env_id).await?;
        self.plane.snapshot(env_id).ok_or_else(|| StoreError {
            kind: ErrorKind::Internal,
            message: "the environment was loaded but is not installed".to_owned(),
            source: None,
        })
    }

    /// Plans and validates a change without committing it (dry runs).
    /// `parsed` has definitions the plan's mutations may carry, parsed
    /// already (see `write`).
    pub(crate) async fn preview<F, E>(
        &self,
        env: &Environment,
        parsed: Arc<Parsed>,
        plan: F,
    ) -> Result<Vec<Mutation>, WriteError<E>>
    where
        F: Fn(&EnvView<'_>) -> Result<Vec<Mutation>, E>,
    {
        let current = self.refresh(env.id).await?;
        let view = EnvView {
            items: &current.items,
            bucketing: current.doc.bucketing,
        };
        let mutations = plan(&view).map_err(WriteError::Refused)?;
        let (mutations, _) = self
            .compile_bounded(
                current.clone(),
                mutations,
                parsed,
                current.env.version + 1,
                self.now_ms(),
            )
            .await?;
        Ok(mutations)
    }

    /// Validates and commits a change to an environment.
    ///
    /// `plan` sees the environment as this server holds it (no store
    /// read) and returns the mutations, or its refusal. The result is
    /// validated as a whole document and committed with the version it
    /// was based on. When another server wrote first (the commit's version
    /// check fails), or the plan refuses what this server holds, the
    /// environment is read from the store once and the change planned and
    /// validated again on it.
    ///
    /// `parsed` has definitions parsed already (an import's document):
    /// the mutations that carry one of those very texts are not parsed
    /// again; any other definition is.
    pub(crate) async fn write<F, E>(
        &self,
        env: &Environment,
        actor: &str,
        parsed: Arc<Parsed>,
        plan: F,
    ) -> Result<Written, WriteError<E>>
    where
        F: Fn(&EnvView<'_>) -> Result<Vec<Mutation>, E>,
    {
        let queue = {
            let mut queues = self.write_queues.lock().unwrap_or_else(|p| p.into_inner());
            queues.entry(env.id).or_default().clone()
        };
        let _turn = queue.lock().await;
        let mut current = self.current(env.id).await?;
        // Whether `current` was read from the store during this write.
        let mut fresh = false;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let view = EnvView {
                items: &current.items,
                bucketing: current.doc.bucketing,
            };
            let mutations = match plan(&view) {
                Ok(m) => m,
                // This server may be behind another one: look again.
                Err(_) if !fresh => {
                    current = self.refresh(env.id).await?;
                    fresh = true;
                    continue;
                }
                Err(e) => return Err(WriteError::Refused(e)),
            };
            if mutations.is_empty() {
                return Ok(Written {
                    items: current.items.clone(),
                    mutations,
                    version: current.env.version,
                });
            }
            let now = self.now_ms();
            let based_on = current.env.version;
            let (mutations, next) = self
                .compile_bounded(
                    current.clone(),
                    mutations,
                    parsed.clone(),
                    based_on + 1,
                    now,
                )
                .await?;
            let Next {
                items,
                doc,
                snapshot,
            } = next;
            match self
                .store
                .commit(env.id, based_on, actor, &mutations, now)
                .await
            {
                Ok(version) => {
                    let mut committed = current.env.clone();
                    committed.version = version;
                    committed.bucketing = doc.bucketing;
                    let evaluations = self.plane.eval_counters(env.id, &current.label());
                    let installed = EnvSnapshot::new(
                        committed,
                        items.clone(),
                        Arc::new(doc),
                        snapshot,
                        evaluations,
                    );
                    // A change event names items only: a version that
                    // changes a setting goes out as the whole environment.
                    let frame = if mutations.iter().any(|m| m.kind == ItemKind::Setting) {
                        installed.snapshot_frame().clone()
                    } else {
                        change_frame(version, &mutations)
                    };
                    self.plane.install(installed);
                    self.plane.publish(env.id, version, frame);
                    // The version this one replaced may be freed here, and
                    // with many flags that takes a while: not before the
                    // answer.
                    tokio::task::spawn_blocking(move || drop(current));
                    return Ok(Written {
                        items,
                        mutations,
                        version,
                    });
                }
                Err(e) if e.kind == ErrorKind::Conflict => {
                    current = self.refresh(env.id).await?;
                    fresh = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(WriteError::Busy)
    }

    /// Applies `mutations` to `current` and compiles the result, off the
    /// async threads (parsing the changed definitions and compiling the
    /// environment can take long) and within `compile_timeout`: past it the
    /// work is stopped (not left running) and the write refused. Gives the
    /// mutations back with the environment after them.
    async fn compile_bounded<E>(
        &self,
        current: Arc<EnvSnapshot>,
        mutations: Vec<Mutation>,
        parsed: Arc<Parsed>,
        version: i64,
        now: i64,
    ) -> Result<(Vec<Mutation>, Next), WriteError<E>> {
        let stop = Arc::new(AtomicBool::new(false));
        // Dropped with this future, e.g. when the request times out: the
        // work stops instead of running on for nobody.
        let _cancel = StopOnDrop(stop.clone());
        let flag = stop.clone();
        let mut work = tokio::task::spawn_blocking(move || {
            let next: Result<Next, WriteError<std::convert::Infallible>> = document::apply(
                &current.items,
                &current.doc,
                &mutations,
                &parsed,
                version,
                now,
            )
            .map_err(WriteError::Store)
            .and_then(|(items, doc)| {
                // Unchanged flags keep their compiled form.
                let compiled =
                    vexil_engine::compile_reusing(&doc, &current.doc, &current.snapshot, &flag);
                match compiled {
                    Ok(c) => Ok(Next {
                        items,
                        doc,
                        snapshot: c.snapshot,
                    }),
                    Err(problems) => Err(WriteError::Invalid(problems.0)),
                }
            });
            (mutations, next)
        });
        let joined = tokio::select! {
            done = &mut work => done,
            _ = tokio::time::sleep(self.compile_timeout) => {
                stop.store(true, Ordering::Relaxed);
                work.await
            }
        };
        let (mutations, next) = joined.map_err(|_| WriteError::Internal)?;
        match next {
            Ok(next) => Ok((mutations, next)),
            Err(_) if stop.load(Ordering::Relaxed) => {
                Err(WriteError::CompileTimeout(self.compile_timeout))
            }
            Err(WriteError::Store(e)) => Err(WriteError::Store(e)),
            Err(WriteError::Invalid(problems)) => Err(WriteError::Invalid(problems)),
            Err(_) => Err(WriteError::Internal),
        }
    }
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// An environment after a change, compiled.
struct Next {
    items: Items,
    doc: Document,
    snapshot: Snapshot,
}

/// The SSE frame of one committed change.
fn change_frame(version: i64, mutations: &[Mutation]) -> Bytes {
    let items: Vec<ChangedItem<'_, Definition>> = mutations
        .iter()
        .filter_map(|m| {
            Some(ChangedItem {
                kind: sync::wire_kind(m.kind)?,
                key: &m.key,
                action: sync::wire_action(m.action),
                definition: m.after.as_ref(),
                archived: m.archived,
            })
        })
        .collect();
    vexil_protocol::event::change_frame(version, &items).into()
}
