//! `Client`: the SDK's face. Built from an upstream (a server or an edge)
//! and a server key, or from a bootstrap file alone; evaluates flags
//! in-process on the version its follower serves.
//!
//! Evaluation never waits and never fails: it loads the current version
//! (a lock-free `ArcSwap` load) and evaluates with the engine. Before the
//! first version arrives every getter returns the caller's default with
//! reason `ERROR` and code `PROVIDER_NOT_READY`.

mod listeners;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::sync::watch;
use vexil_engine::{Context, Evaluation, Reason, ValueType};

use crate::cache::Cache;
use crate::error::{Error, ErrorKind};
use crate::followed::Followed;
use crate::follower::{Follower, FollowerConfig, State, Status};
use crate::slot::Slot;

pub use listeners::{Changed, ListenerId};

#[cfg(test)]
mod tests;

/// Evaluates flags locally on the version its [`Follower`] serves (or on a
/// bootstrap file alone).
///
/// Evaluation never waits and never fails: a getter loads the current
/// version (a lock-free `ArcSwap` load) and evaluates with the engine.
/// Before the first version arrives every getter returns the caller's
/// default, and the details say reason `ERROR`, code `PROVIDER_NOT_READY`.
///
/// Cheap to clone (clones share everything); the follower and the
/// client's tasks stop when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// What evaluation reads: the follower's slot, or a fixed one.
    current: Arc<Slot>,
    state: watch::Receiver<State>,
    /// Keeps a client without upstream's state channel open.
    _state_tx: Option<watch::Sender<State>>,
    follower: Option<Follower>,
    listeners: Arc<listeners::Listeners>,
    /// The listener and cache tasks, stopped with the client.
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How to build a [`Client`]; from [`Client::builder`].
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    upstream: Option<(String, String)>,
    bootstrap: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    poll_interval: Option<Duration>,
    backoff: Option<(Duration, Duration)>,
    stream_idle_timeout: Option<Duration>,
}

impl ClientBuilder {
    /// The upstream to follow (a Vexil server or edge, `http://…`) and a
    /// server key of the environment.
    pub fn upstream(mut self, url: impl Into<String>, key: impl Into<String>) -> Self {
        self.upstream = Some((url.into(), key.into()));
        self
    }

    /// A document to start from (native or flagd, JSON or YAML): served
    /// at once, before the upstream answers, and for good without an
    /// upstream. Read and compiled by [`ClientBuilder::build`], which
    /// fails when it is not usable.
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap = Some(path.into());
        self
    }

    /// A directory for the cache file (needs an upstream): each version
    /// the client receives is saved there, and a later start serves it at
    /// once and resumes after it. A valid cache file is preferred to the
    /// bootstrap file (it is the upstream's, and newer); a damaged one is
    /// ignored with a warning, never served.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Bound on opening a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Bound on each request to the upstream (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How often to download the snapshot while the stream fails
    /// (default 10 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Reconnection back-off: the first delay's bound and the largest
    /// (default 500 ms and 30 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Some((initial, max));
        self
    }

    /// A stream silent for this long is taken for dead (default 45 s,
    /// three of the server's default heartbeats).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = Some(timeout);
        self
    }

    /// Builds the client: reads the cache and the bootstrap file (both
    /// blocking file reads: build at start-up), then starts following the
    /// upstream on the current tokio runtime. Never waits for the
    /// upstream; see [`Client::wait_ready`].
    pub fn build(self) -> Result<Client, Error> {
        let bootstrap = match &self.bootstrap {
            Some(path) => Some(Arc::new(Followed::bootstrap_file(path)?)),
            None => None,
        };
        let Some((url, key)) = self.upstream.clone() else {
            if self.cache_dir.is_some() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "a cache directory needs an upstream (the cache saves what the upstream sends)",
                ));
            }
            let Some(bootstrap) = bootstrap else {
                return Err(Error::new(
                    ErrorKind::Config,
                    "nothing to evaluate: give an upstream, a bootstrap file, or both",
                ));
            };
            return Ok(Client::fixed(bootstrap));
        };
        let cache = self
            .cache_dir
            .as_ref()
            .map(|dir| (Cache::new(dir), cache_label(&url, &key)));
        let cached = cache
            .as_ref()
            .and_then(|(cache, label)| read_cache(cache, label));
        let mut config = FollowerConfig::new(url, key);
        if let Some(t) = self.connect_timeout {
            config.connect_timeout = t;
        }
        if let Some(t) = self.request_timeout {
            config.request_timeout = t;
        }
        if let Some(t) = self.poll_interval {
            config.poll_interval = t;
        }
        if let Some((initial, max)) = self.backoff {
            config.backoff_initial = initial;
            config.backoff_max = max;
        }
        if let Some(t) = self.stream_idle_timeout {
            config.stream_idle_timeout = t;
        }
        config.initial = cached.or(bootstrap);
        let follower = Follower::start(config)?;
        let listeners = Arc::new(listeners::Listeners::default());
        let tasks = listeners::spawn(&follower, listeners.clone(), cache);
        Ok(Client {
            inner: Arc::new(Inner {
                current: follower.current_slot(),
                state: follower.watch(),
                _state_tx: None,
                follower: Some(follower),
                listeners,
                tasks,
            }),
        })
    }
}

