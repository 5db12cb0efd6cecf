//! What the UI needs of an environment beyond the admin API: evaluating a
//! context with the trace of every answer (the playground), and following
//! the environment's versions as they are written (open pages update).
//! Both are for admins (an API key or a UI session), unlike the data
//! plane's routes, which take the environment's server or client keys.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;
use vexil_protocol::native::{NativeAnswer, parse_native_request};

use super::session::session_id;
use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::plane::EnvSnapshot;
use crate::state::AppState;

/// How often an idle event stream sends a comment, and checks that its
/// session still lives.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The installed environment, for an admin of its project.
fn environment(
    st: &AppState,
    who: &Principal,
    project: &str,
    env: &str,
) -> Result<Arc<EnvSnapshot>, ApiError> {
    let snap = st
        .plane
        .snapshots()
        .values()
        .find(|s| s.env.project_key == project && s.env.key == env)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("environment `{project}/{env}` not found")))?;
    who.require_env_admin(&snap.env)?;
    Ok(snap)
}

/// `POST /ui/api/projects/{project}/environments/{env}/evaluate`: the body
/// of `POST /api/v1/evaluate` (`context`, optional `flags`), answered as
/// that route answers with `"explain": true`: each flag's value, variant
/// and reason with its trace. Not counted as usage.
pub(super) async fn evaluate(
    State(st): State<Arc<AppState>>,
    who: Principal,
    Path((project, env)): Path<(String, String)>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let snap = environment(&st, &who, &project, &env)?;
    let req = parse_native_request(&serde_json::to_vec(&body).unwrap_or_default())
        .map_err(|m| ApiError::bad_request("invalid_context", m))?;
    let ctx = req.context.with_timestamp(st.plane.clock.unix_seconds());
    let mut traces = Vec::new();
    let evals: Vec<_> = match &req.flags {
        Some(keys) => keys
            .iter()
            .map(|k| {
                let (e, trace) = snap.snapshot.explain(k, &ctx, vexil_engine::ValueType::Any);
                traces.push(trace);
                (Some(k.as_str()), e)
            })
            .collect(),
        None => snap
            .snapshot
            .explain_all(&ctx)
            .into_iter()
            .map(|(e, trace)| {
                traces.push(trace);
                (None, e)
            })
            .collect(),
    };
    let body = vexil_protocol::json::encode(&NativeAnswer {
        version: snap.env.version,
        flags: &evals,
        traces: Some(traces.as_slice()),
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// `GET /ui/api/projects/{project}/environments/{env}/events`: server-sent
/// events, a `version` event with `{"version": N}` at once and after every
/// change of the environment (the page then reads what it shows again).
/// Ends when the server shuts down, when the reader falls behind (the
/// browser reconnects), and when the session it was opened with ends.
pub(super) async fn events(
    State(st): State<Arc<AppState>>,
    who: Principal,
    headers: HeaderMap,
    Path((project, env)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let snap = environment(&st, &who, &project, &env)?;
    let env_id = snap.env.id;
    let (rx, closing) = st.plane.follow_versions(env_id);
    // Read the version after subscribing: no change falls between.
    let version = st
        .plane
        .snapshot(env_id)
        .map_or(snap.env.version, |s| s.env.version);
    let session = crate::keys::secret(&headers)
        .is_none()
        .then(|| session_id(&headers).map(str::to_owned))
        .flatten();
    struct Feed {
        st: Arc<AppState>,
        rx: broadcast::Receiver<Arc<crate::plane::hub::StreamEvent>>,
        closing: tokio::sync::watch::Receiver<bool>,
        session: Option<String>,
        sent: i64,
        first: bool,
    }
    let feed = Feed {
        st: st.clone(),
        rx,
        closing,
        session,
        sent: version,
        first: true,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        if feed.first {
            feed.first = false;
            return Some((Ok::<_, std::convert::Infallible>(frame(feed.sent)), feed));
        }
        loop {
            if *feed.closing.borrow() {
                return None;
            }
            let next = tokio::select! {
                _ = feed.closing.changed() => return None,
                next = tokio::time::timeout(HEARTBEAT, feed.rx.recv()) => next,
            };
            if let Some(id) = &feed.session
                && !feed.st.sessions.is_live(id)
            {
                return None;
            }
            match next {
                Err(_) => return Some((Ok(Bytes::from_static(b": heartbeat\n\n")), feed)),
                Ok(Ok(ev)) if !ev.keys && ev.version > feed.sent => {
                    feed.sent = ev.version;
                    return Some((Ok(frame(ev.version)), feed));
                }
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return None,
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

fn frame(version: i64) -> Bytes {
    Bytes::from(format!(
        "event: version\nid: {version}\ndata: {{\"version\":{version}}}\n\n"
    ))
}
