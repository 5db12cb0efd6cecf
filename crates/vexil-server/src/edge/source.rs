//! The edge's snapshot source: each follower's updates installed into the
//! plane (snapshots, changes re-published to the edge's own subscribers,
//! keys checked offline), and written to the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use sha2::Digest as _;
use vexil_protocol::event::{KeyScope, KeysEvent};
use vexil_sdk::cache::Cache;
use vexil_sdk::{Followed, Follower, Update};
use vexil_store::{ApiKey, Environment, Scope};

use crate::keys::Digest;
use crate::plane::{EnvSnapshot, Plane};

/// One followed environment of the upstream.
pub(crate) struct Upstream {
    /// The environment's id in this edge's plane.
    pub(crate) id: i64,
    /// Its cache file's label: derived from the key, never the key.
    pub(crate) label: String,
    pub(crate) follower: Mutex<Option<Follower>>,
    state: tokio::sync::watch::Receiver<vexil_sdk::State>,
    /// Who may read it, as the upstream last said.
    keys: Mutex<Option<Arc<KeysEvent>>>,
    /// Whether the plane's key cache holds those keys: until then the
    /// edge would refuse every caller of this environment, so it is not
    /// ready.
    keys_installed: AtomicBool,
}

impl Upstream {
    pub(crate) fn new(id: i64, label: String, follower: Follower) -> Self {
        let state = follower.watch();
        let keys = follower.current().and_then(|f| f.keys().cloned());
        Upstream {
            id,
            label,
            follower: Mutex::new(Some(follower)),
            state,
            keys: Mutex::new(keys),
            keys_installed: AtomicBool::new(false),
        }
    }

    /// Whether the edge knows who may read this environment (and so can
    /// serve it).
    pub(crate) fn keys_installed(&self) -> bool {
        self.keys_installed.load(Ordering::Acquire)
    }

    /// The follower's state now.
    pub(crate) fn state(&self) -> vexil_sdk::State {
        self.state.borrow().clone()
    }

    /// `project/environment`, once the upstream has said (or the cache
    /// did); the cache label before.
    pub(crate) fn name(&self) -> String {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.as_ref() {
            Some(k) => format!("{}/{}", k.project, k.environment),
            None => self.label.clone(),
        }
    }

    /// Stops the follower.
    pub(crate) async fn stop(&self) {
        let follower = self
            .follower
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(f) = follower {
            f.shutdown().await;
        }
    }
}

