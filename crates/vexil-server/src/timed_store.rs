//! A `Store` wrapper that times every call and counts failures by kind,
//! for `/metrics`, and fails fast while the store is known to be down.
//!
//! Once a call finds the store unavailable, later calls fail at once with
//! `Unavailable` instead of each waiting for the database's connect
//! timeout; one call at a time (at most every `PROBE_EVERY`, usually the
//! sync task's) still goes through as a probe, and the first success
//! closes the breaker again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use vexil_store::{
    ApiKey, Change, ChangeFilter, EnvState, Environment, ErrorKind, Mutation, NewKey, Project,
    Result, Store, StoreError,
};

/// While the store is down, how often one call may try it.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Per operation: calls, total seconds, and failures by error kind.
#[derive(Default)]
pub(crate) struct StoreMetrics {
    ops: Mutex<HashMap<&'static str, OpStats>>,
}

#[derive(Default, Clone)]
pub(crate) struct OpStats {
    pub(crate) calls: u64,
    pub(crate) seconds: f64,
    pub(crate) errors: HashMap<String, u64>,
}

impl StoreMetrics {
    /// A copy of the counters, for rendering.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, OpStats)> {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = ops.iter().map(|(k, v)| (*k, v.clone())).collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }
}

/// Whether the store is known to be down.
#[derive(Default)]
struct Breaker {
    down: AtomicBool,
    /// A probe is in progress.
    probing: AtomicBool,
    /// When the last probe started, in milliseconds since `epoch`.
    last_probe: AtomicU64,
}

/// Marks the probe as finished when dropped.
struct ProbeGuard<'a>(&'a Breaker);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

/// Times the calls of the store it wraps.
pub(crate) struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<StoreMetrics>,
    breaker: Breaker,
    epoch: Instant,
}

impl TimedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<StoreMetrics>) -> Self {
        TimedStore {
            inner,
            metrics,
            breaker: Breaker::default(),
            epoch: Instant::now(),
        }
    }

    /// Whether a call may go to the store now: always while it is up; while
    /// it is down, one probe at a time, at most every `PROBE_EVERY`.
    fn admit(&self) -> Option<bool> {
        if !self.breaker.down.load(Ordering::Acquire) {
            return Some(false);
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.breaker.last_probe.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PROBE_EVERY.as_millis() as u64
            || self.breaker.probing.swap(true, Ordering::AcqRel)
        {
            return None;
        }
        self.breaker.last_probe.store(now, Ordering::Relaxed);
        Some(true)
    }

    async fn time<T>(&self, op: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let Some(probe) = self.admit() else {
            return Err(StoreError::new(
                ErrorKind::Unavailable,
                "the store is down (failing fast until it answers again)",
            ));
        };
        // Ends the probe even if the call is cancelled mid-way.
        let _probe = probe.then_some(ProbeGuard(&self.breaker));
        let started = Instant::now();
        let result = call.await;
        match &result {
            Err(e) if e.kind == ErrorKind::Unavailable => {
                if !self.breaker.down.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "store unavailable; failing fast until it answers again");
                    let now = self.epoch.elapsed().as_millis() as u64;
                    self.breaker.last_probe.store(now, Ordering::Relaxed);
                }
            }
            _ => {
                if self.breaker.down.swap(false, Ordering::AcqRel) {
                    tracing::info!("store answers again");
                }
            }
        }

        let seconds = started.elapsed().as_secs_f64();
        let mut ops = self.metrics.ops.lock().unwrap_or_else(|p| p.into_inner());
        let stats = ops.entry(op).or_default();
        stats.calls += 1;
        stats.seconds += seconds;
        if let Err(StoreError { kind, .. }) = &result {
            *stats.errors.entry(format!("{kind:?}")).or_default() += 1;
        }
        result
    }
}

#[async_trait]
impl Store for TimedStore {
    fn change_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.change_notices()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn migrate(&self) -> Result<i64> {
        self.time("migrate", self.inner.migrate()).await
    }
    async fn ping(&self) -> Result<()> {
        self.time("ping", self.inner.ping()).await
    }
    async fn create_project(&self, key: &str, name: &str, now: i64) -> Result<Project> {
        self.time("create_project", self.inner.create_project(key, name, now))
            .await
    }
    async fn projects(&self) -> Result<Vec<Project>> {
        self.time("projects", self.inner.projects()).await
    }
    async fn project(&self, key: &str) -> Result<Project> {
        self.time("project", self.inner.project(key)).await
    }
    async fn create_environment(
        &self,
        project_id: i64,
        key: &str,
        name: &str,
        now: i64,
    ) -> Result<Environment> {
        self.time(
            "create_environment",
            self.inner.create_environment(project_id, key, name, now),
        )
        .await
    }
    async fn environments(&self, project_id: Option<i64>) -> Result<Vec<Environment>> {
        self.time("environments", self.inner.environments(project_id))
            .await
    }
    async fn environment(&self, project_key: &str, env_key: &str) -> Result<Environment> {
        self.time("environment", self.inner.environment(project_key, env_key))
            .await
    }
    async fn load(&self, env_id: i64) -> Result<EnvState> {
        self.time("load", self.inner.load(env_id)).await
    }
    async fn commit(
        &self,
        env_id: i64,
        based_on: i64,
        actor: &str,
        mutations: &[Mutation],
        now: i64,
    ) -> Result<i64> {
        self.time(
            "commit",
            self.inner.commit(env_id, based_on, actor, mutations, now),
        )
        .await
    }
    async fn changes(&self, env_id: i64, filter: &ChangeFilter) -> Result<Vec<Change>> {
        self.time("changes", self.inner.changes(env_id, filter))
            .await
    }
    async fn versions(&self) -> Result<Vec<(i64, i64)>> {
        self.time("versions", self.inner.versions()).await
    }
    async fn create_key(&self, key: &NewKey) -> Result<ApiKey> {
        self.time("create_key", self.inner.create_key(key)).await
    }
    async fn keys(&self) -> Result<Vec<ApiKey>> {
        self.time("keys", self.inner.keys()).await
    }
    async fn keys_with_hashes(&self) -> Result<Vec<(String, ApiKey)>> {
        self.time("keys_with_hashes", self.inner.keys_with_hashes())
            .await
    }
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.time("key_by_hash", self.inner.key_by_hash(hash)).await
    }
    async fn revoke_key(&self, id: i64, now: i64) -> Result<ApiKey> {
        self.time("revoke_key", self.inner.revoke_key(id, now))
            .await
    }
}
