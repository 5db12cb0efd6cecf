//! Prometheus metrics at `/metrics`: requests by route and status with
//! latency histograms, evaluations by environment and reason, and each
//! environment's snapshot version, age and size.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Status codes the hot routes count separately; others count as `other`.
const HOT_STATUSES: [u16; 9] = [200, 304, 400, 401, 403, 404, 429, 500, 503];

/// Lock-free counters of one hot (data plane) route: it is recorded by the
/// handler itself, without a middleware, to keep evaluation cheap.
#[derive(Default)]
pub(crate) struct HotRoute {
    statuses: [AtomicU64; HOT_STATUSES.len() + 1],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl HotRoute {
    /// Records one request.
    pub(crate) fn observe(&self, status: u16, elapsed: Duration) {
        let i = HOT_STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(HOT_STATUSES.len());
        self.statuses[i].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        // Buckets are cumulative at render time; record only the first.
        if let Some(b) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// The data plane's routes, counted lock-free.
#[derive(Default)]
pub(crate) struct HotRoutes {
    pub(crate) ofrep_single: HotRoute,
    pub(crate) ofrep_bulk: HotRoute,
    pub(crate) snapshot: HotRoute,
    pub(crate) native_evaluate: HotRoute,
}

impl HotRoutes {
    /// Each route with its template, as the admin routes are labelled.
    fn routes(&self) -> [(&'static str, &HotRoute); 4] {
        [
            ("/ofrep/v1/evaluate/flags/{key}", &self.ofrep_single),
            ("/ofrep/v1/evaluate/flags", &self.ofrep_bulk),
            ("/api/v1/snapshot", &self.snapshot),
            ("/api/v1/evaluate", &self.native_evaluate),
        ]
    }
}

/// Counters shared by all requests. The admin routes use plain mutexes
/// (each request takes one briefly, never across an `.await`); the data
/// plane uses `HotRoutes`.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) hot: HotRoutes,
    /// SSE change events sent (each once, whatever the subscriber count).
    pub(crate) events_published: AtomicU64,
    /// SSE subscribers dropped for falling behind.
    pub(crate) subscribers_dropped: AtomicU64,
    /// Connections: open, accepted, refused, timed out.
    pub(crate) conns: Arc<crate::http::ConnMetrics>,
    /// Route template to status to series.
    requests: Mutex<HashMap<String, HashMap<u16, Series>>>,
    /// Evaluation counters per environment id. Locked only when a
    /// snapshot is installed and when rendering; requests count through
    /// the `Arc` their snapshot holds.
    evaluations: Mutex<HashMap<i64, Arc<EvalCounters>>>,
    /// flagd's gRPC services: left-out flags, open streams.
    pub(crate) grpc: crate::grpc::metrics::GrpcMetrics,
}

/// The reasons evaluations are counted by, in `EvalCounters` order.
const REASONS: [vexil_engine::Reason; 6] = [
    vexil_engine::Reason::Static,
    vexil_engine::Reason::TargetingMatch,
    vexil_engine::Reason::Split,
    vexil_engine::Reason::Default,
    vexil_engine::Reason::Disabled,
    vexil_engine::Reason::Error,
];

/// Evaluations of one environment by reason: lock-free, reached from the
/// environment's snapshot and carried over from version to version.
#[derive(Debug)]
pub(crate) struct EvalCounters {
    /// `project/environment` (an edge learns it after its first version).
    label: Mutex<String>,
    by_reason: [AtomicU64; REASONS.len()],
}

impl EvalCounters {
    /// Counts `n` evaluations that ended with `reason`.
    pub(crate) fn add(&self, reason: vexil_engine::Reason, n: u64) {
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REASONS.len() - 1);
        self.by_reason[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a batch of evaluations.
    pub(crate) fn add_all<'a>(
        &self,
        evals: impl IntoIterator<Item = &'a vexil_engine::Evaluation<'a>>,
    ) {
        let mut counts = [0u64; REASONS.len()];
        for e in evals {
            let i = REASONS
                .iter()
                .position(|r| *r == e.reason)
                .unwrap_or(REASONS.len() - 1);
            counts[i] += 1;
        }
        for (slot, n) in self.by_reason.iter().zip(counts) {
            if n > 0 {
                slot.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

impl Metrics {
    pub(crate) fn observe(&self, route: &str, status: u16, seconds: f64) {
        let Ok(mut requests) = self.requests.lock() else {
            return;
        };
        let by_status = match requests.get_mut(route) {
            Some(m) => m,
            None => requests.entry(route.to_owned()).or_default(),
        };
        let s = by_status.entry(status).or_default();
        s.count += 1;
        s.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// The evaluation counters of an environment (created on first use).
    pub(crate) fn eval_counters(&self, env_id: i64, label: &str) -> Arc<EvalCounters> {
        let mut evals = self.evaluations.lock().unwrap_or_else(|p| p.into_inner());
        let counters = evals
            .entry(env_id)
            .or_insert_with(|| {
                Arc::new(EvalCounters {
                    label: Mutex::new(label.to_owned()),
                    by_reason: Default::default(),
                })
            })
            .clone();
        let mut known = counters.label.lock().unwrap_or_else(|p| p.into_inner());
        if *known != label {
            *known = label.to_owned();
        }
        drop(known);
        counters
    }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// `vexil_http_requests_total` and `vexil_http_request_duration_seconds`:
    /// the admin routes' series and the data plane's hot routes.
    pub(crate) fn render_requests(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP vexil_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE vexil_http_requests_total counter");
        let requests: Vec<(String, u16, Series)> = self
            .requests
            .lock()
            .map(|m| {
                m.iter()
                    .flat_map(|(r, by)| by.iter().map(move |(s, v)| (r.clone(), *s, v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        for (route, status, s) in &requests {
            let _ = writeln!(
                out,
                "vexil_http_requests_total{{route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                s.count
            );
        }
        let hot = self.hot.routes();
        for (route, h) in hot {
            for (i, n) in h.statuses.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let status = HOT_STATUSES
                        .get(i)
                        .map_or("other".to_owned(), ToString::to_string);
                    let _ = writeln!(
                        out,
                        "vexil_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP vexil_http_request_duration_seconds HTTP request latency by route and status."
        );
        let _ = writeln!(out, "# TYPE vexil_http_request_duration_seconds histogram");
        for (route, status, s) in &requests {
            let labels = format!("route=\"{}\",status=\"{status}\"", escape(route));
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "vexil_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "vexil_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "vexil_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "vexil_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        for (route, h) in hot {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let labels = format!("route=\"{route}\",status=\"any\"");
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "vexil_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "vexil_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "vexil_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "vexil_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
    }

    /// `vexil_evaluations_total` by environment and reason.
    pub(crate) fn render_evaluations(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP vexil_evaluations_total Flag evaluations by environment and reason."
        );
        let _ = writeln!(out, "# TYPE vexil_evaluations_total counter");
        let counters: Vec<Arc<EvalCounters>> = self
            .evaluations
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for c in &counters {
            let label = c.label.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for (reason, n) in REASONS.iter().zip(&c.by_reason) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "vexil_evaluations_total{{environment=\"{}\",reason=\"{}\"}} {n}",
                        escape(&label),
                        reason.as_str()
                    );
                }
            }
        }
    }

    /// The change streams: subscribers, events published, subscribers
    /// dropped.
    pub(crate) fn render_streams(&self, out: &mut String, subscribers: usize) {
        let _ = writeln!(out, "# HELP vexil_sse_subscribers Open SSE change streams.");
        let _ = writeln!(out, "# TYPE vexil_sse_subscribers gauge");
        let _ = writeln!(out, "vexil_sse_subscribers {subscribers}");
        let _ = writeln!(
            out,
            "# HELP vexil_sse_events_published_total Change events fanned out (serialised once each)."
        );
        let _ = writeln!(out, "# TYPE vexil_sse_events_published_total counter");
        let _ = writeln!(
            out,
            "vexil_sse_events_published_total {}",
            self.events_published.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vexil_sse_subscribers_dropped_total Subscribers dropped for falling behind."
        );
        let _ = writeln!(out, "# TYPE vexil_sse_subscribers_dropped_total counter");
        let _ = writeln!(
            out,
            "vexil_sse_subscribers_dropped_total {}",
            self.subscribers_dropped.load(Ordering::Relaxed)
        );
    }
}
