//! The follower's task: download, follow the stream, apply, reconnect,
//! poll. One task per followed environment; it owns every piece of
//! progress (the version held, a refused version, the keys, the back-off)
//! and publishes through the shared slot, the state's watch and the
//! updates' broadcast, in that order.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use vexil_protocol::event::{ChangeEvent, Event, KeysEvent, SnapshotEvent};
use vexil_protocol::sse::Decoder;

use super::backoff::Backoff;
use super::{FollowerConfig, Sequenced, State, Status, Update};
use crate::error::{Error, ErrorKind};
use crate::followed::{Followed, Origin};
use crate::slot::Slot;

/// The two ways to the upstream, which may fail apart (a proxy that
/// cuts long-lived connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `GET /api/v1/stream`.
    Stream = 0,
    /// `GET /api/v1/snapshot`.
    Download = 1,
}

/// What became of a change event.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    /// Accepted: the version it produced is served.
    Accepted,
    /// Already covered by what is held (or refused): skipped.
    Old,
    /// Does not continue the version held: download the snapshot.
    Gap,
    /// Did not compile: refused, the last good version keeps serving.
    Refused,
}

pub(super) struct Task {
    config: FollowerConfig,
    http: reqwest::Client,
    snapshot_url: String,
    keys_url: String,
    stream_url: String,
    auth: HeaderValue,
    current: Arc<Slot>,
    state: watch::Sender<State>,
    updates: broadcast::Sender<Sequenced>,
    /// The version served (also in `current`).
    held: Option<Arc<Followed>>,
    /// The latest keys event, carried into every new version.
    keys: Option<Arc<KeysEvent>>,
    /// The newest version refused while no later one was accepted.
    refused_version: Option<i64>,
    /// The stream is open (or was, and has not failed to reopen since).
    stream_ok: bool,
    /// The last download worked, since the stream last opened: polls
    /// keep the follower ready while the stream cannot be followed.
    download_ok: bool,
    /// The upstream's last answer refused the key or the URL.
    refused_by_upstream: bool,
    /// A failure of the stream (0) or of downloads (1) was logged as a
    /// warning and that path has not worked since: later failures are
    /// logged at debug level.
    failing: [bool; 2],
    backoff: Backoff,
    /// When to poll next while the stream fails (`None` while it works).
    next_poll: Option<Instant>,
    /// Whether the stream is to be tried before a polled snapshot is
    /// taken: when a poll finds the upstream back with a newer version,
    /// the stream resumes after the version held (only the missed changes
    /// travel); the snapshot is taken only if that resume fails too.
    resume_first: bool,
    /// The upstream asked not to be called before this (`Retry-After` on
    /// a 429 or 503): neither the stream nor a poll is tried earlier.
    not_before: Option<Instant>,
    /// The `ETag` of the keys last polled; `None` before, and for good
    /// once the upstream said it has no such route (an older server).
    keys_etag: Option<String>,
    keys_unpolled: bool,
    seq: u64,
}

