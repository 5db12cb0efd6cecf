//! The HTTP API: routes, health, body limits, JSON errors for every
//! route family, and the fallback.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod error;
mod extract;
mod media;
mod metrics;
pub(crate) mod ui;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::api::error::{Family, is_plain_error, json_error};
use crate::api::media::{is_json, refused_body_type, refused_media_type};
use crate::http::Table;
use crate::plane::{Hot, Plane};
use crate::state::AppState;

/// The server's own routes: health, readiness, metrics, the OpenAPI
/// description, and the admin API.
fn server_routes() -> Table<Arc<AppState>> {
    Table::new()
        .route(Method::GET, "/healthz", healthz)
        .route(Method::GET, "/readyz", readyz)
        .route(Method::GET, "/metrics", metrics::render)
        .route(Method::GET, "/openapi.json", openapi)
}

/// Every route of the server, as (method, path template): the routers'
/// own lists.
pub(crate) fn route_list() -> Vec<(Method, String)> {
    let mut routes = server_routes().routes;
    routes.extend(admin::routes().routes);
    routes.extend(ui::routes().routes);
    routes.extend(crate::plane::routes().routes);
    routes
}

/// The whole application: the admin API, health, metrics and the
/// OpenAPI description over `state`, and the data plane's routes over
/// `state.plane`.
pub(crate) fn app(state: Arc<AppState>, max_body_bytes: usize) -> Application {
    let admin = admin::routes()
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ));
    let own = server_routes()
        .router
        .merge(admin)
        .merge(ui::routes().router)
        .with_state(state.clone());
    let router = own
        .merge(
            crate::plane::routes()
                .router
                .with_state(state.plane.clone()),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Application {
        router,
        plane: state.plane.clone(),
    }
}

/// What the accept loop serves, on a server or an edge: the data plane's
/// evaluation routes answered directly ([`Hot`]), everything else through
/// the router.
#[derive(Clone)]
pub(crate) struct Application {
    pub(crate) router: Router,
    pub(crate) plane: Arc<Plane>,
}

/// Refusals (a body too large or too slow) use the route family's format.
impl crate::http::App for Application {
    async fn serve(self, parts: Parts, body: Bytes) -> Response {
        let Some(route) = Hot::of(&parts.method, parts.uri.path()) else {
            let body = if body.is_empty() {
                Body::empty()
            } else {
                Body::from(body)
            };
            return serve_request(self.router, Request::from_parts(parts, body)).await;
        };
        if let Some(t) = refused_body_type(&parts.headers, body.is_empty(), is_json) {
            let mut resp = unsupported_media_type(&t);
            crate::plane::cors(&parts.headers, &mut resp);
            return resp;
        }
        route.answer(&self.plane, &parts.headers, &body).await
    }

    fn refuse(
        &self,
        path: &str,
        status: StatusCode,
        code: &'static str,
        message: &str,
    ) -> Response {
        Family::of(path).error(status, code, message)
    }
}

/// The data plane's refusal of a body that is not JSON.
fn unsupported_media_type(media_type: &str) -> Response {
    crate::plane::error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
        "GENERAL",
        &format!("request body must be application/json, not `{media_type}`"),
    )
}

/// Runs a request through the application so that every error answer is
/// JSON in its route family's format (issue 13, item 9): a data-plane body
/// labelled with a non-JSON type is refused with 415 here (admin routes
/// refuse it in their body extractors, after authentication), and axum's
/// plain-text or empty rejections are rewritten. Called by the accept loop
/// for every request (a function, not a middleware layer: no extra boxed
/// future per request).
pub(crate) async fn serve_request(mut app: Router, req: Request) -> Response {
    use tower_service::Service as _;
    let family = Family::of(req.uri().path());
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|o| (header::ORIGIN, o.clone()));
    let mut resp = match refused_media_type(&req, is_json) {
        Some(t) if family == Family::DataPlane => unsupported_media_type(&t),
        _ => {
            let resp = match app.call(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if !is_plain_error(&resp) {
                return resp;
            }
            json_error(family, resp).await
        }
    };
    // Browsers with client keys must be able to read the refusal.
    if let Some(origin) = origin.filter(|_| family == Family::DataPlane) {
        crate::plane::cors(&axum::http::HeaderMap::from_iter([origin]), &mut resp);
    }
    resp
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

pub(crate) async fn not_found(uri: Uri) -> Response {
    Family::of(uri.path()).error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Alive: the process answers.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: every environment's snapshot is loaded and the store answers.
async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let loaded = st.plane.loaded();
    let store = st.store.ping().await;
    let versions: serde_json::Map<String, serde_json::Value> = st
        .plane
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
