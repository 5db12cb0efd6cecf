//! `/metrics` and the admin routes' request accounting: the `track`
//! middleware (in-flight bound, request timeout, series by route and
//! status) and the Prometheus text, assembled from the shared counters,
//! the data plane's snapshots and the store's calls.

use std::fmt::Write as _;
use std::sync::Arc;
use tokio::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::state::AppState;

/// Middleware: times every request and counts it by route and status.
pub(super) async fn track(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let resp = match st.limiter.enter() {
        Some(_in_flight) => match tokio::time::timeout(st.request_timeout, next.run(req)).await {
            Ok(resp) => resp,
            Err(_) => ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took longer than the server's limit",
            )
            .into_response(),
        },
        None => ApiError::overloaded().into_response(),
    };
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    st.metrics.observe(
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`.
pub(super) async fn render(State(st): State<Arc<AppState>>) -> Response {
    let mut out = String::with_capacity(4096);
    st.metrics.render_requests(&mut out);
    st.metrics.render_evaluations(&mut out);
    st.metrics.grpc.render(&mut out);
    st.plane.render_snapshots(&mut out);
    st.metrics.render_streams(&mut out, st.plane.subscribers());
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