/// The cache label of an upstream and key: a hash of both, so the file
/// name tells nothing of the key and two environments never share a file.
fn cache_label(url: &str, key: &str) -> String {
    let digest = crate::cache::sha256_hex(&format!("{url}\n{key}"));
    format!("sdk-{}", &digest[..32])
}

/// The cached state, when there is a usable one.
fn read_cache(cache: &Cache, label: &str) -> Option<Arc<Followed>> {
    match cache.read(label) {
        Ok(None) => None,
        Ok(Some(seed)) => match Followed::from_seed(seed) {
            Ok(followed) => {
                tracing::info!(version = followed.version(), dir = %cache.dir().display(), "starting from the cache");
                Some(Arc::new(followed))
            }
            Err(e) => {
                tracing::warn!(error = %e, "the cached document is not usable; ignoring the cache");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the cache");
            None
        }
    }
}

impl Client {
    /// A builder: an upstream, a bootstrap file, or both, and options.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client following `url` with server key `key`, default options.
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> Result<Client, Error> {
        Client::builder().upstream(url, key).build()
    }

    /// A client serving one fixed state (no upstream).
    fn fixed(followed: Arc<Followed>) -> Client {
        let mut state = State::new(Some(followed.clone()));
        state.status = Status::Ready;
        let (tx, rx) = watch::channel(state);
        Client {
            inner: Arc::new(Inner {
                current: Arc::new(Slot::new(Some(followed))),
                state: rx,
                _state_tx: Some(tx),
                follower: None,
                listeners: Arc::default(),
                tasks: Vec::new(),
            }),
        }
    }

    /// Waits until the client serves the upstream's current version (at
    /// once for a client without upstream). A client serving a bootstrap
    /// or cached state evaluates before that; this waits for the
    /// upstream's confirmation. Ends early when the upstream refuses the
    /// key; after `timeout`, an [`ErrorKind::Timeout`] error.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        crate::follower::wait_ready(self.inner.state.clone(), timeout)
            .await
            .map(|_| ())
    }

    /// The follower's status.
    pub fn status(&self) -> Status {
        self.inner.state.borrow().status
    }

    /// The follower's state (status, version, last error, counters).
    pub fn state(&self) -> State {
        self.inner.state.borrow().clone()
    }

    /// The follower's state as it changes.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.inner.state.clone()
    }

    /// The version evaluations answer from (0 for a bootstrap file).
    pub fn version(&self) -> Option<i64> {
        self.inner.current.with(|f| f.map(Followed::version))
    }

    /// The state evaluations answer from.
    pub fn followed(&self) -> Option<Arc<Followed>> {
        self.inner.current.load_full()
    }

    /// The follower, when the client has an upstream (its update stream
    /// and state, for advanced uses).
    pub fn follower(&self) -> Option<&Follower> {
        self.inner.follower.as_ref()
    }

    // --- evaluation ----------------------------------------------------------

    /// Evaluates flag `key` for `ctx` and hands the result (with the
    /// version that answered) to `f`; `None` before the first version.
    /// Contexts without a timestamp are stamped with the current time
    /// only when the document's targeting may read `$flagd.timestamp`.
    #[inline]
    pub(crate) fn evaluate<R>(
        &self,
        key: &str,
        ctx: &Context,
        expected: ValueType,
        f: impl FnOnce(Option<(&Evaluation<'_>, i64)>) -> R,
    ) -> R {
        self.inner.current.with(|followed| {
            let Some(followed) = followed else {
                return f(None);
            };
            let ctx = if followed.uses_time() && ctx.timestamp().is_none() {
                Cow::Owned(ctx.clone().with_timestamp(unix_now()))
            } else {
                Cow::Borrowed(ctx)
            };
            let evaluation = followed.snapshot().evaluate(key, &ctx, expected);
            f(Some((&evaluation, followed.version())))
        })
    }

    /// A boolean flag's value, or `default` (unknown flag, wrong type, no
    /// value for this context, nothing loaded yet).
    pub fn bool_value(&self, key: &str, ctx: &Context, default: bool) -> bool {
        self.evaluate(key, ctx, ValueType::Bool, |e| {
            e.and_then(|(e, _)| e.value?.as_bool()).unwrap_or(default)
        })
    }

    /// A string flag's value, or `default`.
    pub fn string_value(&self, key: &str, ctx: &Context, default: &str) -> String {
        self.evaluate(key, ctx, ValueType::String, |e| {
            e.and_then(|(e, _)| e.value?.as_str())
                .unwrap_or(default)
                .to_owned()
        })
    }

    /// An integer flag's value (a number without fraction that fits in
    /// `i64`), or `default`.
    pub fn int_value(&self, key: &str, ctx: &Context, default: i64) -> i64 {
        self.evaluate(key, ctx, ValueType::Int, |e| {
            e.and_then(|(e, _)| e.value?.as_i64()).unwrap_or(default)
        })
    }

    /// A number flag's value, or `default`.
    pub fn float_value(&self, key: &str, ctx: &Context, default: f64) -> f64 {
        self.evaluate(key, ctx, ValueType::Float, |e| {
            e.and_then(|(e, _)| e.value?.as_f64()).unwrap_or(default)
        })
    }

    /// An object (or array) flag's value, or `default`.
    pub fn json_value(&self, key: &str, ctx: &Context, default: Value) -> Value {
        self.evaluate(key, ctx, ValueType::Object, |e| {
            e.and_then(|(e, _)| e.value.cloned()).unwrap_or(default)
        })
    }

    /// [`Client::bool_value`] with the details.
    pub fn bool_details(&self, key: &str, ctx: &Context, default: bool) -> Details<bool> {
        self.typed(key, ctx, ValueType::Bool, default, Value::as_bool)
    }

    /// [`Client::string_value`] with the details.
    pub fn string_details(&self, key: &str, ctx: &Context, default: &str) -> Details<String> {
        self.typed(key, ctx, ValueType::String, default.to_owned(), |v| {
            v.as_str().map(str::to_owned)
        })
    }

    /// [`Client::int_value`] with the details.
    pub fn int_details(&self, key: &str, ctx: &Context, default: i64) -> Details<i64> {
        self.typed(key, ctx, ValueType::Int, default, Value::as_i64)
    }

    /// [`Client::float_value`] with the details.
    pub fn float_details(&self, key: &str, ctx: &Context, default: f64) -> Details<f64> {
        self.typed(key, ctx, ValueType::Float, default, Value::as_f64)
    }

    /// [`Client::json_value`] with the details.
    pub fn json_details(&self, key: &str, ctx: &Context, default: Value) -> Details<Value> {
        self.typed(key, ctx, ValueType::Object, default, |v| Some(v.clone()))
    }

    /// The details of any type, untyped: `value` is `None` where the
    /// typed getters would give the caller's default.
    pub fn details(&self, key: &str, ctx: &Context, expected: ValueType) -> Details<Option<Value>> {
        self.typed(key, ctx, expected, None, |v| Some(Some(v.clone())))
    }

    fn typed<T>(
        &self,
        key: &str,
        ctx: &Context,
        expected: ValueType,
        default: T,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> Details<T> {
        self.evaluate(key, ctx, expected, |found| {
            let Some((e, version)) = found else {
                return Details::not_ready(default);
            };
            let mut details = Details {
                value: default,
                variant: None,
                reason: e.reason,
                error_code: e.error.as_ref().map(|err| err.code.into()),
                error_message: e.error.as_ref().map(|err| err.details.to_string()),
                version: Some(version),
                metadata: e.metadata().cloned().unwrap_or_default(),
            };
            if let Some(v) = e.value {
                match convert(v) {
                    Some(value) => {
                        details.value = value;
                        details.variant = e.variant.map(str::to_owned);
                    }
                    None => {
                        details.reason = Reason::Error;
                        details.error_code = Some(ErrorCode::TypeMismatch);
                        details.error_message = Some(format!(
                            "the value of flag `{key}` does not fit in {}",
                            expected.name()
                        ));
                    }
                }
            }
            details
        })
    }

    // --- listeners -----------------------------------------------------------

    /// Calls `listener` after each new version that may change what some
    /// flag evaluates to (see [`Changed`]), from the versions that arrive
    /// after this call on (a listener added before the first version is
    /// told of it). Listeners run one after another on a task of their
    /// own, never on the evaluation path and never under a lock; a slow
    /// listener delays only the listeners after it. A client without
    /// upstream never changes.
    ///
    /// To evaluate in a listener, capture [`Client::downgrade`], not a
    /// clone of the client (which would keep it alive for good).
    pub fn on_change(&self, listener: impl Fn(&Changed) + Send + Sync + 'static) -> ListenerId {
        let since = self.inner.state.borrow().seq;
        self.inner.listeners.add(None, since, Arc::new(listener))
    }

    /// Calls `listener` after each new version that may change what flag
    /// `key` evaluates to: its definition changed (created, updated,
    /// toggled, archived, deleted), a flag it requires did, or a segment
    /// did.
    pub fn on_flag_change(
        &self,
        key: impl Into<String>,
        listener: impl Fn(&Changed) + Send + Sync + 'static,
    ) -> ListenerId {
        let since = self.inner.state.borrow().seq;
        self.inner
            .listeners
            .add(Some(key.into()), since, Arc::new(listener))
    }

    /// A handle that does not keep the client alive, for listeners: a
    /// listener holding a `Client` would keep it (and its follower)
    /// running for good, as the client holds its listeners.
    pub fn downgrade(&self) -> WeakClient {
        WeakClient(Arc::downgrade(&self.inner))
    }

    /// Removes a listener; `false` when it was not there.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.listeners.remove(id)
    }
}

/// A [`Client`] that does not keep it alive (see [`Client::downgrade`]).
#[derive(Debug, Clone)]
pub struct WeakClient(std::sync::Weak<Inner>);

impl WeakClient {
    /// The client, while some clone of it is alive.
    pub fn upgrade(&self) -> Option<Client> {
        self.0.upgrade().map(|inner| Client { inner })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An evaluation in full: the value, why, and the version that answered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Details<T> {
    /// The flag's value, or the caller's default (see `reason`).
    pub value: T,
    /// The variant served, when the value is the flag's.
    pub variant: Option<String>,
    /// Why this value (OpenFeature's reasons).
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`].
    pub error_code: Option<ErrorCode>,
    /// What went wrong, naming the flag.
    pub error_message: Option<String>,
    /// The version of the snapshot that answered (0 for a bootstrap
    /// file); `None` before the first one.
    pub version: Option<i64>,
    /// The flag's metadata (empty for unknown flags).
    pub metadata: Map<String, Value>,
}

impl<T> Details<T> {
    fn not_ready(default: T) -> Details<T> {
        Details {
            value: default,
            variant: None,
            reason: Reason::Error,
            error_code: Some(ErrorCode::ProviderNotReady),
            error_message: Some(
                "no flags loaded yet: the first snapshot has not arrived".to_owned(),
            ),
            version: None,
            metadata: Map::new(),
        }
    }

    /// Whether the value is the caller's default because of an error.
    pub fn is_error(&self) -> bool {
        self.error_code.is_some()
    }
}

/// Why an evaluation gave the caller's default (OpenFeature's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Nothing loaded yet.
    ProviderNotReady,
    /// No flag with that key.
    FlagNotFound,
    /// The flag is invalid (e.g. flagd targeting that does not parse).
    ParseError,
    /// The flag's value is not of the type asked for.
    TypeMismatch,
    /// A rollout needs a targeting key and the context has none.
    TargetingKeyMissing,
    /// The context cannot be used.
    InvalidContext,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The OpenFeature spelling, e.g. `PROVIDER_NOT_READY`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ProviderNotReady => "PROVIDER_NOT_READY",
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<vexil_engine::ErrorCode> for ErrorCode {
    fn from(code: vexil_engine::ErrorCode) -> Self {
        match code {
            vexil_engine::ErrorCode::FlagNotFound => ErrorCode::FlagNotFound,
            vexil_engine::ErrorCode::TypeMismatch => ErrorCode::TypeMismatch,
            vexil_engine::ErrorCode::ParseError => ErrorCode::ParseError,
            vexil_engine::ErrorCode::TargetingKeyMissing => ErrorCode::TargetingKeyMissing,
            vexil_engine::ErrorCode::InvalidContext => ErrorCode::InvalidContext,
            vexil_engine::ErrorCode::General => ErrorCode::General,
        }
    }
}
