//! `vexil serve` for tests: run in-process through `vexil_server::run` on
//! 127.0.0.1:0 (most tests), or as a process of the real binary (tests of
//! the command line, of signals, of process limits), and an HTTP client for
//! either.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The admin key every test server accepts.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Where a server keeps its data.
#[derive(Clone, Debug)]
pub enum Data {
    /// SQLite in this directory.
    Sqlite(String),
    /// PostgreSQL at this URL.
    Postgres(String),
}

/// The flags every test server starts with; a test's own flags come after
/// them and win.
fn base_args(data: &Data) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--sync-interval-ms",
        "100",
        // Tests send admin requests faster than the default admin rate
        // limit; a test of the limits passes its own flags after these.
        "--rate-limit-admin",
        "0",
    ]
    .map(str::to_owned)
    .into();
    match data {
        Data::Sqlite(dir) => args.extend(["--data-dir".to_owned(), dir.clone()]),
        Data::Postgres(url) => args.extend(["--database-url".to_owned(), url.clone()]),
    }
    args
}

/// How a test server runs.
enum Handle {
    /// `vexil_server::run` on a runtime of its own, in a thread of this
    /// process; ends when the sender is dropped or fires.
    InProcess {
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        done: std::sync::Mutex<std::sync::mpsc::Receiver<Result<(), String>>>,
    },
    /// A child process of the real binary.
    Process(Child),
}

/// A running `vexil serve`.
pub struct Server {
    handle: Handle,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with a 10 s timeout.
    pub http: reqwest::Client,
    /// What the server printed before listening: its configuration.
    pub banner: String,
}

/// `vexil serve`'s flags, parsed as the binary parses them.
#[derive(clap::Parser)]
#[command(name = "serve", args_override_self = true)]
struct ServeCommand {
    #[command(flatten)]
    args: vexil_server::config::ServeArgs,
}

impl Server {
    /// Starts a server in-process on 127.0.0.1:0 and waits until it listens.
    pub fn start(data: &Data) -> Server {
        Server::start_with(data, &[])
    }

    /// Starts a server in-process with extra flags of `vexil serve`.
    pub fn start_with(data: &Data, extra: &[&str]) -> Server {
        Server::start_with_clock(data, extra, std::sync::Arc::new(vexil_server::SystemClock))
    }

