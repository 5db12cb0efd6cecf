//! Shared server state: the store, and one compiled snapshot per
//! environment, swapped atomically when a new version is committed (by
//! this server, or by another one sharing the database).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use vexil_engine::model::{Document, FlagDef, SegmentDef};
use vexil_engine::{Keyed, Problem, Snapshot};
use vexil_store::{
    ApiKey, EnvState, Environment, ErrorKind, Item, ItemKind, Mutation, Store, StoreError,
};

use crate::api::error::ApiError;

/// How many times a write is re-validated and retried when another server
/// wrote to the same environment first.
const MAX_WRITE_ATTEMPTS: usize = 16;

/// One environment's compiled flags at one version.
#[derive(Debug)]
pub(crate) struct EnvSnapshot {
    pub(crate) env: Environment,
    pub(crate) snapshot: Snapshot,
    /// The environment as a native JSON document, serialised once per
    /// version for every edge and SDK that downloads it.
    pub(crate) document: axum::body::Bytes,
    /// When this version was installed here.
    pub(crate) installed_at: std::time::Instant,
    /// The environment's evaluation counters (shared by all its versions).
    pub(crate) evaluations: Arc<crate::metrics::EvalCounters>,
}

impl EnvSnapshot {
    fn new(
        env: Environment,
        snapshot: Snapshot,
        doc: &Document,
        metrics: &crate::metrics::Metrics,
    ) -> Self {
        let document = serde_json::to_vec(doc).unwrap_or_default().into();
        let label = format!("{}/{}", env.project_key, env.key);
        EnvSnapshot {
            evaluations: metrics.eval_counters(env.id, &label),
            env,
            snapshot,
            document,
            installed_at: std::time::Instant::now(),
        }
    }
}

/// State shared by all requests.
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    /// Environment id to its latest snapshot. Readers load the map without
    /// locking; writers replace it whole.
    snapshots: ArcSwap<HashMap<i64, Arc<EnvSnapshot>>>,
    /// Set once every environment's snapshot has been loaded.
    pub(crate) loaded: AtomicBool,
    /// One write queue per environment. Writes to an environment are
    /// totally ordered anyway (each needs the previous version); queueing
    /// them here instead of letting them race on the version check keeps
    /// concurrent writers on this server from starving each other. This is
    /// the one lock held across `.await`, and only by writers.
    write_queues: std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// API keys by the raw SHA-256 of their secret, for the data plane:
    /// evaluation never asks the store who is calling, and looks the key
    /// up without formatting its hash. Refreshed with the snapshots.
    keys: ArcSwap<HashMap<crate::keys::Digest, Arc<ApiKey>>>,
    pub(crate) metrics: crate::metrics::Metrics,
    /// Change events per environment, serialised once and shared by every
    /// SSE subscriber.
    streams: std::sync::Mutex<HashMap<i64, tokio::sync::broadcast::Sender<Arc<StreamEvent>>>>,
    /// Set at shutdown: open streams end so that draining can finish.
    closing: tokio::sync::watch::Sender<bool>,
    pub(crate) limiter: crate::limits::Limiter,
    /// Events kept for SSE subscribers that fall behind; one further behind
    /// is dropped (it reconnects with `Last-Event-ID` and resumes).
    stream_buffer: usize,
    /// Bound on an admin request's duration.
    pub(crate) request_timeout: std::time::Duration,
    /// Latency and errors of store calls.
    pub(crate) store_metrics: Arc<crate::timed_store::StoreMetrics>,
    /// Bumped whenever a key that was live is revoked or removed, so that
    /// open streams check whether their key still may read.
    key_revocations: tokio::sync::watch::Sender<u64>,
    /// Where clients reach this server, for absolute URLs; relative ones
    /// without it.
    pub(crate) public_url: Option<String>,
    /// Idle SSE streams get a comment this often.
    pub(crate) heartbeat: std::time::Duration,
    /// Bound on compiling an environment for one write.
    compile_timeout: std::time::Duration,
}