/// The cache label of the environment a key reads: the first 16 hex
/// digits of the key's SHA-256 (the file name says nothing of the key).
pub(crate) fn label(key: &str) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!(
        "edge-{}",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// The cached state of an environment, when there is a whole one that
/// compiles; a truncated, corrupt or invalid file is refused with a log
/// line and never served.
pub(crate) fn from_cache(cache: &Cache, label: &str) -> Option<Arc<Followed>> {
    match cache.read(label) {
        Ok(Some(seed)) => match Followed::from_seed(seed) {
            Ok(f) => {
                tracing::info!(
                    cache = label,
                    version = f.version(),
                    "serving the cached state until upstream answers"
                );
                Some(Arc::new(f))
            }
            Err(e) => {
                tracing::error!(cache = label, error = %e, "the cached state does not compile; not serving it");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::error!(cache = label, error = %e, "refusing the cache file; not serving it");
            None
        }
    }
}

/// Installs one upstream's updates into the plane until its follower
/// stops.
pub(crate) async fn feed(
    upstream: Arc<Upstream>,
    plane: Arc<Plane>,
    all: Vec<Arc<Upstream>>,
    cache: Option<Cache>,
) {
    let updates = {
        let follower = upstream.follower.lock().unwrap_or_else(|p| p.into_inner());
        follower.as_ref().map(Follower::updates)
    };
    let Some(mut updates) = updates else { return };
    // Whether this feed installed its keys yet (a cached state's keys are
    // known from the start, but not installed).
    let mut keys_installed = false;
    while let Some(update) = updates.recv().await {
        let followed = match update {
            Update::Snapshot(f) => {
                if install(&upstream, &plane, &f) {
                    // `install` served the JSON: it is there.
                    let json = f.json().map(|j| &j[..]).unwrap_or_default();
                    let frame = vexil_protocol::event::snapshot_frame(f.version(), json);
                    plane.publish(upstream.id, f.version(), Bytes::from(frame));
                }
                f
            }
            Update::Change { followed, event } => {
                let items: Vec<_> = event.changes.iter().map(|c| c.as_item()).collect();
                let frame = vexil_protocol::event::change_frame(event.version, &items);
                if install(&upstream, &plane, &followed) {
                    plane.publish(upstream.id, followed.version(), Bytes::from(frame));
                }
                followed
            }
            Update::Keys(_) => match upstream.state().followed {
                Some(f) => {
                    // The environment's name comes with its keys: label
                    // the installed version with it.
                    let unnamed = plane
                        .snapshot(upstream.id)
                        .is_some_and(|s| s.env.project_key.is_empty());
                    if unnamed && let Some(snapshot) = snapshot_of(&upstream, &plane, &f) {
                        plane.reinstall(snapshot);
                    }
                    f
                }
                None => continue,
            },
            _ => continue,
        };
        // Who may read changed (or is known for the first time): the key
        // cache is rebuilt then, not on every version.
        if let Some(keys) = followed.keys() {
            let changed = {
                let mut known = upstream.keys.lock().unwrap_or_else(|p| p.into_inner());
                let changed = !known
                    .as_ref()
                    .is_some_and(|k| Arc::ptr_eq(k, keys) || **k == **keys);
                *known = Some(keys.clone());
                changed
            };
            if changed || !keys_installed {
                install_keys(&plane, &all);
                keys_installed = true;
            }
        }
        if all
            .iter()
            .all(|u| plane.snapshot(u.id).is_some() && u.keys_installed())
        {
            plane.set_loaded();
        }
        if let Some(cache) = &cache {
            let cache = cache.clone();
            let label = upstream.label.clone();
            let f = followed.clone();
            let written =
                tokio::task::spawn_blocking(move || cache.write(&label, &f.seed()?)).await;
            if let Ok(Err(e)) = written {
                tracing::warn!(cache = %upstream.label, error = %e, "cannot write the cache file");
            }
        }
    }
}

/// Installs a followed version; false when the plane holds it already
/// (or it cannot be served).
fn install(upstream: &Upstream, plane: &Plane, f: &Arc<Followed>) -> bool {
    snapshot_of(upstream, plane, f).is_some_and(|s| plane.install(s))
}

/// A followed version as the plane holds it; `None` (logged) when its
/// document cannot be written as JSON, which the snapshot route serves.
fn snapshot_of(upstream: &Upstream, plane: &Plane, f: &Arc<Followed>) -> Option<EnvSnapshot> {
    let json = match f.json() {
        Ok(json) => json.clone(),
        Err(e) => {
            tracing::error!(upstream = %upstream.label, version = f.version(), error = %e, "version not served");
            return None;
        }
    };
    let (project, key) = match f.keys() {
        Some(k) => (k.project.clone(), k.environment.clone()),
        None => (String::new(), upstream.label.clone()),
    };
    let env = Environment {
        id: upstream.id,
        project_id: 0,
        name: key.clone(),
        project_key: project,
        key,
        version: f.version(),
        created_at: 0,
        bucketing: f.document().bucketing,
    };
    let label = format!("{}/{}", env.project_key, env.key);
    Some(EnvSnapshot::compiled(
        env,
        Arc::new(Vec::new()),
        f.document().clone(),
        f.snapshot().clone(),
        json,
        plane.eval_counters(upstream.id, &label),
    ))
}

/// Installs the keys of every environment, as the upstreams last said.
fn install_keys(plane: &Plane, all: &[Arc<Upstream>]) {
    let mut keys: HashMap<Digest, Arc<ApiKey>> = HashMap::new();
    for u in all {
        let event = u.keys.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(event) = event else { continue };
        for k in &event.keys {
            let Some(hash) = crate::keys::parse_digest(&k.hash) else {
                continue;
            };
            let mut id_bytes = [0u8; 8];
            id_bytes.copy_from_slice(&hash[..8]);
            keys.insert(
                hash,
                Arc::new(ApiKey {
                    // The limiter's buckets are per key id.
                    id: i64::from_le_bytes(id_bytes),
                    name: String::new(),
                    prefix: String::new(),
                    scope: match k.scope {
                        KeyScope::Server => Scope::Server,
                        KeyScope::Client => Scope::Client,
                    },
                    project_id: None,
                    environment_id: Some(u.id),
                    created_at: 0,
                    revoked_at: None,
                }),
            );
        }
    }
    plane.install_keys(keys);
    for u in all {
        if u.keys.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            u.keys_installed.store(true, Ordering::Release);
        }
    }
}
