//! `vexil serve` configuration: command-line flags with `VEXIL_*`
//! environment fallbacks, validated once and passed down.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::Error;
use banner::mask_url;

/// Refuses the configuration with a message naming the flag.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(Error::Config(format!($($arg)*)))
    };
}

/// Refuses the configuration unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            bail!($($arg)*);
        }
    };
}

mod banner;
mod edge;
mod grpc;
mod plane;
mod ui;

pub use edge::{EdgeArgs, EdgeConfig};
pub(crate) use grpc::GrpcConfig;
pub use grpc::{FlagdBucketing, GrpcArgs};
pub use plane::PlaneArgs;
pub(crate) use plane::PlaneConfig;
pub use ui::UiArgs;
pub(crate) use ui::UiConfig;

/// Flags of `vexil serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VEXIL_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Directory of the embedded SQLite store (used without --database-url).
    #[arg(long, env = "VEXIL_DATA_DIR", default_value = "./vexil-data")]
    pub(crate) data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…); several servers may share one database.
    #[arg(long, env = "VEXIL_DATABASE_URL", conflicts_with = "flags")]
    pub(crate) database_url: Option<String>,
    /// Serve read-only from this flag file (native or flagd, JSON or YAML),
    /// watched for changes, instead of a store.
    #[arg(long, env = "VEXIL_FLAGS")]
    pub(crate) flags: Option<PathBuf>,
    /// Admin key to accept (created in the store on first start). Without
    /// it, a random admin key is created on first start and printed once.
    #[arg(long, env = "VEXIL_ADMIN_KEY", hide_env_values = true)]
    pub(crate) admin_key: Option<String>,
    /// With --flags: a server key to accept for evaluation and rule
    /// delivery (at least 16 characters; repeat for several). Kept in memory
    /// as a hash only.
    #[arg(
        long = "server-key",
        env = "VEXIL_SERVER_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) server_keys: Vec<String>,
    /// With --flags: a client key to accept for evaluated values (browsers,
    /// mobile; at least 16 characters; repeat for several). Kept in memory
    /// as a hash only.
    #[arg(
        long = "client-key",
        env = "VEXIL_CLIENT_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) client_keys: Vec<String>,
    /// Where the admin key came from, for the banner (set by `main`).
    #[arg(skip)]
    pub admin_key_source: AdminKeySource,
    /// How often to look for changes written by other servers sharing the
    /// database, in milliseconds.
    #[arg(long, env = "VEXIL_SYNC_INTERVAL_MS", default_value_t = 250)]
    pub(crate) sync_interval_ms: u64,
    /// Requests per second per admin key (0: unlimited).
    #[arg(long, env = "VEXIL_RATE_LIMIT_ADMIN", default_value_t = 100.0)]
    pub(crate) rate_limit_admin: f64,
    /// Admin requests taking longer are answered 503 (the data plane answers
    /// from memory and needs none).
    #[arg(long, env = "VEXIL_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub(crate) request_timeout_ms: u64,
    /// Bound on compiling an environment for one write, in milliseconds;
    /// a write that takes longer is stopped and refused with 503.
    #[arg(long, env = "VEXIL_COMPILE_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) compile_timeout_ms: u64,
    /// Log format.
    #[arg(long, env = "VEXIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Bounds and settings of the HTTP server and the data plane.
    #[command(flatten)]
    pub(crate) plane: PlaneArgs,
    /// The web UI's sign-in sessions.
    #[command(flatten)]
    pub(crate) ui: UiArgs,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the admin key of `vexil serve` came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AdminKeySource {
    /// None given.
    #[default]
    None,
    /// `--admin-key`.
    Flag,
    /// `VEXIL_ADMIN_KEY`.
    Env,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The embedded SQLite store in this directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database at this URL.
    Postgres(String),
    /// Read-only, from a watched flag file.
    File(PathBuf),
}

/// Validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) listen: SocketAddr,
    pub(crate) store: StoreConfig,
    pub(crate) admin_key: Option<String>,
    pub(crate) admin_key_source: AdminKeySource,
    /// Server and client keys of a flag file (empty otherwise).
    /// Evaluation keys of a flag file, as hashes (the admin key's hash is
    /// added when the server knows the key: it may be generated at start).
    pub(crate) file_keys: vexil_store::FileKeys,
    pub(crate) sync_interval: std::time::Duration,
    /// Requests per second per admin key (0: unlimited).
    pub(crate) rate_limit_admin: f64,
    pub(crate) request_timeout: std::time::Duration,
    /// The HTTP server's bounds and the data plane's settings.
    pub(crate) plane: PlaneConfig,
    /// Bound on compiling an environment for one write.
    pub(crate) compile_timeout: std::time::Duration,
    /// Where wall-clock time comes from.
    pub(crate) clock: std::sync::Arc<dyn crate::Clock>,
    /// The web UI's sessions.
    pub(crate) ui: UiConfig,
}

impl Config {
    /// The same configuration reading the wall clock from `clock` (tests
    /// set the time; the server uses the system's clock).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
}

impl ServeArgs {
    /// Checks the flags and builds the configuration.
    pub fn into_config(self) -> Result<Config, Error> {
        let store = match (self.database_url, self.flags) {
            (_, Some(file)) => StoreConfig::File(file),
            (Some(url), None)
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                StoreConfig::Postgres(url)
            }
            (Some(url), None) => bail!(
                "--database-url must be a postgres:// URL, got `{}`",
                mask_url(&url)
            ),
            (None, None) => StoreConfig::Sqlite(self.data_dir),
        };
        if let Some(k) = &self.admin_key
            && k.len() < 16
        {
            bail!(
                "{} must be at least 16 characters",
                match self.admin_key_source {
                    AdminKeySource::Flag => "--admin-key",
                    _ => "VEXIL_ADMIN_KEY",
                }
            );
        }
        let file_keys = file_keys(
            &store,
            &self.admin_key,
            &self.server_keys,
            &self.client_keys,
        )?;
        ensure!(
            (10..=60_000).contains(&self.sync_interval_ms),
            "--sync-interval-ms must be between 10 and 60000"
        );
        ensure!(
            (100..=3_600_000).contains(&self.compile_timeout_ms),
            "--compile-timeout-ms must be between 100 and 3600000"
        );
        Ok(Config {
            plane: self.plane.check()?,
            ui: self.ui.check()?,
            compile_timeout: std::time::Duration::from_millis(self.compile_timeout_ms),
            clock: std::sync::Arc::new(crate::SystemClock),
            listen: self.listen,
            store,
            admin_key: self.admin_key,
            admin_key_source: self.admin_key_source,
            file_keys,
            sync_interval: std::time::Duration::from_millis(self.sync_interval_ms),
            rate_limit_admin: self.rate_limit_admin,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
        })
    }
}

/// Checks the evaluation keys of a flag file and keeps their hashes.
fn file_keys(
    store: &StoreConfig,
    admin_key: &Option<String>,
    server: &[String],
    client: &[String],
) -> Result<vexil_store::FileKeys, Error> {
    if server.is_empty() && client.is_empty() {
        return Ok(vexil_store::FileKeys::default());
    }
    ensure!(
        matches!(store, StoreConfig::File(_)),
        "--server-key and --client-key are for --flags; with a store, create keys with `vexil keys create`"
    );
    let mut seen: Vec<&str> = admin_key.iter().map(String::as_str).collect();
    for (flag, keys) in [("--server-key", server), ("--client-key", client)] {
        for k in keys {
            let k = k.trim();
            ensure!(k.len() >= 16, "{flag} must be at least 16 characters");
            ensure!(
                !seen.contains(&k),
                "{flag}: the same key is given twice (each key has one scope)"
            );
            seen.push(k);
        }
    }
    let hashes = |keys: &[String]| keys.iter().map(|k| crate::keys::hash(k.trim())).collect();
    Ok(vexil_store::FileKeys {
        admin: String::new(),
        server: hashes(server),
        client: hashes(client),
    })
}

#[cfg(test)]
mod tests {
    use super::banner::mask_url;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_url("postgres://h/db"), "postgres://h/db");
    }
}
