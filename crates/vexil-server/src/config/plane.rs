//! The flags `vexil serve` and `vexil edge` share: the HTTP server's
//! bounds (connections, headers, bodies, inactivity), the data plane's rate
//! limits and in-flight bound, its streams and its public URL.

use std::time::Duration;

use super::grpc::{FlagdBucketing, GrpcArgs, GrpcConfig};
use crate::Error;
use crate::http::HttpLimits;

/// The HTTP server's and the data plane's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PlaneArgs {
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "VEXIL_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub(crate) max_body_bytes: usize,
    /// Requests per second per server key (0: unlimited).
    #[arg(long, env = "VEXIL_RATE_LIMIT_SERVER", default_value_t = 10_000.0)]
    pub(crate) rate_limit_server: f64,
    /// Requests per second per client key, shared by every browser using it
    /// (0: unlimited).
    #[arg(long, env = "VEXIL_RATE_LIMIT_CLIENT", default_value_t = 100_000.0)]
    pub(crate) rate_limit_client: f64,
    /// Requests in flight at once before new ones are refused with 503.
    #[arg(long, env = "VEXIL_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub(crate) max_in_flight: usize,
    /// SSE events kept per environment for subscribers that fall behind; a
    /// subscriber further behind is dropped and reconnects.
    #[arg(long, env = "VEXIL_STREAM_BUFFER", default_value_t = 256)]
    pub(crate) stream_buffer: usize,
    /// Time a client has to send a request's headers, in milliseconds; an
    /// idle keep-alive connection is closed after the same time.
    #[arg(long, env = "VEXIL_HEADER_TIMEOUT_MS", default_value_t = 30_000)]
    pub(crate) header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers
    /// arrived, in milliseconds; slower bodies are answered 408.
    #[arg(long, env = "VEXIL_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) body_timeout_ms: u64,
    /// A connection that reads and writes nothing for this long is closed,
    /// in milliseconds (SSE streams send heartbeats well within it).
    #[arg(long, env = "VEXIL_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub(crate) idle_timeout_ms: u64,
    /// Open connections at once; more are answered 503 and closed (0: the
    /// open-file limit less a reserve for the store and files).
    #[arg(long, env = "VEXIL_MAX_CONNECTIONS", default_value_t = 0)]
    pub(crate) max_connections: usize,
    /// The URL clients reach this server at (e.g. `https://flags.example.com`),
    /// for the absolute URLs it hands out; without it they are relative.
    #[arg(long, env = "VEXIL_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Idle SSE streams get a comment this often, in milliseconds; must be
    /// well below --idle-timeout-ms.
    #[arg(long, env = "VEXIL_HEARTBEAT_MS", default_value_t = 15_000)]
    pub(crate) heartbeat_ms: u64,
    /// flagd's gRPC services.
    #[command(flatten)]
    pub(crate) grpc: GrpcArgs,
}

/// The HTTP server's bounds and the data plane's settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct PlaneConfig {
    /// Bounds of connections and requests (`max_connections` 0: automatic).
    pub(crate) http: HttpLimits,
    pub(crate) rate_limit_server: f64,
    pub(crate) rate_limit_client: f64,
    pub(crate) max_in_flight: usize,
    pub(crate) stream_buffer: usize,
    /// Idle SSE streams get a comment this often.
    pub(crate) heartbeat: Duration,
    /// Where clients reach this server, without a trailing slash.
    pub(crate) public_url: Option<String>,
    /// The gRPC listener, when configured.
    pub(crate) grpc: Option<GrpcConfig>,
    /// `--flagd-bucketing`, kept when gRPC is off too: the admin flag view
    /// says which flags in-process flagd providers would get.
    pub(crate) flagd_bucketing: FlagdBucketing,
}

impl PlaneArgs {
    /// Checks the flags.
    pub(crate) fn check(self) -> Result<PlaneConfig, Error> {
        ensure!(
            self.max_body_bytes >= 1024,
            "--max-body-bytes must be at least 1024"
        );
        for (name, ms) in [
            ("--header-timeout-ms", self.header_timeout_ms),
            ("--body-timeout-ms", self.body_timeout_ms),
            ("--idle-timeout-ms", self.idle_timeout_ms),
        ] {
            ensure!(
                (100..=3_600_000).contains(&ms),
                "{name} must be between 100 and 3600000"
            );
        }
        ensure!(
            self.heartbeat_ms >= 100 && self.heartbeat_ms * 2 <= self.idle_timeout_ms,
            "--heartbeat-ms must be at least 100 and at most half of --idle-timeout-ms, or idle streams would be cut"
        );
        ensure!(
            self.stream_buffer >= 1,
            "--stream-buffer must be at least 1"
        );
        let flagd_bucketing = self.grpc.flagd_bucketing;
        let grpc = self.grpc.check()?;
        let public_url = match self.public_url {
            Some(url) => Some(public_url(&url)?),
            None => None,
        };
        Ok(PlaneConfig {
            http: HttpLimits {
                header_timeout: Duration::from_millis(self.header_timeout_ms),
                body_timeout: Duration::from_millis(self.body_timeout_ms),
                idle_timeout: Duration::from_millis(self.idle_timeout_ms),
                max_connections: self.max_connections,
                max_body_bytes: self.max_body_bytes,
            },
            rate_limit_server: self.rate_limit_server,
            rate_limit_client: self.rate_limit_client,
            max_in_flight: self.max_in_flight,
            stream_buffer: self.stream_buffer,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            public_url,
            grpc,
            flagd_bucketing,
        })
    }
}

/// Checks a `--public-url`: `http://` or `https://`, a host, no query or
/// fragment; returned without a trailing slash.
fn public_url(url: &str) -> Result<String, Error> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::Config(format!(
                "--public-url must start with http:// or https://, got `{url}`"
            ))
        })?;
    let host = rest.split('/').next().unwrap_or("");
    ensure!(
        !host.is_empty()
            && !url.contains(['?', '#', '@'])
            && url.bytes().all(|b| b.is_ascii_graphic()),
        "--public-url must be an absolute URL with a host and without query, fragment or credentials, got `{url}`"
    );
    Ok(url.trim_end_matches('/').to_owned())
}
