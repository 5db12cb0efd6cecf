//! SDK propagation: many `vexil_sdk::Client`s following one upstream (an
//! edge, usually), a series of writes on the server, and the delay from
//! each write's acknowledgement to each client's change listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::percentile;

pub(crate) struct SdkRun {
    /// Where the clients follow (an edge, or the server).
    pub(crate) url: String,
    /// Where the changes are written (the server).
    pub(crate) write_url: String,
    pub(crate) server_key: String,
    pub(crate) admin_key: String,
    pub(crate) project: String,
    pub(crate) environment: String,
    pub(crate) clients: usize,
    pub(crate) changes: usize,
    pub(crate) interval: Duration,
}

pub(crate) async fn run(r: SdkRun) -> Result<()> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if (limit as usize) < r.clients + 100 {
        bail!(
            "open-file limit is {limit}; {} clients need more",
            r.clients
        );
    }
    let toggles = crate::Toggles::create(
        &r.write_url,
        &r.admin_key,
        &r.project,
        &r.environment,
        "sdk-bench",
    )
    .await?;
    // Every listener call: (version, when).
    let heard: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let mut clients = Vec::with_capacity(r.clients);
    let opened = Instant::now();
    for _ in 0..r.clients {
        let client = vexil_sdk::Client::builder()
            .upstream(&r.url, &r.server_key)
            .build()
            .context("cannot build a client")?;
        clients.push(client);
    }
    for c in &clients {
        c.wait_ready(Duration::from_secs(120))
            .await
            .context("a client was not ready within 120 s")?;
    }
    let connect_time = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for c in &clients {
        let heard = heard.clone();
        c.on_flag_change("sdk-bench", move |changed| {
            let at = Instant::now();
            heard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((changed.version, at));
        });
    }
    let acks = toggles.run(r.changes, r.interval).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let heard = heard.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut delays: Vec<u64> = heard
        .iter()
        .filter_map(|(v, at)| {
            acks.get(v)
                .map(|ack| at.saturating_duration_since(*ack).as_micros() as u64)
        })
        .collect();
    delays.sort_unstable();
    let expected = r.clients * r.changes;
    println!(
        "sdk: {} clients (ready in {:.1} s), {} changes {} ms apart: {} listener calls of {expected}; acknowledgement to listener p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.clients,
        connect_time.as_secs_f64(),
        r.changes,
        r.interval.as_millis(),
        delays.len(),
        percentile(&delays, 0.5) as f64 / 1000.0,
        percentile(&delays, 0.99) as f64 / 1000.0,
        delays.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    Ok(())
}