impl Task {
    pub(super) fn new(
        config: FollowerConfig,
        current: Arc<Slot>,
        state: watch::Sender<State>,
        updates: broadcast::Sender<Sequenced>,
    ) -> Result<Task, Error> {
        let base = base_url(&config.upstream)?;
        let auth = HeaderValue::from_str(&format!("Bearer {}", config.key)).map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                "the key cannot be sent in a header (it has characters HTTP headers cannot carry)",
                e,
            )
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("vexil-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::with_source(ErrorKind::Config, "cannot build the HTTP client", e)
            })?;
        let held = config.initial.clone();
        let keys = held.as_ref().and_then(|f| f.keys().cloned());
        Ok(Task {
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
            snapshot_url: format!("{base}/api/v1/snapshot"),
            keys_url: format!("{base}/api/v1/snapshot/keys"),
            stream_url: format!("{base}/api/v1/stream"),
            auth,
            http,
            current,
            state,
            updates,
            held,
            keys,
            refused_version: None,
            stream_ok: false,
            download_ok: false,
            refused_by_upstream: false,
            failing: [false; 2],
            next_poll: None,
            resume_first: true,
            not_before: None,
            keys_etag: None,
            keys_unpolled: false,
            seq: 0,
            config,
        })
    }

    pub(super) async fn run(mut self) {
        loop {
            if !self.holds_upstream_version() {
                if let Err(e) = self.download().await {
                    self.failed(Path::Download, e);
                    self.wait(false).await;
                    continue;
                }
                if !self.holds_upstream_version() {
                    // Downloaded, and refused: try again later.
                    self.wait(false).await;
                    continue;
                }
            }
            match self.follow().await {
                Ok(()) => {
                    tracing::debug!(upstream = %self.config.upstream, "stream ended; reconnecting")
                }
                Err(e) => self.failed(Path::Stream, e),
            }
            self.state.send_modify(|s| s.reconnects += 1);
            self.wait(true).await;
        }
    }

    /// Whether what is held is one of the upstream's versions (or the
    /// upstream's newest was refused): the stream can resume after it.
    fn holds_upstream_version(&self) -> bool {
        self.position().is_some()
    }

    /// The version to resume after: the newest held or refused upstream
    /// version.
    fn position(&self) -> Option<i64> {
        let held = self
            .held
            .as_ref()
            .filter(|f| f.is_resumable())
            .map(|f| f.version());
        match (held, self.refused_version) {
            (Some(h), Some(r)) => Some(h.max(r)),
            (h, r) => h.or(r),
        }
    }

    /// Sleeps through the next back-off delay; with `poll`, downloads the
    /// snapshot every poll interval meanwhile (the stream is failing).
    async fn wait(&mut self, poll: bool) {
        let mut until = Instant::now() + self.backoff.next_delay();
        if let Some(not_before) = self.not_before.take() {
            until = until.max(not_before);
            if let Some(p) = self.next_poll.as_mut() {
                *p = (*p).max(not_before);
            }
        }
        loop {
            let poll_at = if poll {
                *self
                    .next_poll
                    .get_or_insert_with(|| Instant::now() + self.config.poll_interval)
            } else {
                until
            };
            if poll_at >= until {
                tokio::time::sleep_until(until).await;
                return;
            }
            tokio::time::sleep_until(poll_at).await;
            self.next_poll = Some(Instant::now() + self.config.poll_interval);
            let apply = !(self.resume_first && self.holds_upstream_version());
            match self.download_if(apply).await {
                Err(e) => self.failed(Path::Download, e),
                // The upstream is back with something new: resume the
                // stream now rather than download the whole environment.
                Ok(Downloaded::NewerNotTaken) => {
                    self.resume_first = false;
                    return;
                }
                Ok(_) => {
                    // Who may read the environment travels on the stream;
                    // while it fails, it is polled too.
                    if let Err(e) = self.poll_keys().await {
                        tracing::debug!(upstream = %self.config.upstream, error = %e, "cannot poll the keys");
                    }
                }
            }
        }
    }

    // --- talking to the upstream ------------------------------------------

    /// `GET /api/v1/snapshot`, with `If-None-Match` when a version is
    /// held; installs a newer version (or refuses it).
    async fn download(&mut self) -> Result<(), Error> {
        self.download_if(true).await.map(|_| ())
    }

    /// As [`Task::download`]; without `apply`, a newer version is left for
    /// the stream to bring.
    async fn download_if(&mut self, apply: bool) -> Result<Downloaded, Error> {
        let mut req = self
            .http
            .get(&self.snapshot_url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(self.config.request_timeout);
        let position = self.position();
        if let Some(p) = position {
            req = req.header(IF_NONE_MATCH, format!("\"{p}\""));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unavailable("cannot download the snapshot", e))?;
        match resp.status() {
            StatusCode::NOT_MODIFIED => {
                self.reached(Path::Download);
                return Ok(Downloaded::Current);
            }
            StatusCode::OK => {}
            status => {
                self.note_retry_after(status, resp.headers());
                return Err(status_error(status, "snapshot"));
            }
        }
        let version = version_of(resp.headers()).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                "snapshot answer names no version (no `x-vexil-version` or ETag)",
            )
        })?;
        if position.is_some_and(|p| version <= p) {
            self.reached(Path::Download);
            // Not newer than what is held: another server behind the same
            // address may lag; the stream will bring what is new.
            return Ok(Downloaded::Current);
        }
        if !apply {
            return Ok(Downloaded::NewerNotTaken);
        }
        let body = read_limited(resp, self.config.max_document_bytes).await?;
        self.reached(Path::Download);
        self.accept_snapshot(version, body).await;
        Ok(Downloaded::Taken)
    }

    /// `GET /api/v1/snapshot/keys` with `If-None-Match`: takes changed
    /// keys as the stream's `keys` event. An upstream without the route
    /// (404) is not asked again.
    async fn poll_keys(&mut self) -> Result<(), Error> {
        if self.keys_unpolled {
            return Ok(());
        }
        let mut req = self
            .http
            .get(&self.keys_url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(self.config.request_timeout);
        if let Some(etag) = &self.keys_etag {
            req = req.header(IF_NONE_MATCH, etag.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unavailable("cannot poll the keys", e))?;
        match resp.status() {
            StatusCode::NOT_MODIFIED => return Ok(()),
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                self.keys_unpolled = true;
                return Ok(());
            }
            status => {
                self.note_retry_after(status, resp.headers());
                return Err(status_error(status, "keys route"));
            }
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(resp, self.config.max_document_bytes).await?;
        let keys: KeysEvent = serde_json::from_slice(&body).map_err(|e| {
            Error::with_source(ErrorKind::Protocol, "the keys route answered no keys", e)
        })?;
        self.keys_etag = etag;
        self.accept_keys(keys);
        Ok(())
    }

    /// Keeps a `Retry-After` of a 429 or 503 (in seconds; an HTTP date is
    /// not read), bounded by [`MAX_RETRY_AFTER`] so that a wrong header
    /// cannot silence the follower for long.
    fn note_retry_after(&mut self, status: StatusCode, headers: &reqwest::header::HeaderMap) {
        if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
            return;
        }
        let seconds = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(s) = seconds {
            let wait = Duration::from_secs(s).min(MAX_RETRY_AFTER);
            tracing::debug!(upstream = %self.config.upstream, seconds = s, "upstream asked to retry later");
            self.not_before = Some(Instant::now() + wait);
        }
    }

    /// Follows the stream until it ends (`Ok`) or fails.
    async fn follow(&mut self) -> Result<(), Error> {
        let mut req = self
            .http
            .get(&self.stream_url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "text/event-stream");
        if let Some(p) = self.position() {
            req = req.header("last-event-id", p.to_string());
        }
        let mut resp = tokio::time::timeout(self.config.request_timeout, req.send())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the stream did not answer within {:?}",
                        self.config.request_timeout
                    ),
                )
            })?
            .map_err(|e| unavailable("cannot open the stream", e))?;
        if resp.status() != StatusCode::OK {
            self.note_retry_after(resp.status(), resp.headers());
            return Err(status_error(resp.status(), "stream"));
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return Err(Error::new(
                ErrorKind::Protocol,
                "the stream answered without `content-type: text/event-stream`",
            ));
        }
        self.reached(Path::Stream);
        self.next_poll = None;
        self.resume_first = true;
        let mut decoder = Decoder::with_limit(self.config.max_document_bytes);
        loop {
            let chunk =
                match tokio::time::timeout(self.config.stream_idle_timeout, resp.chunk()).await {
                    Err(_) => {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            format!(
                                "the stream was silent for {:?}: taken for dead",
                                self.config.stream_idle_timeout
                            ),
                        ));
                    }
                    Ok(Err(e)) => return Err(unavailable("the stream broke", e)),
                    Ok(Ok(None)) => return Ok(()),
                    Ok(Ok(Some(chunk))) => chunk,
                };
            self.backoff.reset();
            self.touch();
            decoder.feed(&chunk);
            while let Some(frame) = decoder.next_frame() {
                let event = frame.and_then(Event::from_frame).map_err(|e| {
                    Error::with_source(ErrorKind::Protocol, format!("bad stream event: {e}"), e)
                })?;
                match event {
                    Event::Snapshot(snapshot) => self.accept_stream_snapshot(snapshot).await,
                    Event::Change(change) => {
                        let version = change.version;
                        if self.accept_change(change).await == Applied::Gap {
                            self.fill_gap(version).await?;
                        }
                    }
                    Event::Keys(keys) => self.accept_keys(keys),
                    _ => {}
                }
            }
        }
    }

    /// A change event did not continue the version held: download the
    /// snapshot. When even that is older than the event, the stream is
    /// dropped and resumed from what is held.
    async fn fill_gap(&mut self, version: i64) -> Result<(), Error> {
        tracing::info!(
            held = ?self.held.as_ref().map(|f| f.version()),
            version,
            "a change does not continue the version held; downloading the snapshot"
        );
        self.download().await?;
        if self.position().is_none_or(|p| p < version) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("the snapshot downloaded is older than version {version} of the stream"),
            ));
        }
        Ok(())
    }

    // --- accepting versions -----------------------------------------------

    /// A downloaded snapshot newer than what is held.
    async fn accept_snapshot(&mut self, version: i64, json: Bytes) {
        let keys = self.keys.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            Followed::from_json(version, Origin::Upstream, json, keys)
        })
        .await;
        match compiled {
            Ok(Ok(followed)) => self.install_snapshot(followed),
            Ok(Err(e)) => self.refuse(version, e),
            Err(e) => self.refuse(version, compile_panicked(version, e)),
        }
    }

    /// A stream's snapshot event: the upstream's whole state, taken
    /// whatever its version (the upstream sends one when it cannot resume
    /// from the version held, e.g. after its database was replaced), unless
    /// it is exactly what is held.
    async fn accept_stream_snapshot(&mut self, snapshot: SnapshotEvent) {
        let SnapshotEvent { version, document } = snapshot;
        if let Some(held) = self.held.as_ref().filter(|f| f.is_resumable())
            && held.version() == version
            && held
                .json()
                .is_ok_and(|json| json.as_ref() == document.as_bytes())
        {
            return;
        }
        self.accept_snapshot(version, Bytes::from(document)).await;
    }

    fn install_snapshot(&mut self, followed: Followed) {
        if let Some(held) = self.held.as_ref().filter(|f| f.is_resumable())
            && followed.version() < held.version()
        {
            tracing::warn!(
                held = held.version(),
                version = followed.version(),
                "the upstream went back to an older version; following it"
            );
        }
        self.refused_version = None;
        let followed = Arc::new(followed);
        self.install(Some(followed.clone()), Update::Snapshot(followed));
    }

    async fn accept_change(&mut self, change: ChangeEvent) -> Applied {
        if self.position().is_some_and(|p| change.version <= p) {
            return Applied::Old;
        }
        let Some(held) = self.held.clone().filter(|f| f.is_resumable()) else {
            return Applied::Gap;
        };
        if self.refused_version.is_some() || change.version != held.version() + 1 {
            return Applied::Gap;
        }
        let change = Arc::new(change);
        let event = change.clone();
        let version = change.version;
        let keep_json = self.config.keep_json;
        // A small environment compiles in well under a millisecond: on
        // this task, without the hop to a blocking thread (which, with
        // many followers in one process, costs more than the work).
        let inline =
            held.document().flags.len() + held.document().segments.len() <= INLINE_APPLY_ITEMS;
        let apply = move || {
            let followed = held.apply(&change)?;
            if keep_json {
                followed.json()?;
            }
            Ok::<_, Error>(followed)
        };
        let applied = if inline {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(apply))
                .map_err(|_| compile_panicked_inline(version))
        } else {
            tokio::task::spawn_blocking(apply)
                .await
                .map_err(|e| compile_panicked(version, e))
        };
        match applied {
            Ok(Ok(followed)) => {
                let followed = Arc::new(followed);
                tracing::debug!(version, "change applied");
                self.install(Some(followed.clone()), Update::Change { followed, event });
                Applied::Accepted
            }
            Ok(Err(e)) => {
                self.refuse(version, e);
                Applied::Refused
            }
            Err(e) => {
                self.refuse(version, e);
                Applied::Refused
            }
        }
    }

    fn accept_keys(&mut self, keys: KeysEvent) {
        if self.keys.as_deref() == Some(&keys) {
            return;
        }
        let keys = Arc::new(keys);
        self.keys = Some(keys.clone());
        let followed = self
            .held
            .as_ref()
            .map(|f| Arc::new(f.with_keys(keys.clone())));
        self.install(followed, Update::Keys(keys));
    }

    fn refuse(&mut self, version: i64, error: Error) {
        tracing::error!(
            upstream = %self.config.upstream,
            version,
            error = %error,
            "an upstream version was refused; the last good version keeps serving"
        );
        self.refused_version = Some(self.refused_version.map_or(version, |r| r.max(version)));
        let refused_version = self.refused_version;
        let error = Arc::new(error);
        self.publish(|s| {
            s.refused += 1;
            s.refused_version = refused_version;
            s.error = Some(error);
        });
    }

    // --- publishing -------------------------------------------------------

    /// Serves `followed` (when given) and announces `update`: the slot
    /// first, then the state, then the broadcast, so that a consumer that
    /// reads the state after lagging never misses what it reflects.
    fn install(&mut self, followed: Option<Arc<Followed>>, update: Update) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(f) = &followed {
            self.held = Some(f.clone());
            self.current.store(Some(f.clone()));
        }
        let refused_version = self.refused_version;
        self.publish(|s| {
            if let Some(f) = followed {
                s.followed = Some(f);
            }
            s.refused_version = refused_version;
            if refused_version.is_none()
                && s.error
                    .as_ref()
                    .is_some_and(|e| e.kind() == ErrorKind::Invalid)
            {
                s.error = None;
            }
            s.seq = seq;
        });
        let _ = self.updates.send(Sequenced { seq, update });
    }

    /// Changes the state and recomputes the status from what the task
    /// knows; watchers are told.
    fn publish(&self, change: impl FnOnce(&mut State)) {
        let status = self.status();
        self.state.send_modify(|s| {
            change(s);
            s.status = status;
            if status == Status::Ready {
                s.error = None;
            }
        });
    }

    fn status(&self) -> Status {
        if self.refused_by_upstream {
            return Status::Error;
        }
        match &self.held {
            None if self.refused_version.is_some() => Status::Error,
            None => Status::NotReady,
            Some(_) if (self.stream_ok || self.download_ok) && self.refused_version.is_none() => {
                Status::Ready
            }
            Some(_) => Status::Stale,
        }
    }

    /// The upstream answered as it should, on `path`.
    fn reached(&mut self, path: Path) {
        if std::mem::take(&mut self.failing[path as usize]) {
            tracing::info!(upstream = %self.config.upstream, path = ?path, "upstream reached again");
        }
        match path {
            Path::Stream => {
                self.stream_ok = true;
                // From now on the stream says whether the upstream is
                // there; an old download says nothing.
                self.download_ok = false;
            }
            Path::Download => self.download_ok = true,
        }
        self.refused_by_upstream = false;
        let now = SystemTime::now();
        self.publish(|s| s.last_contact = Some(now));
    }

    /// The upstream sent something: note the time without waking
    /// watchers.
    fn touch(&self) {
        let now = SystemTime::now();
        self.state.send_if_modified(|s| {
            s.last_contact = Some(now);
            false
        });
    }

    fn failed(&mut self, path: Path, error: Error) {
        if std::mem::replace(&mut self.failing[path as usize], true) {
            tracing::debug!(upstream = %self.config.upstream, path = ?path, error = %error, "still cannot reach the upstream");
        } else {
            tracing::warn!(upstream = %self.config.upstream, path = ?path, error = %error, "cannot reach the upstream; retrying");
        }
        match path {
            Path::Stream => self.stream_ok = false,
            Path::Download => self.download_ok = false,
        }
        self.refused_by_upstream = error.kind() == ErrorKind::Refused;
        if self.refused_by_upstream {
            self.backoff.exhaust();
        }
        let error = Arc::new(error);
        self.publish(|s| s.error = Some(error));
    }
}

