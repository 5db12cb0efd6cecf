//! The flags of the gRPC listener (flagd's sync and evaluation services),
//! shared by `vexil serve` and `vexil edge`.

use std::net::SocketAddr;
use std::time::Duration;

use vexil_engine::model::Bucketing;

use crate::Error;

/// Which `fractional` hashing the operator's in-process flagd providers
/// use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlagdBucketing {
    /// MurmurHash3 over the bucketing string (flag key + targeting key),
    /// the engine's `concat` (also accepted as `murmur`).
    #[value(alias = "murmur")]
    Concat,
    /// MurmurHash3 over a deterministic CBOR encoding of the bucketing
    /// value: flagd's newer scheme.
    Cbor,
}

impl FlagdBucketing {
    /// The engine's name for it.
    pub(crate) fn engine(self) -> Bucketing {
        match self {
            FlagdBucketing::Concat => Bucketing::Concat,
            FlagdBucketing::Cbor => Bucketing::Cbor,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FlagdBucketing::Concat => "concat",
            FlagdBucketing::Cbor => "cbor",
        }
    }
}

/// The gRPC listener's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct GrpcArgs {
    /// Serve flagd's gRPC services (sync for in-process providers,
    /// evaluation v1/v2 for RPC providers) on this address; off without it.
    #[arg(long, env = "VEXIL_GRPC_LISTEN")]
    pub(crate) grpc_listen: Option<SocketAddr>,
    /// An environment (`project/environment`) that gRPC callers may read
    /// without a server key: its rules go to anyone who can reach the port.
    /// Repeat for several.
    #[arg(
        long = "grpc-open-env",
        env = "VEXIL_GRPC_OPEN_ENVS",
        value_delimiter = ',',
        value_name = "PROJECT/ENVIRONMENT"
    )]
    pub(crate) grpc_open_envs: Vec<String>,
    /// The `fractional` hashing of the operator's in-process flagd
    /// providers: rollouts are sent to them only in that scheme.
    #[arg(long, env = "VEXIL_FLAGD_BUCKETING", value_enum, default_value_t = FlagdBucketing::Concat)]
    pub(crate) flagd_bucketing: FlagdBucketing,
    /// An open EventStream gets a `keep_alive` event this often, in
    /// milliseconds (flagd sends one every 20 s).
    #[arg(long, env = "VEXIL_GRPC_EVENT_KEEPALIVE_MS", default_value_t = 20_000)]
    pub(crate) grpc_event_keepalive_ms: u64,
}

/// The gRPC listener's settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct GrpcConfig {
    pub(crate) listen: SocketAddr,
    /// `(project, environment)` pairs open to callers without a key.
    pub(crate) open_envs: Vec<(String, String)>,
    pub(crate) bucketing: FlagdBucketing,
    pub(crate) event_keepalive: Duration,
}

impl GrpcArgs {
    /// Checks the flags; `None` when no gRPC listener is configured.
    pub(crate) fn check(self) -> Result<Option<GrpcConfig>, Error> {
        let Some(listen) = self.grpc_listen else {
            ensure!(
                self.grpc_open_envs.is_empty(),
                "--grpc-open-env needs --grpc-listen"
            );
            return Ok(None);
        };
        let mut open_envs = Vec::new();
        for env in &self.grpc_open_envs {
            let Some((p, e)) = env
                .split_once('/')
                .filter(|(p, e)| !p.is_empty() && !e.is_empty() && !e.contains('/'))
            else {
                bail!("--grpc-open-env takes `project/environment`, got `{env}`");
            };
            open_envs.push((p.to_owned(), e.to_owned()));
        }
        ensure!(
            (100..=3_600_000).contains(&self.grpc_event_keepalive_ms),
            "--grpc-event-keepalive-ms must be between 100 and 3600000"
        );
        Ok(Some(GrpcConfig {
            listen,
            open_envs,
            bucketing: self.flagd_bucketing,
            event_keepalive: Duration::from_millis(self.grpc_event_keepalive_ms),
        }))
    }
}

/// The banner's lines for the gRPC listener.
pub(super) fn banner(f: &mut std::fmt::Formatter<'_>, g: Option<&GrpcConfig>) -> std::fmt::Result {
    let Some(g) = g else {
        return writeln!(f, "  grpc            off (--grpc-listen)");
    };
    writeln!(
        f,
        "  grpc            {} (flagd sync, evaluation v1/v2; no TLS)",
        g.listen
    )?;
    if g.open_envs.is_empty() {
        writeln!(f, "  grpc open envs  none (every call needs a server key)")?;
    } else {
        let envs: Vec<String> = g
            .open_envs
            .iter()
            .map(|(p, e)| format!("{p}/{e}"))
            .collect();
        writeln!(f, "  grpc open envs  {} (no key needed)", envs.join(", "))?;
    }
    writeln!(
        f,
        "  flagd bucketing {} (in-process providers' fractional hashing)",
        g.bucketing.name()
    )?;
    writeln!(
        f,
        "  grpc keep-alive events every {} ms",
        g.event_keepalive.as_millis()
    )
}
