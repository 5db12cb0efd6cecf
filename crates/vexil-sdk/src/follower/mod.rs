//! `Follower`: keeps one environment's state in step with an upstream (a
//! Vexil server or edge), for every evaluator outside the server: the
//! SDK's `Client`, and the edge, which re-publishes what it follows.
//!
//! # What it does
//!
//! 1. Unless it holds one of the upstream's versions already (a cached
//!    state in [`FollowerConfig::initial`]), it downloads
//!    `GET /api/v1/snapshot`.
//! 2. It follows `GET /api/v1/stream` with `Last-Event-ID` set to the
//!    version it holds, so the upstream sends only what it missed (or a
//!    snapshot when its log does not reach back, or when it does not
//!    know the version).
//! 3. Each `change` event must continue the version held
//!    (`version == held + 1`); older ones are skipped, and a gap makes it
//!    download the snapshot. Each accepted version is compiled once, on a
//!    blocking thread, into an immutable [`Followed`] that is swapped in
//!    whole. A version that does not compile (or whose items do not parse)
//!    is refused: logged, counted in [`State::refused`], its error in
//!    [`State::error`], and the last good version keeps serving.
//! 4. When the stream fails it reconnects after an exponential back-off
//!    with full jitter (a random delay between zero and
//!    `min(backoff_max, backoff_initial × 2^attempt)`), and while it keeps
//!    failing it polls the snapshot every [`FollowerConfig::poll_interval`]
//!    with `If-None-Match`. A stream silent for longer than
//!    [`FollowerConfig::stream_idle_timeout`] (about three of the server's
//!    heartbeats) is taken for dead.
//!
//! Every request has a timeout, and memory is bounded: an event or a
//! downloaded document larger than [`FollowerConfig::max_document_bytes`]
//! is refused (the stream is dropped and reconnected).
//!
//! # What it gives
//!
//! - [`Follower::current`]: the version being served, lock-free (an
//!   `ArcSwap` load), for evaluation.
//! - [`Follower::watch`]: the [`State`] (status, current version, last
//!   error, counters) as a `tokio::sync::watch`, for health checks and
//!   readiness.
//! - [`Follower::updates`]: every accepted version and keys event in
//!   order ([`Update`]), for consumers that re-publish what they follow
//!   (the edge). A consumer that falls more than
//!   [`FollowerConfig::updates_capacity`] updates behind never slows the
//!   follower down: its next [`Updates::recv`] gives an
//!   [`Update::Snapshot`] of the current state instead of the updates it
//!   missed (counted by [`Updates::lagged`]), then the updates after it.
//!
//! The follower runs as a task on the tokio runtime it was started on,
//! which needs its time and I/O drivers (`#[tokio::main]` and
//! `#[tokio::test]` enable both; a hand-built runtime needs
//! `enable_all()`); it stops when the `Follower` is dropped or on
//! [`Follower::shutdown`].

mod backoff;
mod task;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, watch};
use vexil_protocol::event::{ChangeEvent, KeysEvent};

use crate::error::{Error, ErrorKind};
use crate::followed::Followed;
use crate::slot::Slot;

/// How to follow an upstream. Build it with [`FollowerConfig::new`] and
/// change the fields that need other values.
#[derive(Clone)]
#[non_exhaustive]
pub struct FollowerConfig {
    /// The upstream's base URL, e.g. `http://127.0.0.1:8080` (a server or
    /// an edge); a path prefix is kept. Plain HTTP only: TLS is not built
    /// into this crate yet.
    pub upstream: String,
    /// A server key of the environment to follow (client keys cannot
    /// read rules).
    pub key: String,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on a snapshot download (whole), and on the stream's response
    /// headers.
    pub request_timeout: Duration,
    /// How often to download the snapshot (`If-None-Match`) while the
    /// stream cannot be followed.
    pub poll_interval: Duration,
    /// The first reconnection delay's upper bound.
    pub backoff_initial: Duration,
    /// The largest reconnection delay.
    pub backoff_max: Duration,
    /// A stream that sends nothing (not even a heartbeat) for this long
    /// is dropped and reconnected. The server sends heartbeats every 15 s
    /// by default; keep this at about three of them.
    pub stream_idle_timeout: Duration,
    /// A state to serve at once and, when it is one of the upstream's
    /// versions (not a bootstrap file), to resume after: from a cache
    /// file ([`Followed::from_seed`]) or a bootstrap file
    /// ([`Followed::bootstrap_file`]).
    pub initial: Option<Arc<Followed>>,
    /// How many updates a slow consumer of [`Follower::updates`] may fall
    /// behind before it is resynchronised with a snapshot.
    pub updates_capacity: usize,
    /// Bound on one event of the stream and on a downloaded document.
    pub max_document_bytes: usize,
    /// Serialise each version made from a change event to JSON on the
    /// thread that compiles it, before it is served ([`Followed::json`]):
    /// for an edge, which serves that JSON, or a cache writer. Otherwise
    /// it is serialised when first asked for, and a client that never asks
    /// saves the work.
    pub keep_json: bool,
}

