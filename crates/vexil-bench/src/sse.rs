//! SSE fan-out: many subscribers, a series of changes, and the delay from
//! each write's acknowledgement to each subscriber's receipt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::percentile;

pub(crate) struct SseRun {
    pub(crate) url: String,
    /// Changes go here instead of `url` (another server on the same store).
    pub(crate) write_url: Option<String>,
    pub(crate) server_key: String,
    pub(crate) admin_key: String,
    pub(crate) project: String,
    pub(crate) environment: String,
    pub(crate) subscribers: usize,
    pub(crate) changes: usize,
    pub(crate) interval: Duration,
    pub(crate) server_pid: Option<u32>,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One subscriber: connects, waits for the snapshot, then records when each
/// change id arrives.
async fn subscribe(
    addr: std::net::SocketAddr,
    authority: String,
    key: Arc<String>,
    ready: Arc<tokio::sync::Semaphore>,
    wanted: usize,
) -> Result<Vec<(i64, Instant)>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get("/api/v1/stream")
        .header("host", authority)
        .header("authorization", format!("Bearer {key}"))
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    if !resp.status().is_success() {
        bail!("stream answered {}", resp.status());
    }
    let mut body = resp.into_body();
    let mut buf = String::new();
    let mut got = Vec::with_capacity(wanted);
    let mut snapshot = false;
    while got.len() < wanted {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let now = Instant::now();
        buf.push_str(std::str::from_utf8(data).context("stream is not UTF-8")?);
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|v| v.parse::<i64>().ok());
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("");
            match (event, id) {
                ("snapshot", Some(_)) if !snapshot => {
                    snapshot = true;
                    ready.add_permits(1);
                }
                ("change", Some(id)) => got.push((id, now)),
                _ => {}
            }
        }
    }
    Ok(got)
}

pub(crate) async fn run(r: SseRun) -> Result<()> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if (limit as usize) < r.subscribers + 100 {
        bail!(
            "open-file limit is {limit}; {} subscribers need more",
            r.subscribers
        );
    }
    let uri: hyper::Uri = r.url.parse().context("invalid --url")?;
    let authority = uri
        .authority()
        .context("--url needs host:port")?
        .to_string();
    let addr = tokio::net::lookup_host(&authority)
        .await?
        .next()
        .context("cannot resolve --url")?;
    let base = r.write_url.as_deref().unwrap_or(&r.url);
    let toggles =
        crate::Toggles::create(base, &r.admin_key, &r.project, &r.environment, "sse-bench").await?;
    let rss_before = r.server_pid.and_then(rss_kib);

    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let key = Arc::new(r.server_key.clone());
    let mut tasks = Vec::with_capacity(r.subscribers);
    let opened = Instant::now();
    for i in 0..r.subscribers {
        let (ready, key, authority) = (ready.clone(), key.clone(), authority.clone());
        tasks.push(tokio::spawn(subscribe(
            addr, authority, key, ready, r.changes,
        )));
        if i % 500 == 499 {
            // Let the server accept in batches.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let all_ready = tokio::time::timeout(
        Duration::from_secs(120),
        ready.acquire_many(r.subscribers as u32),
    )
    .await
    .context("subscribers did not all get their snapshot within 120 s")??;
    all_ready.forget();
    let connect_time = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = r.server_pid.and_then(rss_kib);

    // Changes, one at a time; the acknowledgement time of each version.
    let acks = toggles.run(r.changes, r.interval).await?;
    let mut delays: Vec<u64> = Vec::with_capacity(r.subscribers * r.changes);
    let mut missing = 0usize;
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(30), t).await {
            Ok(Ok(Ok(got))) => {
                missing += r.changes.saturating_sub(got.len());
                for (id, at) in got {
                    if let Some(ack) = acks.get(&id) {
                        delays.push(at.saturating_duration_since(*ack).as_micros() as u64);
                    }
                }
            }
            _ => missing += r.changes,
        }
    }
    delays.sort_unstable();
    println!(
        "sse: {} subscribers (connected in {:.1} s), {} changes {} ms apart: {} receipts, {missing} missing; delay from acknowledgement to receipt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.subscribers,
        connect_time.as_secs_f64(),
        r.changes,
        r.interval.as_millis(),
        delays.len(),
        percentile(&delays, 0.5) as f64 / 1000.0,
        percentile(&delays, 0.99) as f64 / 1000.0,
        delays.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    if let (Some(before), Some(idle)) = (rss_before, rss_idle) {
        println!(
            "server RSS: {before} KiB before, {idle} KiB with {} idle subscribers = {:.1} KiB per subscriber",
            r.subscribers,
            idle.saturating_sub(before) as f64 / r.subscribers as f64
        );
    }
    Ok(())
}
