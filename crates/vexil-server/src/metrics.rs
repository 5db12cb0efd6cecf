//! Prometheus metrics at `/metrics`: requests by route and status with
//! latency histograms, evaluations by environment and reason, and each
//! environment's snapshot version, age and size.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

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
    /// `project/environment`.
    label: String,
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
    fn observe(&self, route: &str, status: u16, seconds: f64) {
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
        evals
            .entry(env_id)
            .or_insert_with(|| {
                Arc::new(EvalCounters {
                    label: label.to_owned(),
                    by_reason: Default::default(),
                })
            })
            .clone()
    }
}

/// Middleware: times every request and counts it by route and status.
pub(crate) async fn track(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let resp = match st.limiter.enter() {
        Some(_in_flight) => match tokio::time::timeout(st.request_timeout, next.run(req)).await {
            Ok(resp) => resp,
            Err(_) => crate::api::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took longer than the server's limit",
            )
            .into_response(),
        },
        None => crate::api::error::ApiError::overloaded().into_response(),
    };
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    st.metrics.observe(
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub(crate) async fn render(State(st): State<Arc<AppState>>) -> Response {
    let mut out = String::with_capacity(4096);
    let _ = writeln!(
        out,
        "# HELP vexil_http_requests_total HTTP requests by route and status."
    );
    let _ = writeln!(out, "# TYPE vexil_http_requests_total counter");
    let requests: Vec<(String, u16, Series)> = st
        .metrics
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
    let hot = [
        (
            "/ofrep/v1/evaluate/flags/{key}",
            &st.metrics.hot.ofrep_single,
        ),
        ("/ofrep/v1/evaluate/flags", &st.metrics.hot.ofrep_bulk),
        ("/api/v1/snapshot", &st.metrics.hot.snapshot),
        ("/api/v1/evaluate", &st.metrics.hot.native_evaluate),
    ];
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
    let _ = writeln!(
        out,
        "# HELP vexil_evaluations_total Flag evaluations by environment and reason."
    );
    let _ = writeln!(out, "# TYPE vexil_evaluations_total counter");
    let counters: Vec<Arc<EvalCounters>> = st
        .metrics
        .evaluations
        .lock()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    for c in &counters {
        for (reason, n) in REASONS.iter().zip(&c.by_reason) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "vexil_evaluations_total{{environment=\"{}\",reason=\"{}\"}} {n}",
                    escape(&c.label),
                    reason.as_str()
                );
            }
        }
    }
    let snapshots = st.snapshots();
    let _ = writeln!(
        out,
        "# HELP vexil_snapshot_version Environment version being served."
    );
    let _ = writeln!(out, "# TYPE vexil_snapshot_version gauge");
    for s in snapshots.values() {
        let _ = writeln!(
            out,
            "vexil_snapshot_version{{environment=\"{}/{}\"}} {}",
            escape(&s.env.project_key),
            escape(&s.env.key),
            s.env.version
        );
    }
    let _ = writeln!(
        out,
        "# HELP vexil_snapshot_age_seconds Time since the served version was installed."
    );
    let _ = writeln!(out, "# TYPE vexil_snapshot_age_seconds gauge");
    for s in snapshots.values() {
        let _ = writeln!(
            out,
            "vexil_snapshot_age_seconds{{environment=\"{}/{}\"}} {:.3}",
            escape(&s.env.project_key),
            escape(&s.env.key),
            s.installed_at.elapsed().as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "# HELP vexil_snapshot_flags Flags in the served version."
    );
    let _ = writeln!(out, "# TYPE vexil_snapshot_flags gauge");
    for s in snapshots.values() {
        let _ = writeln!(
            out,
            "vexil_snapshot_flags{{environment=\"{}/{}\"}} {}",
            escape(&s.env.project_key),
            escape(&s.env.key),
            s.snapshot.len()
        );
    }
    let _ = writeln!(
        out,
        "# HELP vexil_snapshot_invalid_flags Served flags whose definition or targeting is invalid: their evaluations give PARSE_ERROR."
    );
    let _ = writeln!(out, "# TYPE vexil_snapshot_invalid_flags gauge");
    for s in snapshots.values() {
        let _ = writeln!(
            out,
            "vexil_snapshot_invalid_flags{{environment=\"{}/{}\"}} {}",
            escape(&s.env.project_key),
            escape(&s.env.key),
            s.snapshot.flags().filter(|f| f.is_broken()).count()
        );
    }
    let _ = writeln!(out, "# HELP vexil_sse_subscribers Open SSE change streams.");
    let _ = writeln!(out, "# TYPE vexil_sse_subscribers gauge");
    let _ = writeln!(out, "vexil_sse_subscribers {}", st.subscribers());
    let _ = writeln!(
        out,
        "# HELP vexil_sse_events_published_total Change events fanned out (serialised once each)."
    );
    let _ = writeln!(out, "# TYPE vexil_sse_events_published_total counter");
    let _ = writeln!(
        out,
        "vexil_sse_events_published_total {}",
        st.metrics.events_published.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP vexil_sse_subscribers_dropped_total Subscribers dropped for falling behind."
    );
    let _ = writeln!(out, "# TYPE vexil_sse_subscribers_dropped_total counter");
    let _ = writeln!(
        out,
        "vexil_sse_subscribers_dropped_total {}",
        st.metrics.subscribers_dropped.load(Ordering::Relaxed)
    );
    st.metrics.conns.render(&mut out);
    let store_ops = st.store_metrics.snapshot();
    let _ = writeln!(
        out,
        "# HELP vexil_store_calls_total Store calls by operation."
    );
    let _ = writeln!(out, "# TYPE vexil_store_calls_total counter");
    for (op, s) in &store_ops {
        let _ = writeln!(
            out,
            "vexil_store_calls_total{{operation=\"{op}\"}} {}",
            s.calls
        );
    }
    let _ = writeln!(
        out,
        "# HELP vexil_store_call_seconds_total Time spent in store calls by operation."
    );
    let _ = writeln!(out, "# TYPE vexil_store_call_seconds_total counter");
    for (op, s) in &store_ops {
        let _ = writeln!(
            out,
            "vexil_store_call_seconds_total{{operation=\"{op}\"}} {}",
            s.seconds
        );
    }
    let _ = writeln!(
        out,
        "# HELP vexil_store_errors_total Failed store calls by operation and kind."
    );
    let _ = writeln!(out, "# TYPE vexil_store_errors_total counter");
    for (op, s) in &store_ops {
        for (kind, n) in &s.errors {
            let _ = writeln!(
                out,
                "vexil_store_errors_total{{operation=\"{op}\",kind=\"{kind}\"}} {n}"
            );
        }
    }
    let up = st.store.ping().await.is_ok();
    let _ = writeln!(out, "# HELP vexil_store_up Whether the store answers.");
    let _ = writeln!(out, "# TYPE vexil_store_up gauge");
    let _ = writeln!(out, "vexil_store_up {}", u8::from(up));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}
