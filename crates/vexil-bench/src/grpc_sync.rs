//! gRPC sync fan-out: many in-process-provider-like subscribers of flagd's
//! `flagd.sync.v1.FlagSyncService/SyncFlags`, each on its own connection, a
//! series of toggles through the admin API, and the delay from each write's
//! acknowledgement to each subscriber's receipt of a document reflecting it.
//!
//! The flagd documents carry no version, so receipts are matched to changes
//! by order and checked by the toggled flag's `state`: the toggles alternate
//! `DISABLED`, `ENABLED`, ... from an enabled flag, and a subscriber's
//! documents after its first are walked against that sequence. A document
//! whose state is not the next change's means the server sent only the
//! newer version (a stream that lagged gets the installed version, not each
//! one): the skipped change counts as missing and the document is matched
//! to the following change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::{Semaphore, watch};
use tonic::transport::Endpoint;
use vexil_flagd_grpc::sync_v1::SyncFlagsRequest;
use vexil_flagd_grpc::sync_v1::flag_sync_service_client::FlagSyncServiceClient;

use crate::percentile;

/// The flag toggled (created by the run unless it exists).
const FLAG: &str = "grpc-sync-bench";

pub(crate) struct GrpcSyncRun {
    /// The gRPC listener (`http://127.0.0.1:PORT`).
    pub(crate) grpc_url: String,
    /// The HTTP listener, where the changes are written.
    pub(crate) write_url: String,
    pub(crate) server_key: String,
    pub(crate) admin_key: String,
    pub(crate) project: String,
    pub(crate) environment: String,
    pub(crate) subscribers: usize,
    pub(crate) changes: usize,
    pub(crate) interval: Duration,
}

/// The bench flag's state in a flagd document: `true` for `ENABLED`,
/// `None` when the document does not have the flag.
fn flag_enabled(document: &str) -> Result<Option<bool>> {
    let doc: serde_json::Value =
        serde_json::from_str(document).context("the sync document is not JSON")?;
    let Some(flag) = doc.get("flags").and_then(|f| f.get(FLAG)) else {
        return Ok(None);
    };
    match flag.get("state").and_then(|s| s.as_str()) {
        Some("ENABLED") => Ok(Some(true)),
        Some("DISABLED") => Ok(Some(false)),
        other => bail!("unexpected state of {FLAG}: {other:?}"),
    }
}

/// What one subscriber saw.
struct Seen {
    /// The state of the flag in the first document that had it.
    first: bool,
    /// Each later document: the flag's state and when it was received.
    documents: Vec<(bool, Instant)>,
    /// Size of the first document, in bytes.
    size: usize,
}

