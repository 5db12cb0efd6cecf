//! The SSE change stream: snapshot first, then one event per change;
//! resume with `Last-Event-ID`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ENV, Server};

/// Reads SSE events from a streaming response.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug)]
struct Event {
    id: i64,
    event: String,
    data: Value,
}

impl Events {
    async fn next(&mut self) -> Event {
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

async fn open(s: &Server, key: &str, last: Option<&str>) -> Events {
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
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?}",
        started.elapsed()
    );
    // The stream ended rather than hanging.
    let end = tokio::time::timeout(Duration::from_secs(5), events.resp.chunk())
        .await
        .expect("stream closed");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}
