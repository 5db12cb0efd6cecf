//! HTTP load over raw hyper connections (so the load generator costs as
//! little as possible), and the bare hyper server that sets the ceiling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::percentile;

/// Runs the closed loop and prints one summary line.
pub(crate) async fn run(
    url: &str,
    method: &str,
    body: String,
    headers: &[String],
    connections: usize,
    seconds: u64,
) -> Result<()> {
    let uri: hyper::Uri = url.parse().context("invalid --url")?;
    let authority = uri.authority().context("--url needs host:port")?.clone();
    let addr: SocketAddr = tokio::net::lookup_host(authority.as_str())
        .await?
        .next()
        .context("cannot resolve --url")?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut parsed = Vec::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header `{h}` is not `Name: value`"))?;
        parsed.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let method: hyper::Method = method.parse().context("invalid --method")?;
    let body = Bytes::from(body);
    let parsed = Arc::new(parsed);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (parsed, measuring, stop, body, method, path, authority) = (
            parsed.clone(),
            measuring.clone(),
            stop.clone(),
            body.clone(),
            method.clone(),
            path.clone(),
            authority.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            // Latencies per status, to compare refused and admitted requests.
            let mut statuses: Vec<(u16, Vec<u32>)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut req = Request::builder()
                    .method(method.clone())
                    .uri(path.as_str())
                    .header("host", authority.as_str());
                for (n, v) in parsed.iter() {
                    req = req.header(n.as_str(), v.as_str());
                }
                if !body.is_empty() {
                    req = req.header("content-type", "application/json");
                }
                let req = req.body(Full::new(body.clone()))?;
                let t = Instant::now();
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                resp.into_body().collect().await?;
                if measuring.load(Ordering::Relaxed) {
                    let micros = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    latencies.push(micros);
                    match statuses.iter_mut().find(|(s, _)| *s == status) {
                        Some((_, l)) => l.push(micros),
                        None => statuses.push((status, vec![micros])),
                    }
                }
            }
            anyhow::Ok((latencies, statuses))
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u64> = Vec::new();
    let mut statuses: Vec<(u16, Vec<u64>)> = Vec::new();
    for t in tasks {
        let (l, s) = t.await??;
        all.extend(l.into_iter().map(u64::from));
        for (code, lat) in s {
            let lat = lat.into_iter().map(u64::from);
            match statuses.iter_mut().find(|(c, _)| *c == code) {
                Some((_, m)) => m.extend(lat),
                None => statuses.push((code, lat.collect())),
            }
        }
    }
    if all.is_empty() {
        bail!("no request completed");
    }
    all.sort_unstable();
    statuses.sort_unstable_by_key(|(c, _)| *c);
    for (_, l) in &mut statuses {
        l.sort_unstable();
    }
    let per_status: Vec<String> = statuses
        .iter()
        .map(|(c, l)| {
            format!(
                "{c}: {} at {:.0}/s, p50 {:.3} ms, p99 {:.3} ms",
                l.len(),
                l.len() as f64 / elapsed,
                percentile(l, 0.5) as f64 / 1000.0,
                percentile(l, 0.99) as f64 / 1000.0
            )
        })
        .collect();
    let statuses: Vec<String> = statuses
        .iter()
        .map(|(c, l)| format!("{c}: {}", l.len()))
        .collect();
    println!(
        "http: {:.0} req/s over {connections} connections ({} requests in {elapsed:.1} s; {}); latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms",
        all.len() as f64 / elapsed,
        all.len(),
        statuses.join(", "),
        percentile(&all, 0.5) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
        percentile(&all, 0.999) as f64 / 1000.0,
    );
    if per_status.len() > 1 {
        for line in per_status {
            println!("  status {line}");
        }
    }
    Ok(())
}

const BARE_BODY: &[u8] = br#"{"key":"new-checkout","value":true,"reason":"TARGETING_MATCH","variant":"on","metadata":{}}"#;

/// Serves a fixed JSON body to everything, as fast as hyper can.
pub(crate) async fn bare_server(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("bare server listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    // Read the request body, as a real handler would.
                    let _ = req.into_body().collect().await;
                    let resp = Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(BARE_BODY)))?;
                    anyhow::Ok(resp)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