/// One subscriber: its own connection, one SyncFlags stream; reports ready
/// on the first document that has the bench flag, then records each
/// document until `stop` or until it has `wanted`.
async fn subscribe(
    endpoint: Endpoint,
    id: usize,
    key: Arc<String>,
    selector: Arc<String>,
    ready: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    wanted: usize,
) -> Result<Seen> {
    let channel = endpoint.connect().await.context("cannot connect")?;
    let mut client = FlagSyncServiceClient::new(channel);
    let mut request = tonic::Request::new(SyncFlagsRequest {
        provider_id: format!("vexil-bench-{id}"),
        selector: selector.as_ref().clone(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}")
            .parse()
            .context("the server key is not a valid header value")?,
    );
    let mut stream = client.sync_flags(request).await?.into_inner();
    let mut seen: Option<Seen> = None;
    loop {
        if seen.as_ref().is_some_and(|s| s.documents.len() >= wanted) {
            break;
        }
        let message = tokio::select! {
            m = stream.message() => m?,
            _ = stop.wait_for(|s| *s) => break,
        };
        let at = Instant::now();
        let Some(message) = message else {
            break;
        };
        let document = &message.flag_configuration;
        let Some(enabled) = flag_enabled(document)? else {
            // A version from before the flag was created.
            continue;
        };
        match &mut seen {
            None => {
                seen = Some(Seen {
                    first: enabled,
                    documents: Vec::with_capacity(wanted),
                    size: document.len(),
                });
                ready.add_permits(1);
            }
            Some(s) => s.documents.push((enabled, at)),
        }
    }
    seen.context("the stream ended before a document with the bench flag")
}

/// Matches one subscriber's documents to the changes (see the module
/// documentation): the delay of each matched one, in microseconds, and the
/// documents that matched no change.
fn match_documents(
    documents: &[(bool, Instant)],
    acks: &[Instant],
    delays: &mut Vec<u64>,
    early: &mut usize,
) -> usize {
    let mut next = 0;
    let mut unmatched = 0;
    for &(enabled, at) in documents {
        // Change j disables the flag when j is even, enables it when odd.
        while next < acks.len() && (next % 2 == 1) != enabled {
            next += 1;
        }
        let Some(ack) = acks.get(next) else {
            unmatched += 1;
            continue;
        };
        if at < *ack {
            *early += 1;
        }
        delays.push(at.saturating_duration_since(*ack).as_micros() as u64);
        next += 1;
    }
    unmatched
}

pub(crate) async fn run(r: GrpcSyncRun) -> Result<()> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if (limit as usize) < r.subscribers + 100 {
        bail!(
            "open-file limit is {limit}; {} subscribers need more",
            r.subscribers
        );
    }
    let endpoint = Endpoint::from_shared(r.grpc_url.clone())
        .context("invalid --grpc-url")?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10));
    let toggles =
        crate::Toggles::create(&r.write_url, &r.admin_key, &r.project, &r.environment, FLAG)
            .await?;

    let ready = Arc::new(Semaphore::new(0));
    let (stop_tx, stop) = watch::channel(false);
    let key = Arc::new(r.server_key.clone());
    let selector = Arc::new(format!("{}/{}", r.project, r.environment));
    let mut tasks = Vec::with_capacity(r.subscribers);
    let opened = Instant::now();
    for id in 0..r.subscribers {
        tasks.push(tokio::spawn(subscribe(
            endpoint.clone(),
            id,
            key.clone(),
            selector.clone(),
            ready.clone(),
            stop.clone(),
            r.changes,
        )));
    }
    // Every subscriber's first document, or the first one to fail.
    let deadline = opened + Duration::from_secs(120);
    while ready.available_permits() < r.subscribers {
        if let Some(i) = tasks.iter().position(|t| t.is_finished()) {
            return match tasks.swap_remove(i).await? {
                Err(e) => Err(e.context("a subscriber failed before its first document")),
                Ok(_) => bail!("a subscriber ended before the changes"),
            };
        }
        if Instant::now() > deadline {
            bail!("subscribers did not all get their first document within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_time = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Changes, one at a time; each version's acknowledgement, in order.
    let acks = toggles.run(r.changes, r.interval).await?;
    let mut acks: Vec<(i64, Instant)> = acks.into_iter().collect();
    acks.sort_unstable_by_key(|(version, _)| *version);
    let acks: Vec<Instant> = acks.into_iter().map(|(_, at)| at).collect();
    // Time for the last change to arrive everywhere; subscribers that have
    // a document for every change have already ended.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(true);
    let mut delays = Vec::with_capacity(r.subscribers * r.changes);
    let (mut early, mut unmatched, mut failed, mut size) = (0, 0, 0, 0);
    for t in tasks {
        let seen = match tokio::time::timeout(Duration::from_secs(5), t).await {
            Ok(seen) => seen,
            Err(_) => Ok(Err(anyhow::anyhow!("did not stop within 5 s"))),
        };
        match seen {
            Ok(Ok(seen)) => {
                if !seen.first {
                    bail!("{FLAG} was disabled before the changes: run on a fresh environment");
                }
                size = seen.size;
                unmatched += match_documents(&seen.documents, &acks, &mut delays, &mut early);
            }
            Ok(Err(e)) => {
                eprintln!("a subscriber failed: {e:#}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("a subscriber panicked: {e}");
                failed += 1;
            }
        }
    }
    delays.sort_unstable();
    let expected = r.subscribers * r.changes;
    println!(
        "grpc-sync: {} subscribers (first documents in {:.1} s, {size} bytes), {} changes {} ms apart: {} receipts of {expected} ({} missing, {unmatched} unmatched documents, {failed} subscribers failed, {early} before the writer's acknowledgement); acknowledgement to document p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.subscribers,
        connect_time.as_secs_f64(),
        r.changes,
        r.interval.as_millis(),
        delays.len(),
        expected - delays.len().min(expected),
        percentile(&delays, 0.5) as f64 / 1000.0,
        percentile(&delays, 0.99) as f64 / 1000.0,
        delays.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    Ok(())
}
