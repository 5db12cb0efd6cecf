//! The edge's application: the data plane's routes, and its own health,
//! readiness and metrics, which speak of the upstream instead of a store.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vexil_sdk::Status;

use super::Upstream;
use crate::api::Application;
use crate::http::Table;
use crate::metrics::escape;
use crate::plane::Plane;

/// What the edge's own routes read.
#[derive(Clone)]
struct Edge {
    plane: Arc<Plane>,
    upstreams: Vec<Arc<Upstream>>,
}

/// The whole edge application.
pub(super) fn app(
    plane: Arc<Plane>,
    upstreams: Vec<Arc<Upstream>>,
    max_body_bytes: usize,
) -> Application {
    let own = Table::new()
        .route(Method::GET, "/healthz", crate::api::healthz)
        .route(Method::GET, "/readyz", readyz)
        .route(Method::GET, "/metrics", metrics)
        .router
        .with_state(Edge {
            plane: plane.clone(),
            upstreams,
        });
    let router = own
        .merge(crate::plane::routes().router.with_state(plane.clone()))
        .fallback(crate::api::not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Application { router, plane }
}

/// Seconds since the upstream last answered or sent anything.
fn contact_age(state: &vexil_sdk::State) -> Option<f64> {
    let at = state.last_contact?;
    Some(
        SystemTime::now()
            .duration_since(at)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}

/// Ready once every environment has a snapshot (from upstream or the
/// cache); each says whether it is `current` (following upstream) or
/// `stale` (serving the last known version), its version, and the time
/// since upstream was last heard from.
async fn readyz(State(edge): State<Edge>) -> Response {
    let mut environments = serde_json::Map::new();
    let mut ready = true;
    for u in &edge.upstreams {
        let state = u.state();
        let installed = edge.plane.snapshot(u.id);
        // Without its keys the edge would refuse every caller.
        let servable = installed.is_some() && u.keys_installed();
        ready &= servable;
        let status = match (state.status, &installed) {
            _ if !servable => "not_ready",
            (Status::Ready, Some(_)) => "current",
            _ => "stale",
        };
        environments.insert(
            u.name(),
            json!({
                "status": status,
                "version": installed.as_ref().map(|s| s.env.version),
                "upstream": state.status.as_str(),
                "secondsSinceContact": contact_age(&state),
                "refusedVersions": state.refused,
                "error": state.error.as_ref().map(|e| e.to_string()),
            }),
        );
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ready, "environments": environments})),
    )
        .into_response()
}

/// An upstream series: name, type, help, and its value for a state.
type Series<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a dyn Fn(&vexil_sdk::State, Option<i64>) -> Option<f64>,
);

/// `/metrics`: the data plane's series (as the server's) and the
/// upstream's.
async fn metrics(State(edge): State<Edge>) -> Response {
    let mut out = String::with_capacity(4096);
    let m = &edge.plane.metrics;
    m.render_requests(&mut out);
    m.render_evaluations(&mut out);
    m.grpc.render(&mut out);
    edge.plane.render_snapshots(&mut out);
    m.render_streams(&mut out, edge.plane.subscribers());
    m.conns.render(&mut out);
    let states: Vec<(String, vexil_sdk::State, Option<i64>)> = edge
        .upstreams
        .iter()
        .map(|u| {
            (
                u.name(),
                u.state(),
                edge.plane.snapshot(u.id).map(|s| s.env.version),
            )
        })
        .collect();
    let series: [Series<'_>; 4] = [
        (
            "vexil_edge_upstream_up",
            "gauge",
            "Whether the environment follows upstream's current version (1) or serves a stale one (0).",
            &|s, _| Some(f64::from(u8::from(s.status == Status::Ready))),
        ),
        (
            "vexil_edge_upstream_reconnects_total",
            "counter",
            "Times the upstream stream was opened again.",
            &|s, _| Some(s.reconnects as f64),
        ),
        (
            "vexil_edge_upstream_contact_age_seconds",
            "gauge",
            "Seconds since upstream last answered or sent anything (lag in time).",
            &|s, _| contact_age(s),
        ),
        (
            "vexil_edge_upstream_refused_versions_total",
            "counter",
            "Upstream versions refused because they did not compile here.",
            &|s, _| Some(s.refused as f64),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (env, state, version) in &states {
            if let Some(v) = value(state, *version) {
                let _ = writeln!(out, "{name}{{environment=\"{}\"}} {v}", escape(env));
            }
        }
    }
    // Versions behind: known while a newer upstream version was refused.
    let _ = writeln!(
        out,
        "# HELP vexil_edge_upstream_lag_versions Versions between the one served and the newest upstream version seen."
    );
    let _ = writeln!(out, "# TYPE vexil_edge_upstream_lag_versions gauge");
    for (env, state, version) in &states {
        let lag = match (state.refused_version, version) {
            (Some(newest), Some(v)) => (newest - v).max(0),
            _ => 0,
        };
        let _ = writeln!(
            out,
            "vexil_edge_upstream_lag_versions{{environment=\"{}\"}} {lag}",
            escape(env)
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}