/// The upstream's base URL without a trailing `/`; plain HTTP only.
/// What a download found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Downloaded {
    /// Nothing newer than what is held.
    Current,
    /// A newer version, installed (or refused).
    Taken,
    /// A newer version, left for the stream (not downloaded whole).
    NewerNotTaken,
}

fn base_url(upstream: &str) -> Result<String, Error> {
    let url = reqwest::Url::parse(upstream).map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("upstream URL `{upstream}` is not a URL"),
            e,
        )
    })?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "upstream URL `{upstream}`: https is not supported yet (TLS is not built into this SDK); use http, or a local TLS-terminating proxy"
                ),
            ));
        }
        other => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("upstream URL `{upstream}`: scheme `{other}` is not http"),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("upstream URL `{upstream}` has a query or fragment; give the base URL"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The version a snapshot answer names: `x-vexil-version`, else the ETag.
fn version_of(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    if let Some(v) = headers.get("x-vexil-version").and_then(|v| v.to_str().ok()) {
        return v.trim().parse().ok();
    }
    let etag = headers.get(ETAG)?.to_str().ok()?;
    etag.trim()
        .trim_start_matches("W/")
        .strip_prefix('"')?
        .strip_suffix('"')?
        .parse()
        .ok()
}

/// A response body, refused past `limit` bytes.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, Error> {
    let too_large = || {
        Error::new(
            ErrorKind::Protocol,
            format!("the snapshot is larger than the limit of {limit} bytes"),
        )
    };
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| unavailable("cannot read the snapshot", e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn unavailable(what: &str, e: reqwest::Error) -> Error {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    Error::with_source(ErrorKind::Unavailable, format!("{what}: {why}"), e)
}

fn status_error(status: StatusCode, what: &str) -> Error {
    let kind = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            ErrorKind::Refused
        }
        StatusCode::TOO_MANY_REQUESTS => ErrorKind::Unavailable,
        s if s.is_server_error() => ErrorKind::Unavailable,
        _ => ErrorKind::Protocol,
    };
    Error::new(kind, format!("the {what} answered {status}"))
}

fn compile_panicked(version: i64, e: tokio::task::JoinError) -> Error {
    Error::with_source(
        ErrorKind::Invalid,
        format!("compiling version {version} failed"),
        e,
    )
}

fn compile_panicked_inline(version: i64) -> Error {
    Error::new(
        ErrorKind::Invalid,
        format!("compiling version {version} failed (panicked)"),
    )
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Up to this many flags and segments, a change is applied on the
/// follower's task; above, on a blocking thread.
const INLINE_APPLY_ITEMS: usize = 64;

#[cfg(test)]
mod tests;
