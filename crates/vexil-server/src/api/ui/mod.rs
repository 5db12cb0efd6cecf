//! The web UI: its files (`web/`, embedded in the binary) served under
//! `/ui/` with a strict Content-Security-Policy, `/` sending browsers
//! there, and the few routes only the UI needs under `/ui/api/`: sign-in
//! and sign-out (`signin.rs`), and an environment's evaluation with its
//! trace and its change events for a signed-in admin (`live.rs`).
//! Everything else the UI shows comes from the admin API, which accepts
//! the session cookie (see `api::auth`).

mod assets;
mod live;
mod session;
mod signin;

use std::sync::Arc;

use axum::http::Method;

pub(crate) use session::{Sessions, csrf_ok, session_id};

use crate::http::Table;
use crate::state::AppState;

/// The web UI's routes.
pub(crate) fn routes() -> Table<Arc<AppState>> {
    let env = "/ui/api/projects/{project}/environments/{env}";
    Table::new()
        .route(Method::GET, "/", assets::root)
        .route(Method::GET, "/ui/", assets::index)
        .route(Method::GET, "/ui/{file}", assets::file)
        .route(Method::POST, "/ui/api/session", signin::sign_in)
        .route(Method::GET, "/ui/api/session", signin::current)
        .route(Method::DELETE, "/ui/api/session", signin::sign_out)
        .route(Method::POST, &format!("{env}/evaluate"), live::evaluate)
        .route(Method::GET, &format!("{env}/events"), live::events)
}