impl FollowerConfig {
    /// Defaults: connect 5 s, request 10 s, poll every 10 s while the
    /// stream fails, back-off from 500 ms up to 30 s, stream dead after
    /// 45 s of silence, 256 updates of slack, 64 MiB documents.
    pub fn new(upstream: impl Into<String>, key: impl Into<String>) -> Self {
        FollowerConfig {
            upstream: upstream.into(),
            key: key.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(45),
            initial: None,
            updates_capacity: 256,
            max_document_bytes: vexil_protocol::sse::DEFAULT_MAX_EVENT_BYTES,
            keep_json: false,
        }
    }
}

impl fmt::Debug for FollowerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowerConfig")
            .field("upstream", &self.upstream)
            .field("key", &"****")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("initial", &self.initial.as_ref().map(|f| f.version()))
            .field("updates_capacity", &self.updates_capacity)
            .field("max_document_bytes", &self.max_document_bytes)
            .finish()
    }
}

/// How a follower stands with its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Nothing to serve yet: no initial state, and no upstream version
    /// accepted so far.
    NotReady,
    /// Serving the upstream's current version: the stream is open, or the
    /// last poll confirmed it.
    Ready,
    /// Serving a version that may not be the upstream's current one: the
    /// upstream cannot be reached (or has not been yet), or its newest
    /// version was refused (see [`State::error`]).
    Stale,
    /// The upstream refuses this follower (a wrong key or URL: `401`,
    /// `403`, `404`), or its only version does not compile. Whatever was
    /// held before keeps serving; retries go on at the longest back-off.
    Error,
}

impl Status {
    /// The upper-case name (`NOT_READY`, `READY`, `STALE`, `ERROR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotReady => "NOT_READY",
            Status::Ready => "READY",
            Status::Stale => "STALE",
            Status::Error => "ERROR",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A follower's state, as [`Follower::watch`] publishes it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct State {
    /// How the follower stands with its upstream.
    pub status: Status,
    /// The version being served.
    pub followed: Option<Arc<Followed>>,
    /// The latest problem, until the follower is [`Status::Ready`] again
    /// (a refused version's error stays until a later version is
    /// accepted).
    pub error: Option<Arc<Error>>,
    /// How many upstream versions were refused because they did not
    /// compile or their items did not parse.
    pub refused: u64,
    /// The newest refused version, while no later one was accepted: the
    /// follower resumes after it rather than receive it again.
    pub refused_version: Option<i64>,
    /// When the upstream last answered or sent anything (heartbeats
    /// included; updated without notifying watchers).
    pub last_contact: Option<SystemTime>,
    /// How many times the stream was opened again after it ended or
    /// failed.
    pub reconnects: u64,
    /// The number of the last update published (see [`Updates`]).
    pub(crate) seq: u64,
}

impl State {
    pub(crate) fn new(followed: Option<Arc<Followed>>) -> State {
        State {
            status: if followed.is_some() {
                Status::Stale
            } else {
                Status::NotReady
            },
            followed,
            error: None,
            refused: 0,
            refused_version: None,
            last_contact: None,
            reconnects: 0,
            seq: 0,
        }
    }
}

/// One step of what a follower follows, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Update {
    /// The whole environment: a downloaded snapshot, a stream's snapshot
    /// event, or the resynchronisation of a consumer that lagged (or just
    /// subscribed).
    Snapshot(Arc<Followed>),
    /// A change event applied to the version before; `followed` is the
    /// version it produced.
    Change {
        /// The state after the change.
        followed: Arc<Followed>,
        /// The change as received (an edge relays it as is).
        event: Arc<ChangeEvent>,
    },
    /// A new keys event (who may read the environment); the state served
    /// from now on carries it too ([`Followed::keys`]).
    Keys(Arc<KeysEvent>),
}

/// An update with its number, as the broadcast channel carries it.
#[derive(Debug, Clone)]
pub(crate) struct Sequenced {
    pub(crate) seq: u64,
    pub(crate) update: Update,
}

/// A consumer's view of a follower's [`Update`]s (see
/// [`Follower::updates`]).
#[derive(Debug)]
pub struct Updates {
    rx: broadcast::Receiver<Sequenced>,
    state: watch::Receiver<State>,
    /// Given before anything received: the state at subscription, or
    /// after a lag.
    pending: Option<Update>,
    /// An update newer than `pending`, taken out of the channel while
    /// dropping the ones `pending` covers.
    peeked: Option<Sequenced>,
    /// Updates up to this number are covered by what was given.
    seen: u64,
    lagged: u64,
}

