//! Shared helpers: servers with flags and a server key, waiting for
//! conditions, reading updates, and a proxy that refuses the stream path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use vexil_sdk::{Update, Updates};
pub(crate) use vexil_test_support::server::{ENV, Server};

/// A boolean flag serving `on` or `off` by default.
pub(crate) fn bool_flag(on: bool) -> Value {
    json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": if on {"on"} else {"off"}}})
}

/// Creates flag `key`.
pub(crate) async fn put_flag(s: &Server, key: &str, def: &Value) {
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/{key}"),
            Some(def),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
}

/// Replaces flag `key`, whatever its version.
pub(crate) async fn replace_flag(s: &Server, key: &str, def: &Value) {
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/{key}"),
            Some(def),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// Turns flag `key` on or off.
pub(crate) async fn toggle(s: &Server, key: &str, on: bool) {
    let (st, _, body) = s
        .admin(
            Method::POST,
            &format!("{ENV}/flags/{key}/toggle"),
            Some(&json!({"enabled": on})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// Creates `checkout` (boolean, off by default, on for plan `pro`),
/// `color` (string) and `limit` (integer); returns a server key.
pub(crate) async fn setup(s: &Server) -> String {
    put_flag(
        s,
        "checkout",
        &json!({"variants": {"on": true, "off": false}, "offVariant": "off", "defaultServe": {"variant": "off"},
            "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": {"variant": "on"}}]}),
    )
    .await;
    put_flag(
        s,
        "color",
        &json!({"variants": {"red": "#f00", "blue": "#00f"}, "defaultServe": {"variant": "blue"}, "metadata": {"owner": "web"}}),
    )
    .await;
    put_flag(
        s,
        "limit",
        &json!({"variants": {"small": 10, "large": 100}, "defaultServe": {"variant": "small"}}),
    )
    .await;
    server_key(s).await
}

/// A new server key of the `development` environment.
pub(crate) async fn server_key(s: &Server) -> String {
    let (st, _, k) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": "sdk", "scope": "server", "project": "default", "environment": "development"})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    k["secret"].as_str().unwrap().to_owned()
}

/// The environment's version as the server reports it.
pub(crate) async fn server_version(s: &Server) -> i64 {
    let (_, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
    env["version"].as_i64().unwrap()
}

pub(crate) fn addr(s: &Server) -> SocketAddr {
    s.base.trim_start_matches("http://").parse().unwrap()
}

/// Waits (up to ten seconds) until `cond` holds.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next update, within ten seconds.
/// The next versioned update (`keys` updates, which the server sends on
/// every stream it opens, are skipped).
pub(crate) async fn next(updates: &mut Updates) -> Update {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .expect("an update within 10 s")
            .expect("the follower is running");
        if !matches!(update, Update::Keys(_)) {
            return update;
        }
    }
}

/// An update as (kind, version) for assertions.
pub(crate) fn describe(update: &Update) -> (&'static str, i64) {
    match update {
        Update::Snapshot(f) => ("snapshot", f.version()),
        Update::Change { followed, event } => {
            assert_eq!(followed.version(), event.version);
            ("change", followed.version())
        }
        Update::Keys(_) => ("keys", -1),
        _ => ("other", -1),
    }
}

/// An HTTP proxy that answers `502` to the change stream and forwards
/// every other request (one per connection) to `target`: a proxy that
/// does not let long-lived responses through.
pub(crate) struct StreamBlocker {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl StreamBlocker {
    pub(crate) async fn start(target: SocketAddr) -> StreamBlocker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, target));
            }
        });
        StreamBlocker { addr, task }
    }
}

impl Drop for StreamBlocker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    if text.starts_with("GET /api/v1/stream") {
        let _ = client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    // One request per connection: the client must not send the next one
    // on a connection this proxy no longer reads.
    let mut lines: Vec<&str> = text
        .trim_end_matches("\r\n\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("connection: close");
    let head = format!("{}\r\n\r\n", lines.join("\r\n"));
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    if upstream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let _ = tokio::io::copy(&mut upstream, &mut client).await;
}
