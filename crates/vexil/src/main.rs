//! The `vexil` binary: command-line parsing and dispatch to the server
//! library (`serve`, `migrate`) and the commands. Everything below
//! `main` gets its inputs as arguments; only this file reads the process
//! environment and the clock.

mod client;
mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use vexil_server::config;

/// Vexil: feature flags with targeting rules and percentage rollouts.
#[derive(Debug, Parser)]
#[command(
    name = "vexil",
    version,
    about,
    propagate_version = true,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: admin API on the embedded SQLite store (default) or
    /// PostgreSQL.
    Serve(config::ServeArgs),
    /// Run an edge: the evaluation and delivery APIs of a server, fed by
    /// following an upstream server or edge; keeps serving its last known
    /// state (also across a restart, with --cache-dir) when upstream is gone.
    Edge(config::EdgeArgs),
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// Manage flags on a running server.
    Flags {
        #[command(flatten)]
        remote: client::Remote,
        #[command(subcommand)]
        command: client::FlagsCommand,
    },
    /// Manage API keys on a running server.
    Keys {
        #[command(flatten)]
        remote: client::Remote,
        #[command(subcommand)]
        command: client::KeysCommand,
    },
    /// Import a flag document (native or flagd, JSON or YAML) into an environment.
    Import {
        #[command(flatten)]
        remote: client::Remote,
        /// The document (`-` for standard input).
        file: PathBuf,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Also delete flags and segments the document does not have.
        #[arg(long)]
        replace: bool,
    },
    /// Export an environment as a native document.
    Export {
        #[command(flatten)]
        remote: client::Remote,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Evaluate one flag from a flag file for a context and print the result
    /// as JSON (exit status 1 when the evaluation ends in an error).
    Eval(EvalArgs),
    /// Validate a flag file and print every problem with its place (exit
    /// status 1 when there is any).
    Validate(ValidateArgs),
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// Flag file: native or flagd format, JSON or YAML.
    #[arg(long, env = "VEXIL_FLAGS")]
    flags: PathBuf,
    /// Key of the flag to evaluate.
    #[arg(long)]
    flag: String,
    /// Evaluation context as a JSON object, e.g. '{"targetingKey":"u1","plan":"pro"}'.
    #[arg(long, default_value = "{}")]
    context: String,
    /// The type the caller expects; a flag of another type gives TYPE_MISMATCH.
    #[arg(long = "type", value_enum, default_value_t = TypeArg::Any)]
    value_type: TypeArg,
    /// Document format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
}

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// Directory of the embedded SQLite store (used without --database-url).
    #[arg(long, env = "VEXIL_DATA_DIR", default_value = "./vexil-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL.
    #[arg(long, env = "VEXIL_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Flag file: native or flagd format, JSON or YAML.
    file: PathBuf,
    /// Document format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TypeArg {
    Any,
    Bool,
    String,
    Int,
    Float,
    Object,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Native,
    Flagd,
}

impl From<TypeArg> for vexil_engine::ValueType {
    fn from(t: TypeArg) -> Self {
        use vexil_engine::ValueType as V;
        match t {
            TypeArg::Any => V::Any,
            TypeArg::Bool => V::Bool,
            TypeArg::String => V::String,
            TypeArg::Int => V::Int,
            TypeArg::Float => V::Float,
            TypeArg::Object => V::Object,
        }
    }
}

impl From<FormatArg> for vexil_engine::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Auto => vexil_engine::Format::Auto,
            FormatArg::Native => vexil_engine::Format::Native,
            FormatArg::Flagd => vexil_engine::Format::Flagd,
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Command::Serve(args) = &mut cli.command {
        args.admin_key_source = match matches
            .subcommand_matches("serve")
            .and_then(|m| m.value_source("admin_key"))
        {
            Some(ValueSource::CommandLine) => config::AdminKeySource::Flag,
            Some(ValueSource::EnvVariable) => config::AdminKeySource::Env,
            _ => config::AdminKeySource::None,
        };
    }
    let result = match cli.command {
        Command::Serve(args) => serve_main(args),
        Command::Edge(args) => edge_main(args),
        Command::Migrate(args) => migrate_main(args),
        Command::Flags { remote, command } => client::flags(remote, admin_key_env(), command),
        Command::Keys { remote, command } => client::keys(remote, admin_key_env(), command),
        Command::Import {
            remote,
            file,
            dry_run,
            replace,
        } => client::import(remote, admin_key_env(), file, dry_run, replace),
        Command::Export { remote, output } => client::export(remote, admin_key_env(), output),
        Command::Eval(args) => commands::eval(&commands::EvalInput {
            flags: &args.flags,
            flag: &args.flag,
            context: &args.context,
            value_type: args.value_type.into(),
            format: args.format.into(),
            now: unix_now(),
        }),
        Command::Validate(args) => commands::validate(&args.file, args.format.into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logs(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VEXIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Text => builder.init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn serve_main(args: config::ServeArgs) -> anyhow::Result<ExitCode> {
    init_logs(args.log_format);
    raise_open_file_limit();
    let config = args.into_config()?;
    vexil_server::notice(format_args!(
        "vexil {} starting with:\n{config}",
        env!("CARGO_PKG_VERSION")
    ));
    serve_on(config.listen(), |listener| {
        vexil_server::run(config, listener, shutdown_signal())
    })
}

fn edge_main(args: config::EdgeArgs) -> anyhow::Result<ExitCode> {
    init_logs(args.log_format);
    raise_open_file_limit();
    let config = args.into_config()?;
    vexil_server::notice(format_args!(
        "vexil {} edge starting with:\n{config}",
        env!("CARGO_PKG_VERSION")
    ));
    serve_on(config.listen(), |listener| {
        vexil_server::run_edge(config, listener, shutdown_signal())
    })
}

/// Every SSE subscriber holds a connection: allow as many as the system
/// does.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Binds `addr` and runs `serve` on it until it ends.
fn serve_on<F, Fut>(addr: std::net::SocketAddr, serve: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = Result<(), vexil_server::Error>>,
{
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        serve(listener).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn migrate_main(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    init_logs(config::LogFormat::Text);
    let store = match args.database_url {
        Some(url) => config::StoreConfig::Postgres(url),
        None => config::StoreConfig::Sqlite(args.data_dir),
    };
    runtime()?.block_on(vexil_server::migrate(&store))?;
    output::out!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// `VEXIL_ADMIN_KEY`, which admin commands use when no `--key` is given.
fn admin_key_env() -> Option<String> {
    std::env::var("VEXIL_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty())
}

/// Seconds since the Unix epoch, for `$flagd.timestamp`.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
