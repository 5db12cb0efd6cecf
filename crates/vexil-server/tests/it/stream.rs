//! The SSE change stream: snapshot first, then one event per change;
//! resume with `Last-Event-ID`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ENV, Server};

/// Reads SSE events from a streaming response.
pub(crate) struct Events {
    pub(crate) resp: reqwest::Response,
    pub(crate) buf: String,
}

#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) id: i64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

impl Events {
    /// The next versioned event (`snapshot` or `change`); `keys` events
    /// are skipped.
    pub(crate) async fn next(&mut self) -> Event {
        loop {
            let ev = self.next_any().await;
            if ev.event != "keys" {
                return ev;
            }
        }
    }

    /// The next event of any kind.
    pub(crate) async fn next_any(&mut self) -> Event {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if block.starts_with(':') {
                    continue;
                }
                let mut ev = Event {
                    id: -1,
                    event: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = v.parse().unwrap();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        ev.data = serde_json::from_str(v).unwrap();
                    }
                }
                return ev;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk())
                .await
                .expect("an event within 5 s")
                .unwrap()
                .expect("stream still open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

pub(crate) async fn open(s: &Server, key: &str, last: Option<&str>) -> Events {
    let mut req = s
        .http
        .get(s.url("/api/v1/stream"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(60));
    if let Some(l) = last {
        req = req.header("last-event-id", l);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    Events {
        resp,
        buf: String::new(),
    }
}

#[tokio::test]
async fn snapshot_first_then_each_change_then_resume() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = crate::ofrep::setup(&s).await;

    let mut events = open(&s, &server, None).await;
    let first = events.next().await;
    assert_eq!((first.event.as_str(), first.id), ("snapshot", 5));
    assert_eq!(first.data["flags"].as_object().unwrap().len(), 5);

    let started = std::time::Instant::now();
    s.admin(
        Method::POST,
        &format!("{ENV}/flags/checkout/toggle"),
        Some(&json!({"enabled": false})),
        &[],
    )
    .await;
    let change = events.next().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!((change.event.as_str(), change.id), ("change", 6));
    assert_eq!(change.data["changes"][0]["key"], "checkout");
    assert_eq!(change.data["changes"][0]["definition"]["enabled"], false);
    s.admin(Method::DELETE, &format!("{ENV}/flags/count"), None, &[])
        .await;
    let deleted = events.next().await;
    assert_eq!(
        (deleted.id, deleted.data["changes"][0]["definition"].clone()),
        (7, Value::Null)
    );

    // Resuming sends only what changed since.
    let mut resumed = open(&s, &server, Some("4")).await;
    let ids: Vec<(i64, String)> = vec![
        resumed.next().await,
        resumed.next().await,
        resumed.next().await,
    ]
    .into_iter()
    .map(|e| (e.id, e.event))
    .collect();
    assert_eq!(
        ids,
        [
            (5, "change".to_owned()),
            (6, "change".to_owned()),
            (7, "change".to_owned())
        ]
    );
    // Up to date: nothing until the next change.
    let mut current = open(&s, &server, Some("7")).await;
    s.admin(
        Method::POST,
        &format!("{ENV}/flags/checkout/toggle"),
        Some(&json!({"enabled": true})),
        &[],
    )
    .await;
    assert_eq!(current.next().await.id, 8);
    // An id the log cannot serve gets a snapshot.
    let mut unknown = open(&s, &server, Some("999")).await;
    let snap = unknown.next().await;
    assert_eq!((snap.event.as_str(), snap.id), ("snapshot", 8));

    let resp = s
        .http
        .get(s.url("/api/v1/stream"))
        .bearer_auth(&client)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let metrics = s.metrics().await;
    assert!(metrics.contains("vexil_sse_subscribers 4"), "{metrics}");
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_exits_cleanly() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = crate::ofrep::setup(&s).await;
    let mut events = open(&s, &server, None).await;
    assert_eq!(events.next().await.event, "snapshot");
    let started = std::time::Instant::now();
    assert!(s.terminate(), "a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?}",
        started.elapsed()
    );
    // The stream ended rather than hanging (after what was already sent).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = events.resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream is still open");
}

// Issue 8: the rules stream says who may read the environment (key hashes
// and scopes, never secrets), again whenever that changes, so an edge can
// check its callers' keys offline.
#[tokio::test]
async fn the_stream_carries_the_hashes_of_the_keys_that_may_read() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = crate::ofrep::setup(&s).await;
    let mut events = open(&s, &server, None).await;
    assert_eq!(events.next_any().await.event, "snapshot");
    let keys = events.next_any().await;
    assert_eq!(keys.event, "keys");
    assert_eq!(keys.id, -1, "no id: Last-Event-ID does not move");
    let hex = |secret: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let listed = |ev: &Event| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = ev.data["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["hash"].as_str().unwrap().to_owned(),
                    k["scope"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut want = vec![
        (hex(&server), "server".to_owned()),
        (hex(&client), "client".to_owned()),
    ];
    want.sort();
    assert_eq!(listed(&keys), want);
    assert_eq!(keys.data["project"], "default");
    assert_eq!(keys.data["environment"], "development");
    let text = keys.data.to_string();
    assert!(!text.contains(&server) && !text.contains(&client), "{text}");
    // Revoking the client key changes who may read: a new keys event.
    let (_, _, list) = s.admin(Method::GET, "/api/v1/keys", None, &[]).await;
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scope"] == "client")
        .unwrap()["id"]
        .clone();
    s.revoke(&id).await;
    let after = events.next_any().await;
    assert_eq!(after.event, "keys");
    assert_eq!(listed(&after), vec![(hex(&server), "server".to_owned())]);
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_never_slows_the_others_and_is_dropped() {
    let _exclusive = crate::support::exclusive().await;
    use tokio::io::AsyncWriteExt;
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start_with(&data, &["--stream-buffer", "4"]);
    let (server, _) = crate::ofrep::setup(&s).await;
    // A subscriber that never reads, with a tiny receive window so the
    // server's socket fills quickly.
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stuck = socket.connect(addr).await.unwrap();
    stuck
        .write_all(format!("GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {server}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut fast = open(&s, &server, None).await;
    assert_eq!(fast.next().await.event, "snapshot");

    let big = "x".repeat(8000);
    // More than hyper and the kernel buffer for one connection (about a
    // megabyte), so the stuck one really falls behind.
    let writes: i64 = 250;
    for i in 0..writes {
        let def = json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}, "description": format!("{big}{i}")});
        let (st, _, _) = s
            .admin(
                Method::PUT,
                &format!("{ENV}/flags/big-{i}"),
                Some(&def),
                &[("if-none-match", "*")],
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        // The reading subscriber keeps up, in order, while the other stalls.
        let ev = fast.next().await;
        assert_eq!(ev.id, 6 + i);
    }
    // When the stuck subscriber reads again, it learns it fell behind: its
    // stream ends (it reconnects with Last-Event-ID), and it is counted.
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = stuck.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.ends_with(b"0\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    let tail = String::from_utf8_lossy(&seen[seen.len().saturating_sub(200)..]).to_string();
    assert!(
        ended.is_ok(),
        "the lagging stream did not end after {} bytes: ...{tail:?}",
        seen.len()
    );
    let metrics = s.metrics().await;
    let dropped = s
        .metric("vexil_sse_subscribers_dropped_total")
        .await
        .unwrap_or(0.0);
    assert!(
        dropped >= 1.0,
        "the lagging subscriber was not dropped:\n{metrics}"
    );
}

#[tokio::test]
async fn ofrep_event_streams_tell_web_clients_to_refetch() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (_, client) = crate::ofrep::setup(&s).await;
    let bulk: Value = s
        .http
        .post(s.url("/ofrep/v1/evaluate/flags"))
        .bearer_auth(&client)
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stream = &bulk["eventStreams"][0];
    assert_eq!(stream["type"], "sse");
    let url = stream["url"].as_str().unwrap();
    // Relative without --public-url (issue 13, item 3).
    assert!(url.starts_with("/ofrep/v1/events?key="), "{url}");
    // EventSource sends no headers: the URL alone must work.
    let resp = s
        .http
        .get(s.url(url))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let mut events = Events {
        resp,
        buf: String::new(),
    };
    s.admin(
        Method::POST,
        &format!("{ENV}/flags/checkout/toggle"),
        Some(&json!({"enabled": false})),
        &[],
    )
    .await;
    let ev = events.next().await;
    assert_eq!(ev.event, "message");
    assert_eq!(ev.data["type"], "refetchEvaluation");
    let resp = s
        .http
        .get(s.url("/ofrep/v1/events?key=vxc_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// Bulk OFREP answers with `key`, sent with `Host: host`.
async fn bulk_event_streams(s: &Server, key: &str, host: &str) -> Value {
    let bulk: Value = s
        .http
        .post(s.url("/ofrep/v1/evaluate/flags"))
        .bearer_auth(key)
        .header("host", host)
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    bulk["eventStreams"].clone()
}

// Issue 13, item 3: a server key never goes into a URL, and no URL is built
// from the Host header.
#[tokio::test]
async fn event_stream_urls_carry_client_keys_only_and_ignore_the_host_header() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, client) = crate::ofrep::setup(&s).await;
    let streams = bulk_event_streams(&s, &server, "evil.example.com").await;
    assert!(
        streams.is_null(),
        "a server key was offered a URL: {streams}"
    );
    assert!(!streams.to_string().contains(&server));
    let streams = bulk_event_streams(&s, &client, "a/x?y=").await;
    let url = streams[0]["url"].as_str().unwrap();
    assert_eq!(url, format!("/ofrep/v1/events?key={client}"));
    // The event stream itself refuses server and admin keys.
    for key in [server.as_str(), crate::support::ADMIN_KEY] {
        let resp = s
            .http
            .get(s.url(&format!("/ofrep/v1/events?key={key}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: Value = resp.json().await.unwrap();
        if key == server {
            assert!(
                body["errorDetails"]
                    .as_str()
                    .unwrap()
                    .contains("client keys only"),
                "{body}"
            );
        }
    }
    drop(s);
    let s = Server::start_with(&data, &["--public-url", "https://flags.example.com/"]);
    s.wait_ready().await;
    let streams = bulk_event_streams(&s, &client, "evil.example.com").await;
    assert_eq!(
        streams[0]["url"],
        format!("https://flags.example.com/ofrep/v1/events?key={client}")
    );
}

/// Whether a streaming response ends (the server closed it) within `limit`,
/// skipping whatever frames arrive before.
async fn ends_within(resp: &mut reqwest::Response, limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await
    .is_ok()
}

// Issue 13, item 2: revoking a key ends the streams opened with it, on this
// server at once and on another server sharing the store within a sync tick.
#[tokio::test]
async fn revoking_a_key_ends_its_streams_here_and_on_other_servers() {
    for (data, _dir) in crate::support::backends().await {
        let a = Server::start(&data);
        let b = Server::start(&data);
        crate::ofrep::setup(&a).await;
        let mut keys = Vec::new();
        for scope in ["server", "client", "server"] {
            let (st, _, k) = a
                .admin(Method::POST, "/api/v1/keys", Some(&json!({"name": scope, "scope": scope, "project": "default", "environment": "development"})), &[])
                .await;
            assert_eq!(st, StatusCode::CREATED, "{k}");
            keys.push((k["id"].clone(), k["secret"].as_str().unwrap().to_owned()));
        }
        // Wait until server B knows the new keys.
        let started = std::time::Instant::now();
        loop {
            let r = b
                .http
                .get(b.url("/api/v1/snapshot"))
                .bearer_auth(&keys[2].1)
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let open_stream = |s: &Server, key: &str| {
            s.http
                .get(s.url("/api/v1/stream"))
                .bearer_auth(key.to_owned())
                .send()
        };
        let mut on_a = open_stream(&a, &keys[0].1).await.unwrap();
        let mut on_b = open_stream(&b, &keys[0].1).await.unwrap();
        let mut other = open_stream(&b, &keys[2].1).await.unwrap();
        let mut web = b
            .http
            .get(b.url(&format!("/ofrep/v1/events?key={}", keys[1].1)))
            .send()
            .await
            .unwrap();
        for r in [&on_a, &on_b, &other, &web] {
            assert_eq!(r.status(), StatusCode::OK);
        }
        for (id, _) in &keys[..2] {
            a.revoke(id).await;
        }
        assert!(
            ends_within(&mut on_a, Duration::from_secs(3)).await,
            "stream on the revoking server kept going ({data:?})"
        );
        assert!(
            ends_within(&mut on_b, Duration::from_secs(3)).await,
            "stream on the other server kept going ({data:?})"
        );
        assert!(
            ends_within(&mut web, Duration::from_secs(3)).await,
            "OFREP event stream kept going ({data:?})"
        );
        // A stream of a key that was not revoked goes on.
        assert!(!ends_within(&mut other, Duration::from_millis(500)).await);
        drop((a, b));
        crate::support::cleanup(&data).await;
    }
}

// Issue 11, item 4: servers sharing PostgreSQL learn of each other's commits
// through LISTEN/NOTIFY, not only by polling: with polling set to once a
// minute, a write on A still reaches a subscriber of B at once.
#[tokio::test]
async fn postgres_servers_hear_each_others_commits_without_polling() {
    let Some(url) = vexil_test_support::postgres_url() else {
        return;
    };
    let (db, _) = vexil_test_support::create_database(&url).await;
    let data = crate::support::Data::Postgres(db.clone());
    let a = Server::start_with(&data, &["--sync-interval-ms", "60000"]);
    let (server, _) = crate::ofrep::setup(&a).await;
    let b = Server::start_with(&data, &["--sync-interval-ms", "60000"]);
    b.wait_ready().await;
    let mut events = open(&b, &server, None).await;
    assert_eq!(events.next().await.event, "snapshot");
    for round in 0..5 {
        let started = std::time::Instant::now();
        let (st, _, _) = a
            .admin(
                Method::POST,
                &format!("{ENV}/flags/checkout/toggle"),
                Some(&json!({"enabled": round % 2 == 1})),
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the change reached the other server without polling");
        assert_eq!(ev.event, "change");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    drop((a, b));
    vexil_test_support::drop_database(&db).await;
}

// Issue 7, item 2: resumes are served from memory (the hub's ring), which
// a server fills from the change log's tail when it starts, so a client
// resuming after the server restarted gets only what it missed.
#[tokio::test]
async fn a_resume_after_a_server_restart_gets_only_the_missed_changes() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let (server, _) = crate::ofrep::setup(&s).await;
    assert!(s.terminate(), "a clean stop");
    let s = Server::start(&data);
    s.wait_ready().await;
    let mut resumed = open(&s, &server, Some("3")).await;
    let first = resumed.next().await;
    let second = resumed.next().await;
    assert_eq!(
        [
            (first.event.as_str(), first.id),
            (second.event.as_str(), second.id)
        ],
        [("change", 4), ("change", 5)]
    );
    // Beyond the ring's reach (a ring of one version holds only 5), a
    // snapshot.
    let s2 = Server::start_with(&data, &["--stream-buffer", "1"]);
    s2.wait_ready().await;
    let mut far = open(&s2, &server, Some("2")).await;
    let snap = far.next().await;
    assert_eq!((snap.event.as_str(), snap.id), ("snapshot", 5));
}