/// Settings of the write path and of the data plane's streams and URLs.
#[derive(Debug, Clone)]
pub(crate) struct StateSettings {
    /// Bound on compiling an environment for one write.
    pub(crate) compile_timeout: std::time::Duration,
    /// Events kept for SSE subscribers that fall behind.
    pub(crate) stream_buffer: usize,
    /// Idle SSE streams get a comment this often.
    pub(crate) heartbeat: std::time::Duration,
    /// Where clients reach this server.
    pub(crate) public_url: Option<String>,
}

/// One change of an environment, as an SSE frame.
#[derive(Debug)]
pub(crate) struct StreamEvent {
    pub(crate) version: i64,
    pub(crate) frame: axum::body::Bytes,
}

/// What a change event carries per item.
#[derive(serde::Serialize)]
pub(crate) struct ChangedItem<'a> {
    kind: ItemKind,
    key: &'a str,
    action: vexil_store::Action,
    /// The definition after the change; null when deleted.
    definition: Option<&'a serde_json::Value>,
    archived: bool,
}

/// The SSE frame of one change (one environment version).
pub(crate) fn change_frame(version: i64, items: &[ChangedItem<'_>]) -> axum::body::Bytes {
    let data = serde_json::to_string(&serde_json::json!({"version": version, "changes": items}))
        .unwrap_or_default();
    format!("id: {version}\nevent: change\ndata: {data}\n\n").into()
}

/// The SSE frame of a whole environment.
pub(crate) fn snapshot_frame(snap: &EnvSnapshot) -> axum::body::Bytes {
    let mut frame = format!("id: {}\nevent: snapshot\ndata: ", snap.env.version).into_bytes();
    frame.extend_from_slice(&snap.document);
    frame.extend_from_slice(b"\n\n");
    frame.into()
}

/// Groups change log entries by version into frames.
pub(crate) fn frames_of(changes: &[vexil_store::Change]) -> Vec<(i64, axum::body::Bytes)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let version = changes[i].version;
        let mut items = Vec::new();
        while i < changes.len() && changes[i].version == version {
            let c = &changes[i];
            items.push(ChangedItem {
                kind: c.kind,
                key: &c.key,
                action: c.action,
                definition: c.after.as_ref(),
                archived: c.after.is_some() && c.action == vexil_store::Action::Archive,
            });
            i += 1;
        }
        out.push((version, change_frame(version, &items)));
    }
    out
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The document of an environment's current, non-archived items.
pub(crate) fn document_of<'a>(
    items: impl Iterator<Item = &'a Item>,
) -> Result<Document, StoreError> {
    let mut flags = Vec::new();
    let mut segments = Vec::new();
    for item in items.filter(|i| !i.archived) {
        let corrupt = |e: serde_json::Error| StoreError {
            kind: ErrorKind::Internal,
            message: format!("stored definition of `{}` does not parse", item.key),
            source: Some(Box::new(e)),
        };
        match item.kind {
            ItemKind::Flag => flags.push((
                item.key.clone(),
                serde_json::from_value::<FlagDef>(item.definition.clone()).map_err(corrupt)?,
            )),
            ItemKind::Segment => segments.push((
                item.key.clone(),
                serde_json::from_value::<SegmentDef>(item.definition.clone()).map_err(corrupt)?,
            )),
        }
    }
    Ok(Document {
        flags: Keyed::from_pairs(flags),
        segments: Keyed::from_pairs(segments),
        ..Document::default()
    })
}

