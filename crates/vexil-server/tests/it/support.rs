//! Starts the real server binary and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub(crate) const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Where a server keeps its data.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    Sqlite(String),
    Postgres(String),
}

/// A running `vexil serve`.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    /// Everything it printed on standard output up to the listening line.
    pub(crate) banner: String,
}

impl Server {
    /// Starts `vexil serve` on 127.0.0.1:0 and waits for its address.
    pub(crate) fn start(data: &Data) -> Server {
        Server::start_with(data, &[])
    }

    pub(crate) fn start_with(data: &Data, extra: &[&str]) -> Server {
        Server::start_cmd(Command::new(env!("CARGO_BIN_EXE_vexil")), data, extra)
    }

    /// Starts the server under an open-file limit (soft and hard) of `nofile`.
    pub(crate) fn start_with_nofile(data: &Data, extra: &[&str], nofile: u64) -> Server {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg(env!("CARGO_BIN_EXE_vexil"));
        Server::start_cmd(cmd, data, extra)
    }

    fn start_cmd(mut cmd: Command, data: &Data, extra: &[&str]) -> Server {
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sync-interval-ms",
            "100",
            // Tests send admin requests faster than the default admin rate
            // limit; a test of the limits passes its own flags after these.
            "--rate-limit-admin",
            "0",
        ])
        .args(extra)
        .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
        .env_remove("VEXIL_DATABASE_URL")
        .env_remove("VEXIL_DATA_DIR")
        .env("VEXIL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        match data {
            Data::Sqlite(dir) => cmd.args(["--data-dir", dir]),
            Data::Postgres(url) => cmd.args(["--database-url", url]),
        };
        let mut child = cmd.spawn().expect("start vexil serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut banner = String::new();
        let base = loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read server output");
            assert!(n > 0, "server exited before listening:\n{banner}");
            banner.push_str(&line);
            if let Some(addr) = line.trim().strip_prefix("vexil listening on ") {
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
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Server {
            child,
            base,
            http,
            banner,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional key, JSON body and headers.
    pub(crate) async fn call(
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
    pub(crate) async fn admin(
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
    pub(crate) async fn raw(
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
    pub(crate) async fn wait_ready(&self) {
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
    pub(crate) async fn revoke(&self, id: &Value) {
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
    pub(crate) async fn metrics(&self) -> String {
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
    pub(crate) async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    /// Stops with SIGKILL (no chance to clean up).
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SQLite in a temporary directory, for tests about the API rather than
/// the store.
pub(crate) fn sqlite() -> (Data, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Data::Sqlite(dir.path().display().to_string()), dir)
}

/// Every backend to run server tests on: SQLite in a temporary directory,
/// and PostgreSQL (a fresh database) when configured.
pub(crate) async fn backends() -> Vec<(Data, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(Data::Sqlite(dir.path().display().to_string()), Some(dir))];
    if let Some(url) = vexil_test_support::postgres_url() {
        let (db_url, _) = vexil_test_support::create_database(&url).await;
        out.push((Data::Postgres(db_url), None));
    }
    out
}

pub(crate) const ENV: &str = "/api/v1/projects/default/environments/development";

pub(crate) fn flag_def(on: bool) -> Value {
    serde_json::json!({"variants": {"on": true, "off": false}, "enabled": on, "offVariant": "off", "defaultServe": {"variant": "on"}})
}

/// Cleans up what [`backends`] made.
pub(crate) async fn cleanup(data: &Data) {
    if let Data::Postgres(url) = data {
        vexil_test_support::drop_database(url).await;
    }
}