impl Updates {
    /// The next update in order; `None` once the follower has stopped.
    ///
    /// The first call gives the state at subscription as an
    /// [`Update::Snapshot`] (when there is one). After falling more than
    /// the channel's capacity behind, the next call gives the current
    /// state as an [`Update::Snapshot`] and skips what it covers.
    pub async fn recv(&mut self) -> Option<Update> {
        if let Some(update) = self.pending.take() {
            return Some(update);
        }
        if let Some(s) = self.peeked.take()
            && s.seq > self.seen
        {
            self.seen = s.seq;
            return Some(s.update);
        }
        loop {
            match self.rx.recv().await {
                Ok(s) if s.seq <= self.seen => continue,
                Ok(s) => {
                    self.seen = s.seq;
                    return Some(s.update);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(update) = self.resync() {
                        return Some(update);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// After a lag: the current state, as a snapshot to give. The updates
    /// it covers that are still in the channel are dropped at once (the
    /// channel keeps the receiver at its oldest message, so they would
    /// otherwise take the room of the next ones and cause another lag);
    /// the first newer one is kept for the next call.
    fn resync(&mut self) -> Option<Update> {
        use broadcast::error::TryRecvError;
        self.lagged += 1;
        'state: loop {
            let (seq, followed) = {
                let state = self.state.borrow();
                (state.seq, state.followed.clone())
            };
            self.seen = seq;
            loop {
                match self.rx.try_recv() {
                    Ok(s) if s.seq <= self.seen => continue,
                    Ok(s) => {
                        self.peeked = Some(s);
                        break;
                    }
                    // Fell behind again while draining: what was lost may
                    // be newer than the state read; read it again.
                    Err(TryRecvError::Lagged(_)) => continue 'state,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            return followed.map(Update::Snapshot);
        }
    }

    /// The number of the last update given (or covered by a snapshot
    /// given): listeners added at an earlier number are told of it.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// How many times this consumer fell behind and was resynchronised.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

/// Follows one environment of an upstream; see the [module
/// documentation](self).
#[derive(Debug)]
pub struct Follower {
    current: Arc<Slot>,
    state: watch::Receiver<State>,
    updates: broadcast::Sender<Sequenced>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Starts following on the current tokio runtime. Fails only on a
    /// configuration that cannot work (a malformed or `https` URL, a key
    /// that cannot be sent in a header, no runtime); an unreachable
    /// upstream is retried, never an error here.
    pub fn start(config: FollowerConfig) -> Result<Follower, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                "a follower runs on a tokio runtime, and none is running",
                e,
            )
        })?;
        let initial = config.initial.clone();
        let current = Arc::new(Slot::new(initial.clone()));
        let (state_tx, state) = watch::channel(State::new(initial));
        let (updates, _) = broadcast::channel(config.updates_capacity.max(1));
        let task = task::Task::new(config, current.clone(), state_tx, updates.clone())?;
        let task = runtime.spawn(task.run());
        Ok(Follower {
            current,
            state,
            updates,
            task,
        })
    }

    /// The version being served, if any (a lock-free load).
    pub fn current(&self) -> Option<Arc<Followed>> {
        self.current.load_full()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// The state as it changes.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Every update from now on, in order, starting with the current
    /// state (see [`Updates`]).
    pub fn updates(&self) -> Updates {
        let rx = self.updates.subscribe();
        let (seen, pending) = {
            let state = self.state.borrow();
            (state.seq, state.followed.clone().map(Update::Snapshot))
        };
        Updates {
            rx,
            state: self.state.clone(),
            pending,
            peeked: None,
            seen,
            lagged: 0,
        }
    }

    /// Waits until the follower serves the upstream's current version
    /// ([`Status::Ready`]). Ends early with the follower's error when the
    /// upstream refuses it ([`Status::Error`]); after `timeout`, a
    /// [`ErrorKind::Timeout`] error saying where it stands.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Arc<Followed>, Error> {
        wait_ready(self.state.clone(), timeout).await
    }

    /// Stops following (what was served stays readable through the
    /// `Arc<Followed>`s handed out).
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// The slot evaluation reads, shared with the client.
    pub(crate) fn current_slot(&self) -> Arc<Slot> {
        self.current.clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits on a follower's state until it is ready (see
/// [`Follower::wait_ready`]).
pub(crate) async fn wait_ready(
    mut state: watch::Receiver<State>,
    timeout: Duration,
) -> Result<Arc<Followed>, Error> {
    let waited = tokio::time::timeout(
        timeout,
        state.wait_for(|s| matches!(s.status, Status::Ready | Status::Error)),
    )
    .await
    .map(|r| r.map(|s| (s.status, s.followed.clone(), s.error.clone())));
    match waited {
        Ok(Ok(s)) => match s {
            (Status::Ready, Some(followed), _) => Ok(followed),
            (_, _, Some(e)) => Err(Error::new(
                e.kind(),
                format!("follower is in error: {}", e.message()),
            )),
            (status, _, None) => Err(Error::new(
                ErrorKind::Refused,
                format!("follower is {status}"),
            )),
        },
        Ok(Err(_)) => Err(Error::new(ErrorKind::Stopped, "the follower has stopped")),
        Err(_) => {
            let s = state.borrow();
            let why = s
                .error
                .as_ref()
                .map(|e| format!("; last error: {}", e.message()))
                .unwrap_or_default();
            Err(Error::new(
                ErrorKind::Timeout,
                format!("not ready after {timeout:?}: status {}{why}", s.status),
            ))
        }
    }
}
