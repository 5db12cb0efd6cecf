//! The HTTP/1.1 accept loop and the bounds every connection and request
//! has: a bound on open connections (refused with a clear 503 beyond it),
//! a time limit on a request's headers (which also closes idle keep-alive
//! connections), a time and size limit on its body, an inactivity limit on
//! the connection as a whole, and accept errors met with a back-off.
//!
//! One small hyper connection per client (SSE subscribers hold theirs for
//! long), drained gracefully at shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

mod body;
pub(crate) mod limits;
mod table;
mod watch;

use body::Bounded;
pub(crate) use table::Table;
use watch::{Activity, Watched};

/// What the accept loop serves: the application, and how a request is
/// refused before the application sees it (a body too large or too slow).
pub(crate) trait App: Clone + Send + Sync + 'static {
    /// Answers a request whose body has fully arrived.
    fn serve(
        self,
        parts: axum::http::request::Parts,
        body: axum::body::Bytes,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// A refusal in the error format of the routes `path` belongs to.
    fn refuse(
        &self,
        path: &str,
        status: StatusCode,
        code: &'static str,
        message: &str,
    ) -> Response<Body>;
}

/// The bounds of connections and requests.
#[derive(Debug, Clone)]
pub(crate) struct HttpLimits {
    /// Time a client has to send a request's headers, counted from when the
    /// connection is ready for the next request: it also closes keep-alive
    /// connections that stay idle.
    pub(crate) header_timeout: Duration,
    /// Time a client has to send a request's body, from its headers on.
    pub(crate) body_timeout: Duration,
    /// A connection on which nothing was read or written for this long is
    /// closed. SSE streams write a heartbeat well within it, so only a
    /// stream whose client stopped reading is cut.
    pub(crate) idle_timeout: Duration,
    /// Open connections at once; more are answered 503 and closed.
    pub(crate) max_connections: usize,
    /// Largest accepted request body.
    pub(crate) max_body_bytes: usize,
}

/// Connection counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ConnMetrics {
    pub(crate) open: AtomicU64,
    pub(crate) accepted: AtomicU64,
    /// Refused because `max_connections` were open.
    pub(crate) refused: AtomicU64,
    /// Closed by the inactivity limit.
    pub(crate) idle_closed: AtomicU64,
    /// Requests whose body did not arrive in time.
    pub(crate) body_timeouts: AtomicU64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub(crate) accept_errors: AtomicU64,
}

impl ConnMetrics {
    /// Appends the connection series in Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let series = [
            (
                "vexil_http_connections_open",
                "gauge",
                "Open client connections.",
                &self.open,
            ),
            (
                "vexil_http_connections_accepted_total",
                "counter",
                "Client connections accepted.",
                &self.accepted,
            ),
            (
                "vexil_http_connections_refused_total",
                "counter",
                "Connections refused because the connection limit was reached.",
                &self.refused,
            ),
            (
                "vexil_http_connections_idle_closed_total",
                "counter",
                "Connections closed after moving no bytes for the idle timeout.",
                &self.idle_closed,
            ),
            (
                "vexil_http_body_timeouts_total",
                "counter",
                "Requests answered 408 because their body did not arrive in time.",
                &self.body_timeouts,
            ),
            (
                "vexil_http_accept_errors_total",
                "counter",
                "Failed accept calls (e.g. out of file descriptors).",
                &self.accept_errors,
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }
}

/// Serves `app` until `shutdown` completes, then drains open connections.
pub(crate) async fn serve<A: App>(
    listener: TcpListener,
    app: A,
    limits: HttpLimits,
    metrics: Arc<ConnMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    // Refusals are written by tasks of their own; bound those too.
    let refusing = Arc::new(Semaphore::new(256));
    let limits = Arc::new(limits);
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(e) => {
                    metrics.accept_errors.fetch_add(1, Ordering::Relaxed);
                    backoff.failed(&e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics.refused.fetch_add(1, Ordering::Relaxed);
            refuse(stream, &refusing);
            continue;
        };
        metrics.accepted.fetch_add(1, Ordering::Relaxed);
        metrics.open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let service = Bounded {
            app: app.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(8192)
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        let idle = limits.idle_timeout;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                _ = activity.idle_for(idle) => {
                    metrics.idle_closed.fetch_add(1, Ordering::Relaxed);
                }
            }
            metrics.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    graceful.shutdown().await;
}

/// Answers a connection beyond the limit with a short 503 and closes it.
/// The answer goes out at once (a new socket's send buffer has room for
/// it); then, if a slot is free, a task reads and discards what the client
/// still sends for up to a second before closing, so that closing with
/// unread data (a TCP reset) does not destroy the answer on its way.
fn refuse(stream: TcpStream, refusing: &Arc<Semaphore>) {
    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 111\r\n\r\n{\"code\":\"too_many_connections\",\"message\":\"the server has reached its limit of open connections; retry shortly\"}";
    // Without a slot: one attempt, no waiting (the socket may not even be
    // known writable yet).
    let written = stream.try_write(ANSWER).unwrap_or(0);
    let Ok(slot) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let _slot = slot;
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&ANSWER[written..]))
            .await;
        let _ = stream.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut sink = [0u8; 1024];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    });
}

/// Back-off after failed `accept` calls, so that running out of file
/// descriptors neither spins nor floods the log: waits grow from 10 ms to
/// one second, and at most one log line is written every five seconds.
#[derive(Default)]
struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    async fn failed(&mut self, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(5))
        {
            tracing::warn!(error = %e, suppressed = self.suppressed, "accept failed; backing off");
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        self.delay = (self.delay * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::time::sleep(self.delay).await;
    }
}
