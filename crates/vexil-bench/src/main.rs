//! `vexil-bench`: load generator for Vexil servers. Only sends traffic to
//! the URL it is given; meant for 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod floor;
mod grpc_sync;
mod http;
mod sdk;
mod sse;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "vexil-bench", about = "Load generator for Vexil servers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP load: closed loop over N keep-alive connections; reports
    /// req/s and latency percentiles.
    Http {
        /// Target URL (http://127.0.0.1:PORT/path).
        #[arg(long)]
        url: String,
        /// Request method.
        #[arg(long, default_value = "POST")]
        method: String,
        /// Request body.
        #[arg(long, default_value = "")]
        body: String,
        /// Extra header, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Measured seconds (after one second of warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The floor of SSE fan-out: the cost of writing one event to each of
    /// N loopback sockets from one thread, with nothing else per socket
    /// (`--writer-cpu 0 --reader-cpu 1`, as the server and the load generator
    /// are pinned in the other benchmarks).
    WriteFloor {
        /// Sockets (subscribers).
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// Events written to every socket.
        #[arg(long, default_value_t = 100)]
        rounds: usize,
        /// Bytes of one event (an SSE `change` event of one flag is about
        /// this size).
        #[arg(long, default_value_t = 400)]
        frame_bytes: usize,
        /// Pause between events, ms.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
        /// Core of the writing thread (the server's).
        #[arg(long)]
        writer_cpu: Option<u32>,
        /// Core of the reading thread (the subscribers').
        #[arg(long)]
        reader_cpu: Option<u32>,
    },
    /// SSE fan-out: open N subscribers to /api/v1/stream, make M changes
    /// through the admin API, and report the delay from each write's
    /// acknowledgement to each subscriber's receipt, and the server's RSS.
    Sse {
        /// Server URL (subscribers).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Where the changes are written, when not to --url: another server
        /// sharing the database, to measure propagation between servers.
        #[arg(long)]
        write_url: Option<String>,
        /// Server key of the environment (subscribers).
        #[arg(long)]
        server_key: String,
        /// Admin key (changes).
        #[arg(long, env = "VEXIL_ADMIN_KEY")]
        admin_key: String,
        #[arg(long, default_value = "default")]
        project: String,
        #[arg(long = "env", default_value = "development")]
        environment: String,
        /// Subscribers.
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Changes to make.
        #[arg(long, default_value_t = 100)]
        changes: usize,
        /// Pause between changes, in milliseconds.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
        /// The server's process id, to report its memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// SDK propagation: N `vexil_sdk::Client`s follow --url (an edge),
    /// changes are written on --write-url (the server), and the delay from
    /// each write's acknowledgement to each client's change listener is
    /// reported.
    Sdk {
        /// Where the clients follow.
        #[arg(long)]
        url: String,
        /// Where the changes are written.
        #[arg(long)]
        write_url: String,
        /// Server key of the environment.
        #[arg(long)]
        server_key: String,
        /// Admin key (changes).
        #[arg(long, env = "VEXIL_ADMIN_KEY")]
        admin_key: String,
        #[arg(long, default_value = "default")]
        project: String,
        #[arg(long = "env", default_value = "development")]
        environment: String,
        /// Clients.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Changes to make.
        #[arg(long, default_value_t = 50)]
        changes: usize,
        /// Pause between changes, in milliseconds.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
    /// gRPC sync fan-out: N subscribers of flagd's
    /// `flagd.sync.v1.FlagSyncService/SyncFlags` on --grpc-url (each its own
    /// connection), changes written through the admin API on --write-url,
    /// and the delay from each write's acknowledgement to each subscriber's
    /// receipt of a flagd document reflecting it.
    GrpcSync {
        /// The gRPC listener (`vexil serve --grpc-listen`), as
        /// http://HOST:PORT.
        #[arg(long)]
        grpc_url: String,
        /// The HTTP listener of the same server (changes).
        #[arg(long)]
        write_url: String,
        /// Server key of the environment (subscribers).
        #[arg(long)]
        server_key: String,
        /// Admin key (changes).
        #[arg(long, env = "VEXIL_ADMIN_KEY")]
        admin_key: String,
        #[arg(long, default_value = "default")]
        project: String,
        #[arg(long = "env", default_value = "development")]
        environment: String,
        /// Subscribers.
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Changes to make.
        #[arg(long, default_value_t = 50)]
        changes: usize,
        /// Pause between changes, in milliseconds.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
    /// A bare hyper server answering every request with a fixed JSON body:
    /// the ceiling of this machine, for ratios.
    BareServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:18099")]
        listen: std::net::SocketAddr,
    },
    /// Durable flag updates through the admin API: each connection toggles
    /// its own flag as fast as the server acknowledges.
    AdminWrites {
        /// Server URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Admin API key.
        #[arg(long, env = "VEXIL_ADMIN_KEY")]
        key: String,
        #[arg(long, default_value = "default")]
        project: String,
        #[arg(long = "env", default_value = "development")]
        environment: String,
        /// Concurrent connections (each with its own flag).
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// The bench flag: created on the server (or found there), then toggled
/// `changes` times `interval` apart; gives each version's acknowledgement
/// time. Shared by the SSE, SDK and gRPC sync propagation benches.
pub(crate) struct Toggles {
    http: reqwest::Client,
    /// `.../flags/<key>`.
    flag: String,
    admin_key: String,
}

impl Toggles {
    /// Creates flag `key` in the environment unless it exists.
    pub(crate) async fn create(
        base: &str,
        admin_key: &str,
        project: &str,
        environment: &str,
        key: &str,
    ) -> Result<Toggles> {
        let flag = format!(
            "{}/api/v1/projects/{project}/environments/{environment}/flags/{key}",
            base.trim_end_matches('/')
        );
        let http = reqwest::Client::new();
        let resp = http
            .put(&flag)
            .bearer_auth(admin_key)
            .header("if-none-match", "*")
            .json(
                &json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}}),
            )
            .send()
            .await?;
        if !resp.status().is_success() && resp.status().as_u16() != 409 {
            anyhow::bail!("cannot create the bench flag: {}", resp.status());
        }
        Ok(Toggles {
            http,
            flag,
            admin_key: admin_key.to_owned(),
        })
    }

    /// Toggles the flag `changes` times, `interval` apart: the first write
    /// disables it, the second enables it, and so on. The acknowledgement
    /// time of each version written.
    pub(crate) async fn run(
        &self,
        changes: usize,
        interval: std::time::Duration,
    ) -> Result<std::collections::HashMap<i64, std::time::Instant>> {
        let mut acks = std::collections::HashMap::new();
        let mut on = false;
        for _ in 0..changes {
            let resp = self
                .http
                .post(format!("{}/toggle", self.flag))
                .bearer_auth(&self.admin_key)
                .json(&json!({"enabled": on}))
                .send()
                .await?;
            let acked = std::time::Instant::now();
            if !resp.status().is_success() {
                anyhow::bail!("change refused: {}", resp.status());
            }
            let body: serde_json::Value = resp.json().await?;
            let version = body["version"]
                .as_i64()
                .context("no version in the answer")?;
            acks.insert(version, acked);
            on = !on;
            tokio::time::sleep(interval).await;
        }
        Ok(acks)
    }
}

/// Latency percentiles of a run, in microseconds.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Http {
            url,
            method,
            body,
            headers,
            connections,
            seconds,
        } => http::run(&url, &method, body, &headers, connections, seconds).await,
        Command::BareServer { listen } => http::bare_server(listen).await,
        Command::WriteFloor {
            sockets,
            rounds,
            frame_bytes,
            interval_ms,
            writer_cpu,
            reader_cpu,
        } => floor::run(floor::FloorRun {
            sockets,
            rounds,
            frame_bytes,
            interval: Duration::from_millis(interval_ms),
            writer_cpu,
            reader_cpu,
        }),
        Command::Sdk {
            url,
            write_url,
            server_key,
            admin_key,
            project,
            environment,
            clients,
            changes,
            interval_ms,
        } => {
            sdk::run(sdk::SdkRun {
                url,
                write_url,
                server_key,
                admin_key,
                project,
                environment,
                clients,
                changes,
                interval: std::time::Duration::from_millis(interval_ms),
            })
            .await
        }
        Command::GrpcSync {
            grpc_url,
            write_url,
            server_key,
            admin_key,
            project,
            environment,
            subscribers,
            changes,
            interval_ms,
        } => {
            grpc_sync::run(grpc_sync::GrpcSyncRun {
                grpc_url,
                write_url,
                server_key,
                admin_key,
                project,
                environment,
                subscribers,
                changes,
                interval: Duration::from_millis(interval_ms),
            })
            .await
        }
        Command::Sse {
            url,
            write_url,
            server_key,
            admin_key,
            project,
            environment,
            subscribers,
            changes,
            interval_ms,
            server_pid,
        } => {
            sse::run(sse::SseRun {
                url,
                write_url,
                server_key,
                admin_key,
                project,
                environment,
                subscribers,
                changes,
                interval: Duration::from_millis(interval_ms),
                server_pid,
            })
            .await
        }
        Command::AdminWrites {
            url,
            key,
            project,
            environment,
            connections,
            seconds,
        } => admin_writes(url, key, project, environment, connections, seconds).await,
    }
}

async fn admin_writes(
    url: String,
    key: String,
    project: String,
    environment: String,
    connections: usize,
    seconds: u64,
) -> Result<()> {
    let base = format!(
        "{}/api/v1/projects/{project}/environments/{environment}/flags",
        url.trim_end_matches('/')
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // One flag per connection, created up front.
    for c in 0..connections {
        let resp = http
            .put(format!("{base}/bench-{c}"))
            .bearer_auth(&key)
            .header("if-none-match", "*")
            .json(
                &json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}}),
            )
            .send()
            .await
            .context("cannot reach the server")?;
        if !resp.status().is_success() && resp.status().as_u16() != 409 {
            bail!(
                "cannot create bench flag: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let base = Arc::new(base);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut on = false;
            while Instant::now() < deadline {
                let t = Instant::now();
                let resp = http
                    .post(format!("{base}/bench-{c}/toggle"))
                    .bearer_auth(&key)
                    .json(&json!({"enabled": on}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        latencies.push(t.elapsed().as_micros() as u64)
                    }
                    _ => errors += 1,
                }
                on = !on;
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "admin-writes: {} acknowledged updates in {elapsed:.1} s = {:.0} updates/s ({connections} connections, {errors} errors); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.5) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    Ok(())
}
