//! The data plane: evaluation (OFREP, native) and delivery (snapshot
//! download, change streams) answered from memory.
//!
//! The plane does not own its snapshots: a source installs them (the
//! control plane on a server, after each commit and each change it learns
//! of; an upstream follower on an edge) through [`Plane::install`],
//! [`Plane::publish`] and [`Plane::install_keys`]. Requests read only what
//! was installed: no data-plane request touches the store.

mod caller;
mod delivery;
mod hot;
pub(crate) mod hub;
mod native;
mod ofrep;
pub(crate) mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::http::Method;
use vexil_protocol::event::{KeyHash, KeyScope, KeysEvent};
use vexil_store::{ApiKey, Scope};

pub(crate) use caller::{cors, error};
pub(crate) use hot::Hot;
use hub::Hub;
pub(crate) use hub::StreamEvent;
pub(crate) use snapshot::{EnvSnapshot, Items};

use crate::clock::Clock;
use crate::http::Table;
use crate::http::limits::Limiter;
use crate::keys::Digest;
use crate::metrics::{EvalCounters, Metrics};

/// Settings of the data plane.
#[derive(Debug, Clone)]
pub(crate) struct PlaneSettings {
    /// Events kept per environment for subscribers that fall behind and
    /// for resumes with `Last-Event-ID`.
    pub(crate) stream_buffer: usize,
    /// SSE streams get a comment this often, events or not.
    pub(crate) heartbeat: std::time::Duration,
    /// Where clients reach this server, for absolute URLs; relative ones
    /// without it.
    pub(crate) public_url: Option<String>,
    /// An admin key evaluates the only environment there is (a flag file
    /// serves exactly one); elsewhere evaluation needs a key that names
    /// its environment.
    pub(crate) admin_evaluates_single_env: bool,
}

/// The data plane's state: what sources installed, and the shared limits
/// and counters.
pub(crate) struct Plane {
    /// Environment id to its latest snapshot. Readers load the map without
    /// locking; `install` replaces it whole.
    snapshots: ArcSwap<HashMap<i64, Arc<EnvSnapshot>>>,
    /// API keys by the raw SHA-256 of their secret: evaluation never asks
    /// the store who is calling, and looks the key up without formatting
    /// its hash.
    keys: ArcSwap<HashMap<Digest, Arc<ApiKey>>>,
    /// Bumped whenever a key that was live is revoked or removed, so that
    /// open streams check whether their key still may read.
    key_revocations: tokio::sync::watch::Sender<u64>,
    hub: Hub,
    /// Set at shutdown: open streams end so that draining can finish.
    closing: tokio::sync::watch::Sender<bool>,
    /// Set once the source has installed every environment.
    loaded: AtomicBool,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: PlaneSettings,
}

impl Plane {
    pub(crate) fn new(
        settings: PlaneSettings,
        limiter: Arc<Limiter>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Plane {
            snapshots: ArcSwap::from_pointee(HashMap::new()),
            keys: ArcSwap::from_pointee(HashMap::new()),
            key_revocations: tokio::sync::watch::channel(0).0,
            hub: Hub::new(settings.stream_buffer),
            closing: tokio::sync::watch::channel(false).0,
            loaded: AtomicBool::new(false),
            limiter,
            metrics,
            clock,
            settings,
        }
    }

    // --- the source's side -------------------------------------------

    /// Installs a snapshot unless the same or a newer version is there;
    /// returns whether it was installed.
    pub(crate) fn install(&self, snap: impl Into<Arc<EnvSnapshot>>) -> bool {
        self.install_if(snap.into(), |current, new| current < new)
    }

    /// Installs a snapshot unless a newer version is there: the same
    /// version again when what is known of it changed (an edge learns the
    /// environment's name after its first version).
    pub(crate) fn reinstall(&self, snap: impl Into<Arc<EnvSnapshot>>) -> bool {
        self.install_if(snap.into(), |current, new| current <= new)
    }

