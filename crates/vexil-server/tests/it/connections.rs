//! Bounds on connections and requests, spoken over raw TCP to the real
//! binary (issue 13, items 1 and 11): slow headers, idle keep-alive
//! connections and bodies that never arrive are cut; a bound on open
//! connections refuses clearly; running out of file descriptors neither
//! stops the server nor floods its log; refusals before the body is read
//! leave the connection usable.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ADMIN_KEY, ENV, Server, connect, read_to_close, sqlite};

/// Reads one HTTP response with a `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "connection closed before a whole response: {out:?}");
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

fn body_of(response: &str) -> Value {
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(&data, &["--header-timeout-ms", "1000"]);

    // One header byte every 200 ms: cut after about a second, long before
    // the request would be complete.
    let mut slow = connect(&s).await;
    let started = Instant::now();
    let request =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for b in request {
        if slow.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    if !closed {
        closed = read_to_close(&mut slow, Duration::from_secs(5))
            .await
            .is_some();
    }
    assert!(closed, "a client trickling headers was not disconnected");
    assert!(started.elapsed() < Duration::from_secs(7));

    // A keep-alive connection that sends nothing after its first request.
    let mut idle = connect(&s).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let rest = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(
        rest.as_deref(),
        Some(""),
        "idle keep-alive connection kept open"
    );

    // A connection that never sends anything.
    let mut silent = connect(&s).await;
    assert!(
        read_to_close(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_in_the_routes_error_format() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(&data, &["--body-timeout-ms", "1000"]);
    for (path, auth) in [
        ("/ofrep/v1/evaluate/flags/x", "Bearer nobody".to_owned()),
        (
            &format!("{ENV}/flags/x") as &str,
            format!("Bearer {ADMIN_KEY}"),
        ),
    ] {
        let method = if path.starts_with("/ofrep") {
            "POST"
        } else {
            "PUT"
        };
        let mut c = connect(&s).await;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"context\""
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let answer = read_to_close(&mut c, Duration::from_secs(8))
            .await
            .expect("the server waited for the body forever");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"));
        let body = body_of(&answer);
        if path.starts_with("/ofrep") {
            assert_eq!(body["errorCode"], "GENERAL", "{body}");
            assert!(body["errorDetails"].as_str().unwrap().contains("1000 ms"));
        } else {
            assert_eq!(body["code"], "request_timeout", "{body}");
        }
    }
    assert_eq!(s.metric("vexil_http_body_timeouts_total").await, Some(2.0));
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_503() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(
        &data,
        &["--max-connections", "4", "--header-timeout-ms", "3000"],
    );
    // Hold every slot with idle connections.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = connect(&s).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut extra = connect(&s).await;
    let answer = read_to_close(&mut extra, Duration::from_secs(5))
        .await
        .expect("refused at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"));
    assert_eq!(body_of(&answer)["code"], "too_many_connections");
    // Freed slots are usable again.
    drop(held);
    let started = Instant::now();
    loop {
        let mut c = connect(&s).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut c, Duration::from_secs(5)).await.unwrap();
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = s.metric("vexil_http_connections_refused_total").await;
    assert!(refused >= Some(1.0), "{refused:?}");
}

#[tokio::test]
async fn refusals_before_the_body_keep_the_connection_usable() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(
        &data,
        &["--rate-limit-admin", "1", "--max-body-bytes", "2048"],
    );
    // Two admin writes in a row on one connection: the second is over the
    // rate (429) before its body is looked at; the third request on the
    // same connection still gets its answer.
    let mut c = connect(&s).await;
    let body = r#"{"variants":{"on":true},"defaultServe":{"variant":"on"}}"#;
    let put = |key: &str| {
        format!(
            "PUT {ENV}/flags/{key} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nIf-None-Match: *\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut statuses = Vec::new();
    for key in ["a", "b", "c"] {
        c.write_all(put(key).as_bytes()).await.unwrap();
        let answer = read_response(&mut c).await;
        statuses.push(answer[9..12].to_owned());
    }
    assert!(statuses.contains(&"429".to_owned()), "{statuses:?}");

    // Too large: answered 413 in JSON with `Connection: close`, and the
    // client reads the whole answer.
    let mut c = connect(&s).await;
    let big = "x".repeat(4096);
    let head = format!(
        "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(big.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut c, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    assert!(
        body_of(&answer)["errorDetails"]
            .as_str()
            .unwrap()
            .contains("2048 bytes")
    );
    // The admin family answers in its own format.
    let (status, body) = s
        .raw(
            Method::PUT,
            &format!("{ENV}/flags/big"),
            big.into_bytes(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "body_too_large", "{body}");
}

#[tokio::test]
async fn open_streams_outlive_the_header_timeout() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(&data, &["--header-timeout-ms", "500"]);
    let (server_key, _) = crate::ofrep::setup(&s).await;
    let mut resp = s
        .http
        .get(s.url("/api/v1/stream"))
        .bearer_auth(&server_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: snapshot"));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (st, _, _) = s
        .admin(
            Method::POST,
            &format!("{ENV}/flags/checkout/toggle"),
            Some(&serde_json::json!({"enabled": false})),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    // The change arrives (after the `keys` event, if that came in a frame
    // of its own).
    let started = std::time::Instant::now();
    let mut seen = String::new();
    while !seen.contains("event: change") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no change: {seen}"
        );
        let next = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .expect("change in time")
            .expect("stream still open")
            .expect("a frame");
        seen.push_str(&String::from_utf8_lossy(&next));
    }
}
