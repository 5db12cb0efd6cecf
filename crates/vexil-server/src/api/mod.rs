//! The HTTP API: routes, health, body limits, and the fallback.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod eval;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::api::error::ApiError;
use crate::state::AppState;

/// The whole application.
pub(crate) fn app(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::render))
        .route("/openapi.json", get(openapi))
        .merge(
            admin::routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::metrics::track,
            )),
        )
        .merge(eval::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// The OpenAPI description of every route (checked against the router by
/// a test).
async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../api/openapi.json"),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Alive: the process answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: every environment's snapshot is loaded and the store answers.
async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let loaded = st.loaded.load(Ordering::Acquire);
    let store = st.store.ping().await;
    let versions: serde_json::Map<String, serde_json::Value> = st
        .snapshots()
        .values()
        .map(|s| {
            (
                format!("{}/{}", s.env.project_key, s.env.key),
                json!({"version": s.env.version, "flags": s.snapshot.len()}),
            )
        })
        .collect();
    let body = json!({
        "snapshotsLoaded": loaded,
        "store": if store.is_ok() { "ok" } else { "unavailable" },
        "environments": versions,
    });
    let status = if loaded && store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