/// Applies mutations to a copy of the items, as the store will when it
/// commits them as `version` at `now`, in the store's order.
fn apply(items: &[Item], mutations: &[Mutation], version: i64, now: i64) -> Vec<Item> {
    let mut out: Vec<Item> = items.to_vec();
    for m in mutations {
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

/// Compiles an environment's items; problems are a 422. Stops early (and
/// answers `Err(None)`) once `stop` is set.
fn compile(
    items: &[Item],
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(Snapshot, Document), Option<ApiError>> {
    let doc = document_of(items.iter()).map_err(|e| Some(e.into()))?;
    match vexil_engine::compile_until(&doc, stop) {
        Ok(c) => Ok((c.snapshot, doc)),
        Err(_) if stop.load(Ordering::Relaxed) => Err(None),
        Err(problems) => Err(Some(ApiError::invalid(problems.0))),
    }
}

/// What a write did.
pub(crate) struct Written {
    /// The environment's items after the write.
    pub(crate) items: Vec<Item>,
    /// What was committed (empty when there was nothing to do).
    pub(crate) mutations: Vec<Mutation>,
    /// The environment version after the write.
    pub(crate) version: i64,
}

impl AppState {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        limiter: crate::limits::Limiter,
        settings: StateSettings,
        request_timeout: std::time::Duration,
        store_metrics: Arc<crate::timed_store::StoreMetrics>,
    ) -> Self {
        AppState {
            store,
            snapshots: ArcSwap::from_pointee(HashMap::new()),
            loaded: AtomicBool::new(false),
            write_queues: std::sync::Mutex::new(HashMap::new()),
            keys: ArcSwap::from_pointee(HashMap::new()),
            metrics: crate::metrics::Metrics::default(),
            streams: std::sync::Mutex::new(HashMap::new()),
            closing: tokio::sync::watch::channel(false).0,
            limiter,
            stream_buffer: settings.stream_buffer,
            request_timeout,
            store_metrics,
            key_revocations: tokio::sync::watch::channel(0).0,
            public_url: settings.public_url,
            heartbeat: settings.heartbeat,
            compile_timeout: settings.compile_timeout,
        }
    }

    /// Ends every open stream (at shutdown).
    pub(crate) fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Completes when the server starts shutting down.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Subscribes to an environment's change events.
    pub(crate) fn subscribe(
        &self,
        env_id: i64,
    ) -> tokio::sync::broadcast::Receiver<Arc<StreamEvent>> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams
            .entry(env_id)
            .or_insert_with(|| tokio::sync::broadcast::channel(self.stream_buffer).0)
            .subscribe()
    }

    /// Number of SSE subscribers, for metrics.
    pub(crate) fn subscribers(&self) -> usize {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.values().map(|s| s.receiver_count()).sum()
    }

    /// Sends frames to an environment's subscribers (if it has any).
    fn publish(&self, env_id: i64, frames: Vec<(i64, axum::body::Bytes)>) {
        let sender = {
            let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
            streams.get(&env_id).cloned()
        };
        if let Some(sender) = sender {
            for (version, frame) in frames {
                let _ = sender.send(Arc::new(StreamEvent { version, frame }));
                self.metrics
                    .events_published
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn has_subscribers(&self, env_id: i64) -> bool {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.get(&env_id).is_some_and(|s| s.receiver_count() > 0)
    }

    /// Every loaded environment's snapshot.
    pub(crate) fn snapshots(&self) -> Arc<HashMap<i64, Arc<EnvSnapshot>>> {
        self.snapshots.load_full()
    }

    /// Installs a snapshot unless a newer one is already there.
    fn install(&self, snap: EnvSnapshot) {
        let id = snap.env.id;
        let snap = Arc::new(snap);
        self.snapshots.rcu(|map| {
            let mut map = HashMap::clone(map);
            match map.get(&id) {
                Some(current) if current.env.version >= snap.env.version => {}
                _ => {
                    map.insert(id, snap.clone());
                }
            }
            map
        });
    }

    /// Loads and compiles an environment from the store.
    pub(crate) async fn reload(&self, env_id: i64) -> Result<(), ApiError> {
        let before = self.snapshots().get(&env_id).map(|s| s.env.version);
        let state: EnvState = self.store.load(env_id).await?;
        let doc = document_of(state.items.iter())?;
        // A flag file is served as flagd serves it: an invalid flag gives
        // PARSE_ERROR instead of refusing the file.
        let compiled = if self.store.read_only() {
            vexil_engine::compile_serving(&doc)
        } else {
            vexil_engine::compile(&doc)
        };
        match compiled {
            Ok(c) => {
                let version = state.env.version;
                self.install(EnvSnapshot::new(state.env, c.snapshot, &doc, &self.metrics));
                // Changes written elsewhere: tell this server's subscribers.
                if let Some(before) = before.filter(|b| *b < version)
                    && self.has_subscribers(env_id)
                {
                    let filter = vexil_store::ChangeFilter {
                        item: None,
                        after_version: before,
                        limit: 1000,
                    };
                    let mut frames: Vec<_> = match self.store.changes(env_id, &filter).await {
                        Ok(changes) => frames_of(&changes)
                            .into_iter()
                            .filter(|(v, _)| *v <= version)
                            .collect(),
                        Err(_) => Vec::new(),
                    };
                    // The change log cannot say what changed: announce the
                    // new version with the whole environment instead of
                    // staying silent.
                    if !frames.iter().any(|(v, _)| *v == version)
                        && let Some(snap) = self.snapshots().get(&env_id)
                    {
                        frames.push((version, snapshot_frame(snap)));
                    }
                    self.publish(env_id, frames);
                }
                Ok(())
            }
            Err(problems) => {
                // Stored state is validated before it is written; this
                // means corruption or a newer server's format. Keep
                // serving the last good snapshot.
                tracing::error!(env = env_id, problems = %problems, "stored environment does not compile; keeping the last good snapshot");
                Err(ApiError::internal("stored environment does not compile"))
            }
        }
    }

    /// Loads every environment.
    pub(crate) async fn load_all(&self) -> Result<(), ApiError> {
        self.refresh_keys().await?;
        for env in self.store.environments(None).await? {
            self.reload(env.id).await?;
        }
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Reloads environments whose version in the store is ahead of ours:
    /// how changes written by other servers arrive.
    pub(crate) async fn sync(&self) -> Result<usize, ApiError> {
        self.refresh_keys().await?;
        let current = self.snapshots();
        let mut reloaded = 0;
        for (id, version) in self.store.versions().await? {
            if current.get(&id).is_none_or(|s| s.env.version < version) {
                self.reload(id).await?;
                reloaded += 1;
            }
        }
        Ok(reloaded)
    }

    /// Whether flags come from a read-only file.
    pub(crate) fn read_only(&self) -> bool {
        self.store.read_only()
    }

    /// Reloads the API key cache from the store. When a key that was live
    /// is revoked or gone, open streams hear of it and those of that key end.
    pub(crate) async fn refresh_keys(&self) -> Result<(), ApiError> {
        let keys: HashMap<crate::keys::Digest, Arc<ApiKey>> = self
            .store
            .keys_with_hashes()
            .await?
            .into_iter()
            .filter_map(|(hash, key)| Some((crate::keys::parse_digest(&hash)?, Arc::new(key))))
            .collect();
        let old = self.keys.swap(Arc::new(keys));
        let current = self.keys.load();
        let lost = old.iter().any(|(hash, k)| {
            k.revoked_at.is_none() && current.get(hash).is_none_or(|now| now.revoked_at.is_some())
        });
        if lost {
            self.key_revocations.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Changes whenever a live key is revoked (see `refresh_keys`).
    pub(crate) fn key_revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.key_revocations.subscribe()
    }

    /// The live (not revoked) key with this digest, from the cache.
    pub(crate) fn cached_key(&self, hash: &crate::keys::Digest) -> Option<Arc<ApiKey>> {
        self.keys
            .load()
            .get(hash)
            .filter(|k| k.revoked_at.is_none())
            .cloned()
    }

    /// Plans and validates a change without committing it (dry runs).
    pub(crate) async fn preview<F>(
        &self,
        env: &Environment,
        plan: F,
    ) -> Result<Vec<Mutation>, ApiError>
    where
        F: Fn(&EnvState) -> Result<Vec<Mutation>, ApiError>,
    {
        let state = self.store.load(env.id).await?;
        let mutations = plan(&state)?;
        let items = apply(&state.items, &mutations, state.env.version + 1, now_ms());
        self.compile_bounded(items).await?;
        Ok(mutations)
    }

    /// Compiles an environment's items off the async threads, within
    /// `compile_timeout`: past it the compilation is stopped (not left
    /// running) and the write refused with `503 compile_timeout`.
    async fn compile_bounded(
        &self,
        items: Vec<Item>,
    ) -> Result<(Vec<Item>, Snapshot, Document), ApiError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut work = tokio::task::spawn_blocking(move || {
            let compiled = compile(&items, &flag);
            (items, compiled)
        });
        let joined = tokio::select! {
            done = &mut work => done,
            _ = tokio::time::sleep(self.compile_timeout) => {
                stop.store(true, Ordering::Relaxed);
                work.await
            }
        };
        let (items, compiled) =
            joined.map_err(|_| ApiError::internal("the compilation task failed"))?;
        match compiled {
            Ok((snapshot, doc)) => Ok((items, snapshot, doc)),
            Err(Some(e)) => Err(e),
            Err(None) => Err(ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "compile_timeout",
                    format!(
                        "compiling the environment took longer than the limit of {} ms (--compile-timeout-ms); nothing was changed",
                        self.compile_timeout.as_millis()
                    ),
                )
            }),
        }
    }

    /// Validates and commits a change to an environment.
    ///
    /// `plan` sees the current state and returns the mutations (or an
    /// error, e.g. a failed precondition). The result is validated as a
    /// whole document; when another write got in first, the change is
    /// planned and validated again on the new state.
    pub(crate) async fn write<F>(
        &self,
        env: &Environment,
        actor: &str,
        plan: F,
    ) -> Result<Written, ApiError>
    where
        F: Fn(&EnvState) -> Result<Vec<Mutation>, ApiError>,
    {
        let queue = {
            let mut queues = self
                .write_queues
                .lock()
                .map_err(|_| ApiError::internal("write queue lock poisoned"))?;
            queues.entry(env.id).or_default().clone()
        };
        let _turn = queue.lock().await;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let state = self.store.load(env.id).await?;
            let mutations = plan(&state)?;
            if mutations.is_empty() {
                return Ok(Written {
                    items: state.items,
                    mutations,
                    version: state.env.version,
                });
            }
            // The items as the store will hold them, so the answer needs
            // no second read.
            let now = now_ms();
            let items = apply(&state.items, &mutations, state.env.version + 1, now);
            let (items, snapshot, doc) = self.compile_bounded(items).await?;
            match self
                .store
                .commit(env.id, state.env.version, actor, &mutations, now)
                .await
            {
                Ok(version) => {
                    let mut env = state.env.clone();
                    env.version = version;
                    self.install(EnvSnapshot::new(env, snapshot, &doc, &self.metrics));
                    let items_changed: Vec<ChangedItem<'_>> = mutations
                        .iter()
                        .map(|m| ChangedItem {
                            kind: m.kind,
                            key: &m.key,
                            action: m.action,
                            definition: m.after.as_ref(),
                            archived: m.archived,
                        })
                        .collect();
                    let frame = change_frame(version, &items_changed);
                    drop(items_changed);
                    self.publish(state.env.id, vec![(version, frame)]);
                    return Ok(Written {
                        items,
                        mutations,
                        version,
                    });
                }
                Err(e) if e.kind == ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::busy())
    }
}

/// Problems as JSON for error bodies.
pub(crate) fn problems_json(problems: &[Problem]) -> serde_json::Value {
    serde_json::Value::Array(
        problems
            .iter()
            .map(|p| serde_json::json!({"pointer": p.pointer.as_str(), "message": p.message}))
            .collect(),
    )
}