    fn install_if(&self, snap: Arc<EnvSnapshot>, newer: fn(i64, i64) -> bool) -> bool {
        let id = snap.env.id;
        let mut installed = false;
        self.snapshots.rcu(|map| {
            installed = false;
            let mut map = HashMap::clone(map);
            match map.get(&id) {
                Some(current) if !newer(current.env.version, snap.env.version) => {}
                _ => {
                    map.insert(id, snap.clone());
                    installed = true;
                }
            }
            map
        });
        installed
    }

    /// Sends an environment version's SSE frame to its subscribers and
    /// keeps it for resumes.
    pub(crate) fn publish(&self, env_id: i64, version: i64, frame: Bytes) {
        let event = StreamEvent {
            version,
            frame,
            keys: false,
        };
        if self.hub.publish(env_id, event) {
            self.metrics
                .events_published
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Replaces the key cache. When a key that was live is revoked or gone,
    /// open streams hear of it and those of that key end.
    /// Environments whose readers changed get a `keys` event on their rules
    /// streams.
    pub(crate) fn install_keys(&self, keys: HashMap<Digest, Arc<ApiKey>>) {
        let old = self.keys.swap(Arc::new(keys));
        let current = self.keys.load();
        let lost = old.iter().any(|(hash, k)| {
            k.revoked_at.is_none() && current.get(hash).is_none_or(|now| now.revoked_at.is_some())
        });
        if lost {
            self.key_revocations.send_modify(|n| *n += 1);
        }
        for snap in self.snapshots().values() {
            let id = snap.env.id;
            if readers(&old, id) != readers(&current, id) {
                let frame = vexil_protocol::event::keys_frame(&self.keys_event(snap));
                self.hub.announce_keys(id, frame.into());
            }
        }
    }

    /// Who may read an environment: its live server and client keys, as
    /// hashes.
    pub(crate) fn keys_event(&self, snap: &EnvSnapshot) -> KeysEvent {
        let keys = self.keys.load();
        KeysEvent {
            project: snap.env.project_key.clone(),
            environment: snap.env.key.clone(),
            keys: readers(&keys, snap.env.id)
                .into_iter()
                .map(|(hash, scope)| KeyHash {
                    hash: crate::keys::hex(&hash),
                    scope,
                })
                .collect(),
        }
    }

    /// Every environment is installed: the plane is ready.
    pub(crate) fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// Ends every open stream (at shutdown).
    pub(crate) fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    // --- the readers' side -------------------------------------------

    /// Follows an environment's versions for the web UI (admin pages,
    /// not a delivery client): a receiver of its change events, and a
    /// watch that turns true when the server shuts down.
    pub(crate) fn follow_versions(
        &self,
        env_id: i64,
    ) -> (
        tokio::sync::broadcast::Receiver<Arc<StreamEvent>>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        (self.hub.subscribe(env_id), self.closing.subscribe())
    }

    /// Whether every environment has been installed.
    pub(crate) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Every installed environment's snapshot.
    pub(crate) fn snapshots(&self) -> Arc<HashMap<i64, Arc<EnvSnapshot>>> {
        self.snapshots.load_full()
    }

    /// One environment's snapshot.
    pub(crate) fn snapshot(&self, env_id: i64) -> Option<Arc<EnvSnapshot>> {
        self.snapshots.load().get(&env_id).cloned()
    }

    /// The live (not revoked) key with this digest.
    pub(crate) fn key(&self, hash: &Digest) -> Option<Arc<ApiKey>> {
        self.keys
            .load()
            .get(hash)
            .filter(|k| k.revoked_at.is_none())
            .cloned()
    }

    /// The evaluation counters of an environment, shared by its versions.
    pub(crate) fn eval_counters(&self, env_id: i64, label: &str) -> Arc<EvalCounters> {
        self.metrics.eval_counters(env_id, label)
    }

    /// Subscribes to an environment's change events (each version's frame
    /// after its snapshot was installed, and `keys` frames).
    pub(crate) fn subscribe(
        &self,
        env_id: i64,
    ) -> tokio::sync::broadcast::Receiver<Arc<StreamEvent>> {
        self.hub.subscribe(env_id)
    }

    /// Set to true at shutdown: open streams end.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Changes whenever a live key is revoked or removed.
    pub(crate) fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.key_revocations.subscribe()
    }

    /// Open stream subscriptions.
    pub(crate) fn subscribers(&self) -> usize {
        self.hub.subscribers()
    }

    /// Snapshot gauges for `/metrics`: version, age, flags and invalid
    /// flags per environment.
    pub(crate) fn render_snapshots(&self, out: &mut String) {
        use std::fmt::Write as _;
        let snapshots = self.snapshots();
        let gauges: [Gauge<'_>; 4] = [
            (
                "vexil_snapshot_version",
                "Environment version being served.",
                &|s| s.env.version.to_string(),
            ),
            (
                "vexil_snapshot_age_seconds",
                "Time since the served version was installed.",
                &|s| format!("{:.3}", s.installed_at.elapsed().as_secs_f64()),
            ),
            (
                "vexil_snapshot_flags",
                "Flags in the served version.",
                &|s| s.snapshot.len().to_string(),
            ),
            (
                "vexil_snapshot_invalid_flags",
                "Served flags whose definition or targeting is invalid: their evaluations give PARSE_ERROR.",
                &|s| {
                    s.snapshot
                        .flags()
                        .filter(|f| f.is_broken())
                        .count()
                        .to_string()
                },
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for s in snapshots.values() {
                let _ = writeln!(
                    out,
                    "{name}{{environment=\"{}/{}\"}} {}",
                    crate::metrics::escape(&s.env.project_key),
                    crate::metrics::escape(&s.env.key),
                    value(s)
                );
            }
        }
    }
}

/// The live server and client keys of an environment, in hash order.
fn readers(keys: &HashMap<Digest, Arc<ApiKey>>, env_id: i64) -> Vec<(Digest, KeyScope)> {
    let mut out: Vec<(Digest, KeyScope)> = keys
        .iter()
        .filter(|(_, k)| k.revoked_at.is_none() && k.environment_id == Some(env_id))
        .filter_map(|(hash, k)| match k.scope {
            Scope::Server => Some((*hash, KeyScope::Server)),
            Scope::Client => Some((*hash, KeyScope::Client)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|k| k.0);
    out
}

/// A per-environment gauge: name, help, and its value for a snapshot.
type Gauge<'a> = (&'a str, &'a str, &'a dyn Fn(&EnvSnapshot) -> String);

/// The data plane's routes: OFREP evaluation, native evaluation, snapshot
/// download and the change streams (with the CORS preflights browsers
/// send). Served by the server, and by any other evaluator that installs
/// snapshots into a [`Plane`].
pub(crate) fn routes() -> Table<Arc<Plane>> {
    let mut table = Table::new()
        .route(
            Method::POST,
            "/ofrep/v1/evaluate/flags/{key}",
            ofrep::single,
        )
        .route(Method::POST, "/ofrep/v1/evaluate/flags", ofrep::bulk)
        .route(Method::GET, "/api/v1/snapshot", delivery::snapshot)
        .route(Method::GET, "/api/v1/snapshot/keys", delivery::keys)
        .route(Method::GET, "/api/v1/stream", delivery::stream)
        .route(Method::POST, "/api/v1/evaluate", native::evaluate)
        .route(Method::GET, "/ofrep/v1/events", delivery::ofrep_events);
    for path in [
        "/ofrep/v1/evaluate/flags/{key}",
        "/ofrep/v1/evaluate/flags",
        "/api/v1/evaluate",
        "/ofrep/v1/events",
    ] {
        table = table.route(Method::OPTIONS, path, caller::preflight);
    }
    table
}
