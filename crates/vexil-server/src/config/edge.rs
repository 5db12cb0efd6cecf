//! `vexil edge` configuration: where upstream is, the server keys of the
//! environments to follow, the cache directory, and the flags shared with
//! `vexil serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{LogFormat, PlaneArgs, PlaneConfig};
use crate::Error;

/// Flags of `vexil edge`.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// Address to listen on.
    #[arg(long, env = "VEXIL_LISTEN", default_value = "127.0.0.1:8090")]
    pub(crate) listen: SocketAddr,
    /// The server or edge to follow (`http://host:port`).
    #[arg(long, env = "VEXIL_UPSTREAM")]
    pub(crate) upstream: String,
    /// A server key of an environment to serve (repeat for several
    /// environments); it reads the environment's rules upstream.
    #[arg(
        long = "key",
        env = "VEXIL_EDGE_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "SERVER_KEY",
        required = true
    )]
    pub(crate) keys: Vec<String>,
    /// Directory for the last known state of each environment, served when
    /// the edge starts while upstream is unreachable.
    #[arg(long, env = "VEXIL_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// How often to poll the snapshot while the stream fails, in
    /// milliseconds.
    #[arg(long, env = "VEXIL_POLL_INTERVAL_MS", default_value_t = 5_000)]
    pub(crate) poll_interval_ms: u64,
    /// The longest wait between two attempts to reach upstream, in
    /// milliseconds (attempts back off from 500 ms, with jitter).
    #[arg(long, env = "VEXIL_BACKOFF_MAX_MS", default_value_t = 30_000)]
    pub(crate) backoff_max_ms: u64,
    /// Bounds and settings of the HTTP server and the data plane.
    #[command(flatten)]
    pub(crate) plane: PlaneArgs,
    /// Log format.
    #[arg(long, env = "VEXIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Validated edge configuration.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub(crate) listen: SocketAddr,
    /// Without a trailing slash.
    pub(crate) upstream: String,
    pub(crate) keys: Vec<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) poll_interval: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) plane: PlaneConfig,
    /// Where wall-clock time comes from.
    pub(crate) clock: std::sync::Arc<dyn crate::Clock>,
}

impl EdgeConfig {
    /// The address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The same configuration reading the wall clock from `clock`.
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl EdgeArgs {
    /// Checks the flags and builds the configuration.
    pub fn into_config(self) -> Result<EdgeConfig, Error> {
        let upstream = self.upstream.trim_end_matches('/').to_owned();
        ensure!(
            (upstream.starts_with("http://") || upstream.starts_with("https://"))
                && upstream.len() > "https://".len()
                && !upstream.contains(['?', '#']),
            "--upstream must be an http:// or https:// URL without query or fragment, got `{}`",
            self.upstream
        );
        let mut keys: Vec<String> = Vec::new();
        for k in &self.keys {
            let k = k.trim();
            ensure!(!k.is_empty(), "--key must not be empty");
            ensure!(
                !keys.iter().any(|seen| seen == k),
                "--key: the same key is given twice"
            );
            keys.push(k.to_owned());
        }
        ensure!(!keys.is_empty(), "--key: at least one server key is needed");
        ensure!(
            (100..=3_600_000).contains(&self.poll_interval_ms),
            "--poll-interval-ms must be between 100 and 3600000"
        );
        ensure!(
            (500..=3_600_000).contains(&self.backoff_max_ms),
            "--backoff-max-ms must be between 500 and 3600000"
        );
        Ok(EdgeConfig {
            listen: self.listen,
            upstream,
            keys,
            cache_dir: self.cache_dir,
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            plane: self.plane.check()?,
            clock: std::sync::Arc::new(crate::SystemClock),
        })
    }
}

impl std::fmt::Display for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  listen          {}", self.listen)?;
        writeln!(
            f,
            "  upstream        {}",
            super::banner::mask_url(&self.upstream)
        )?;
        writeln!(
            f,
            "  environments    {} (server keys ****)",
            self.keys.len()
        )?;
        match &self.cache_dir {
            Some(dir) => writeln!(f, "  cache           {}", dir.display())?,
            None => writeln!(f, "  cache           none (a restart needs upstream)")?,
        }
        writeln!(
            f,
            "  poll interval   {} ms, back-off up to {} ms",
            self.poll_interval.as_millis(),
            self.backoff_max.as_millis()
        )?;
        super::banner::plane(f, &self.plane)
    }
}
