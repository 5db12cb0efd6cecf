//! `AppState`, what the admin API's handlers share: the control plane
//! (writes and the store), the data plane it feeds, and the limits and
//! counters of requests.

use std::sync::Arc;

use vexil_store::{Environment, Mutation, Store};

use crate::api::error::ApiError;
use crate::control::{Control, EnvView, Written};
use crate::http::limits::Limiter;
use crate::metrics::Metrics;
use crate::plane::Plane;
use crate::timed_store::StoreMetrics;

pub(crate) use crate::control::document::{Parsed, document_of};

/// State shared by the admin API's requests.
pub(crate) struct AppState {
    pub(crate) control: Arc<Control>,
    pub(crate) plane: Arc<Plane>,
    /// The store, through the control plane's timing wrapper.
    pub(crate) store: Arc<dyn Store>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) metrics: Arc<Metrics>,
    /// Latency and errors of store calls.
    pub(crate) store_metrics: Arc<StoreMetrics>,
    /// Bound on an admin request's duration.
    pub(crate) request_timeout: std::time::Duration,
    /// The web UI's sign-in sessions.
    pub(crate) sessions: Arc<crate::api::ui::Sessions>,
    /// The hashing scheme of the operator's in-process flagd providers
    /// (`--flagd-bucketing`, set with or without the gRPC listener): the
    /// flag view says which flags they get.
    pub(crate) flagd_bucketing: vexil_engine::model::Bucketing,
}

impl AppState {
    /// Milliseconds since the Unix epoch, from the injected clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.control.now_ms()
    }

    /// Validates and commits a change (see `Control::write`).
    pub(crate) async fn write<F>(
        &self,
        env: &Environment,
        actor: &str,
        plan: F,
    ) -> Result<Written, ApiError>
    where
        F: Fn(&EnvView<'_>) -> Result<Vec<Mutation>, ApiError>,
    {
        Ok(self.control.write(env, actor, Arc::default(), plan).await?)
    }

    /// Validates and commits a change whose definitions `parsed` has
    /// parsed already (an import; see `Control::write`).
    pub(crate) async fn write_parsed<F>(
        &self,
        env: &Environment,
        actor: &str,
        parsed: Arc<Parsed>,
        plan: F,
    ) -> Result<Written, ApiError>
    where
        F: Fn(&EnvView<'_>) -> Result<Vec<Mutation>, ApiError>,
    {
        Ok(self.control.write(env, actor, parsed, plan).await?)
    }

    /// Plans and validates a change without committing it; `parsed` as
    /// for `write_parsed`.
    pub(crate) async fn preview<F>(
        &self,
        env: &Environment,
        parsed: Arc<Parsed>,
        plan: F,
    ) -> Result<Vec<Mutation>, ApiError>
    where
        F: Fn(&EnvView<'_>) -> Result<Vec<Mutation>, ApiError>,
    {
        Ok(self.control.preview(env, parsed, plan).await?)
    }

    /// Reloads the key cache (after a key is created or revoked here).
    pub(crate) async fn refresh_keys(&self) -> Result<(), ApiError> {
        Ok(self.control.refresh_keys().await?)
    }

    /// Reloads one environment from the store.
    pub(crate) async fn reload(&self, env_id: i64) -> Result<(), ApiError> {
        Ok(self.control.reload(env_id).await?)
    }
}
