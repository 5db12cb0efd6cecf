//! The floor of SSE fan-out on one core: what writing one event to each of
//! N loopback sockets costs when nothing else is done per subscriber (no
//! task to wake, no HTTP framing beyond the chunk's own bytes, no
//! channel). A writer thread writes one frame to every socket, in turn,
//! with one `write` each; a reader thread (another core, as the
//! subscribers' process would be) reads them and records when each
//! arrived. The writer's time per socket is the least a server spends per
//! subscriber and event; the receipt delays are the best the server's
//! figures could be.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncReadExt as _;

/// One run: `sockets` connections, `rounds` events to each.
pub(crate) struct FloorRun {
    pub(crate) sockets: usize,
    pub(crate) rounds: usize,
    pub(crate) frame_bytes: usize,
    pub(crate) interval: Duration,
    /// Cores for the writer and the reader thread, as for the server and
    /// the load generator in the other benchmarks.
    pub(crate) writer_cpu: Option<u32>,
    pub(crate) reader_cpu: Option<u32>,
}

/// Pins the calling thread to `cpu` with `taskset` on its thread id (no
/// affinity call in std).
fn pin_this_thread(cpu: Option<u32>) -> Result<()> {
    let Some(cpu) = cpu else { return Ok(()) };
    let link = std::fs::read_link("/proc/thread-self").context("cannot read /proc/thread-self")?;
    let tid = link
        .file_name()
        .and_then(|t| t.to_str())
        .context("no thread id in /proc/thread-self")?
        .to_owned();
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid])
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run taskset")?;
    if !status.success() {
        bail!("taskset could not pin thread {tid} to core {cpu}");
    }
    Ok(())
}

pub(crate) fn run(r: FloorRun) -> Result<()> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if (limit as usize) < 2 * r.sockets + 16 {
        bail!(
            "open-file limit is {limit}; {} sockets need more",
            r.sockets
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // The readers' side: its own thread and runtime.
    let frame_len = chunk(r.frame_bytes, 0).len();
    let (sockets, rounds, reader_cpu) = (r.sockets, r.rounds, r.reader_cpu);
    pin_this_thread(r.writer_cpu)?;
    let reader = std::thread::spawn(move || -> Result<Vec<Vec<Instant>>> {
        pin_this_thread(reader_cpu)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut tasks = Vec::with_capacity(sockets);
            for _ in 0..sockets {
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                tasks.push(tokio::spawn(async move {
                    let mut got = Vec::with_capacity(rounds);
                    let mut buf = vec![0u8; frame_len * 4];
                    let mut pending = 0usize;
                    while got.len() < rounds {
                        let n = stream.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        let now = Instant::now();
                        pending += n;
                        while pending >= frame_len {
                            pending -= frame_len;
                            got.push(now);
                        }
                    }
                    anyhow::Ok(got)
                }));
            }
            let mut all = Vec::with_capacity(sockets);
            for t in tasks {
                all.push(t.await??);
            }
            Ok(all)
        })
    });
    let mut writers: Vec<TcpStream> = Vec::with_capacity(r.sockets);
    for _ in 0..r.sockets {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        writers.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut starts = Vec::with_capacity(r.rounds);
    let mut per_write = Vec::with_capacity(r.rounds);
    for round in 0..r.rounds {
        let frame = chunk(r.frame_bytes, round);
        let start = Instant::now();
        for s in &mut writers {
            s.write_all(&frame).context("write")?;
        }
        per_write.push(start.elapsed().as_nanos() as u64 / r.sockets as u64);
        starts.push(start);
        std::thread::sleep(r.interval);
    }
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let mut delays: Vec<u64> = Vec::with_capacity(r.sockets * r.rounds);
    for times in &got {
        for (round, at) in times.iter().enumerate() {
            delays.push(at.saturating_duration_since(starts[round]).as_micros() as u64);
        }
    }
    delays.sort_unstable();
    per_write.sort_unstable();
    println!(
        "write floor: {} sockets x {} events of {} bytes: one write {:.2} us (median over events), one event to all {:.1} ms; receipt after the first write p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} receipts)",
        r.sockets,
        r.rounds,
        frame_len,
        crate::percentile(&per_write, 0.5) as f64 / 1000.0,
        crate::percentile(&per_write, 0.5) as f64 * r.sockets as f64 / 1e6,
        crate::percentile(&delays, 0.5) as f64 / 1000.0,
        crate::percentile(&delays, 0.99) as f64 / 1000.0,
        delays.last().copied().unwrap_or(0) as f64 / 1000.0,
        delays.len(),
    );
    Ok(())
}

/// An SSE `change` event of about `bytes` bytes in an HTTP/1.1 chunk, as
/// the server writes one.
fn chunk(bytes: usize, round: usize) -> Vec<u8> {
    let mut event = format!("id: {:08}\nevent: change\ndata: ", round + 1).into_bytes();
    event.resize(bytes.saturating_sub(2).max(event.len()), b'x');
    event.extend_from_slice(b"\n\n");
    let mut out = format!("{:x}\r\n", event.len()).into_bytes();
    out.extend_from_slice(&event);
    out.extend_from_slice(b"\r\n");
    out
}