    /// Starts a server in-process that reads the wall clock from `clock`.
    pub fn start_with_clock(
        data: &Data,
        extra: &[&str],
        clock: std::sync::Arc<dyn vexil_server::Clock>,
    ) -> Server {
        let mut argv = vec!["serve".to_owned()];
        argv.extend(base_args(data));
        argv.extend(["--admin-key".to_owned(), ADMIN_KEY.to_owned()]);
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut args = ServeCommand::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("flags {argv:?}: {e}"))
            .args;
        args.admin_key_source = vexil_server::config::AdminKeySource::Flag;
        let config = args
            .into_config()
            .expect("valid test configuration")
            .with_clock(clock);
        let mut banner = format!("{config}\n");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let result = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = addr_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                vexil_server::run(config, listener, async move {
                    let _ = shutdown_rx.await;
                })
                .await
                .map_err(|e| e.to_string())
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
            let _ = done_tx.send(result);
        });
        let addr = match addr_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("cannot listen: {e}"),
            Err(_) => panic!("server stopped before listening: {:?}", done.recv()),
        };
        let base = format!("http://{addr}");
        banner.push_str(&format!("vexil listening on {base}\n"));
        Server {
            handle: Handle::InProcess {
                shutdown: Some(shutdown),
                done: std::sync::Mutex::new(done),
            },
            base,
            http: client(),
            banner,
        }
    }

    /// Starts the real binary `bin` (`env!("CARGO_BIN_EXE_vexil")`) with
    /// the admin key in `VEXIL_ADMIN_KEY`.
    pub fn spawn(bin: &str, data: &Data, extra: &[&str]) -> Server {
        Server::spawn_cmd(Command::new(bin), data, extra)
    }

    /// Starts the real binary under an open-file limit (soft and hard) of
    /// `nofile`.
    pub fn spawn_with_nofile(bin: &str, data: &Data, extra: &[&str], nofile: u64) -> Server {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}")).arg(bin);
        Server::spawn_cmd(cmd, data, extra)
    }

    fn spawn_cmd(mut cmd: Command, data: &Data, extra: &[&str]) -> Server {
        cmd.arg("serve").args(base_args(data)).args(extra);
        Server::spawn_process(cmd)
    }

    /// Starts `vexil edge` (the real binary `bin`) on 127.0.0.1:0,
    /// following `upstream` with server `keys`, with extra flags (e.g.
    /// `--cache-dir`).
    pub fn spawn_edge(bin: &str, upstream: &str, keys: &[&str], extra: &[&str]) -> Server {
        let mut cmd = Command::new(bin);
        cmd.args(["edge", "--listen", "127.0.0.1:0", "--upstream", upstream]);
        for k in keys {
            cmd.args(["--key", k]);
        }
        // Tests poll and reconnect faster than production would.
        cmd.args(["--poll-interval-ms", "200", "--backoff-max-ms", "1000"])
            .args(extra);
        Server::spawn_process(cmd)
    }

    fn spawn_process(mut cmd: Command) -> Server {
        cmd.env("VEXIL_ADMIN_KEY", ADMIN_KEY)
            .env_remove("VEXIL_DATABASE_URL")
            .env_remove("VEXIL_DATA_DIR")
            .env_remove("VEXIL_EDGE_KEYS")
            .env_remove("VEXIL_UPSTREAM")
            .env_remove("VEXIL_CACHE_DIR")
            .env("VEXIL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start vexil serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut banner = String::new();
        let base = loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read server output");
            assert!(n > 0, "server exited before listening:\n{banner}");
            banner.push_str(&line);
            if let Some((_, addr)) = line.trim().split_once(" listening on ") {
                break addr.to_owned();
            }
        };
        // Keep draining standard output so the server never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Server {
            handle: Handle::Process(child),
            base,
            http: client(),
            banner,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional key, JSON body and headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, json)
    }

    /// As admin.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call(method, path, Some(ADMIN_KEY), body, headers)
            .await
    }

    /// Sends raw bytes as the body, on a connection of its own (after a
    /// refused oversized body the server closes the connection).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut req = client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_KEY)
            .body(body);
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits (up to ten seconds) until `/readyz` answers 200: every
    /// environment's snapshot is loaded.
    pub async fn wait_ready(&self) {
        let started = std::time::Instant::now();
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "server not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Revokes the key with this id, as admin.
    pub async fn revoke(&self, id: &Value) {
        let id = match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (st, _, body) = self
            .admin(
                Method::POST,
                &format!("/api/v1/keys/{id}/revoke"),
                None,
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One counter or gauge from `/metrics` (a line starting with `series `).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    /// Stops a server process with SIGKILL (no chance to clean up).
    pub fn kill9(mut self) {
        match &mut self.handle {
            Handle::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Handle::InProcess { .. } => panic!("kill9 needs a server process (Server::spawn)"),
        }
    }

    /// The process id of a server process.
    pub fn pid(&self) -> Option<u32> {
        match &self.handle {
            Handle::Process(child) => Some(child.id()),
            Handle::InProcess { .. } => None,
        }
    }

    /// Asks the server to shut down (SIGTERM for a process) and waits for
    /// it; true when it stopped cleanly.
    pub fn terminate(mut self) -> bool {
        self.stop()
    }

    fn stop(&mut self) -> bool {
        match &mut self.handle {
            Handle::Process(child) => {
                let pid = child.id().to_string();
                let _ = Command::new("kill").args(["-TERM", &pid]).status();
                child.wait().is_ok_and(|s| s.success())
            }
            Handle::InProcess { shutdown, done } => {
                let Some(tx) = shutdown.take() else {
                    return true;
                };
                let _ = tx.send(());
                let done = done.get_mut().unwrap_or_else(|p| p.into_inner());
                matches!(done.recv_timeout(Duration::from_secs(15)), Ok(Ok(())))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &mut self.handle {
            Handle::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Handle::InProcess { .. } => {
                self.stop();
            }
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// SQLite in a temporary directory, for tests about the API rather than
/// the store.
pub fn sqlite() -> (Data, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Data::Sqlite(dir.path().display().to_string()), dir)
}

/// Every backend to run server tests on: SQLite in a temporary directory,
/// and PostgreSQL (a fresh database) when configured.
pub async fn backends() -> Vec<(Data, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(Data::Sqlite(dir.path().display().to_string()), Some(dir))];
    if let Some(url) = crate::postgres_url() {
        let (db_url, _) = crate::create_database(&url).await;
        out.push((Data::Postgres(db_url), None));
    }
    out
}

/// The admin path of the `development` environment of project `default`.
pub const ENV: &str = "/api/v1/projects/default/environments/development";

/// A boolean flag definition, on or off.
pub fn flag_def(on: bool) -> Value {
    serde_json::json!({"variants": {"on": true, "off": false}, "enabled": on, "offVariant": "off", "defaultServe": {"variant": "on"}})
}

/// Cleans up what [`backends`] made.
pub async fn cleanup(data: &Data) {
    if let Data::Postgres(url) = data {
        crate::drop_database(url).await;
    }
}

/// A connection of its own to the server, for raw HTTP.
pub async fn connect(s: &Server) -> tokio::net::TcpStream {
    let addr = s.base.trim_start_matches("http://");
    tokio::net::TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection; `None` if it is still
/// open after `limit`.
pub async fn read_to_close(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// The server key of [`file_server`].
pub const FILE_SERVER_KEY: &str = "file-server-key-0123456789";
/// The client key of [`file_server`].
pub const FILE_CLIENT_KEY: &str = "file-client-key-0123456789";

/// Starts `vexil serve --flags` (in-process) on a copy of
/// `examples/flagd.json` with a server and a client key; returns the
/// server, the file and the directory holding it.
pub fn file_server(extra: &[&str]) -> (Server, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("flags.json");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/flagd.json"),
        &file,
    )
    .expect("copy examples/flagd.json");
    let data = Data::Sqlite(dir.path().join("unused").display().to_string());
    let path = file.display().to_string();
    let mut args = vec![
        "--flags",
        &path,
        "--server-key",
        FILE_SERVER_KEY,
        "--client-key",
        FILE_CLIENT_KEY,
    ];
    args.extend_from_slice(extra);
    let s = Server::start_with(&data, &args);
    (s, file, dir)
}
