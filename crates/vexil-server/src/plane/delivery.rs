//! Delivery to edges, SDKs and browsers: the environment's document
//! (`GET /api/v1/snapshot`, ETag = version), who may read it
//! (`GET /api/v1/snapshot/keys`, for followers that poll), the change stream for edges
//! and server SDKs (`GET /api/v1/stream`, resumable with `Last-Event-ID`
//! from the hub's ring), and the OFREP event stream for web clients
//! (`GET /ofrep/v1/events`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::broadcast;
use vexil_store::Scope;

use super::Plane;
use super::caller::{Needs, caller, cors, refuse};
use super::hub::StreamEvent;
use crate::keys;

/// `GET /api/v1/snapshot`: the environment's rules as a native document,
/// for edges and server SDKs, with `ETag` = version and 304 on a match.
pub(super) async fn snapshot(State(plane): State<Arc<Plane>>, headers: HeaderMap) -> Response {
    let started = tokio::time::Instant::now();
    let resp = snapshot_inner(&plane, &headers);
    plane
        .metrics
        .hot
        .snapshot
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

fn snapshot_inner(plane: &Plane, headers: &HeaderMap) -> Response {
    let env = match caller(plane, headers, Needs::Rules) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let etag = format!("\"{}\"", env.env.version);
    // Shared caches may keep it but must revalidate; the key is part of
    // the request, so cache per key.
    let mut resp = conditional(
        headers,
        &etag,
        env.document().clone(),
        "public, max-age=0, must-revalidate",
    );
    if let Ok(v) = HeaderValue::from_str(&env.env.version.to_string()) {
        resp.headers_mut().insert("x-vexil-version", v);
    }
    resp
}

/// `GET /api/v1/snapshot/keys`: who may read the environment (the hashes of its
/// live keys, as the stream's `keys` event carries them), for a follower
/// that polls while the stream fails, with an `ETag` of the content and
/// 304 on a match.
pub(super) async fn keys(State(plane): State<Arc<Plane>>, headers: HeaderMap) -> Response {
    let env = match caller(&plane, &headers, Needs::Rules) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let mut body = Vec::new();
    vexil_protocol::json::write(&mut body, &plane.keys_event(&env));
    let digest = keys::digest_bytes(&body);
    let etag = format!("\"{}\"", keys::hex(&digest[..12]));
    conditional(&headers, &etag, Bytes::from(body), "no-cache")
}

/// A JSON body under `etag`, or `304` when `If-None-Match` names it (or
/// `*`); cached per key (`Vary`) with `cache_control`.
fn conditional(
    headers: &HeaderMap,
    etag: &str,
    body: Bytes,
    cache_control: &'static str,
) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, X-API-Key"),
    );
    resp
}

/// The `Last-Event-ID` of a reconnect: the header, or `?lastEventId=`.
fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query.and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("lastEventId=").map(str::to_owned))
            })
        })
        .and_then(|v| v.trim().parse::<i64>().ok())
}

/// `GET /api/v1/stream`: server-sent events for edges and server SDKs. A
/// full `snapshot` event first, then one `change` event per environment
/// version, each with `id: <version>`. Reconnecting with `Last-Event-ID`
/// sends only the changes since that version when the hub's ring still
/// holds them all, and a snapshot otherwise. A subscriber that falls more
/// than the buffer behind is dropped; it reconnects and resumes.
pub(super) async fn stream(
    State(plane): State<Arc<Plane>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (env, key_hash) = match caller(&plane, &headers, Needs::Rules) {
        Ok(c) => (c.env, c.key_hash),
        Err(resp) => return *resp,
    };
    let env_id = env.env.id;
    // Subscribe before looking at the current version: nothing falls
    // between the two.
    let rx = plane.hub.subscribe(env_id);
    let current = plane.snapshot(env_id).unwrap_or(env);
    let version = current.env.version;
    let snapshot_frame = || current.snapshot_frame().clone();
    let mut initial = match last_event_id(&headers, query.as_deref()) {
        Some(last) if last == version => Vec::new(),
        Some(last) if (0..version).contains(&last) => plane
            .hub
            .since(env_id, last, version)
            .unwrap_or_else(|| vec![snapshot_frame()]),
        _ => vec![snapshot_frame()],
    };
    // Who may read this environment, for edges that check keys offline.
    initial.push(vexil_protocol::event::keys_frame(&plane.keys_event(&current)).into());
    let body = event_body(&plane, rx, key_hash, initial, version, |ev| {
        Some(ev.frame.clone())
    });
    event_stream_response(body)
}

/// `GET /ofrep/v1/events?key=…`: the OFREP event stream for web clients, a
/// `refetchEvaluation` message whenever the environment changes. Client
/// keys only: other keys are secrets and do not belong in URLs.
pub(super) async fn ofrep_events(
    State(plane): State<Arc<Plane>>,
    mut headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(key) = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")))
    {
        let key = vexil_protocol::url::percent_decode(key);
        if let Ok(v) = HeaderValue::from_str(&key) {
            headers.insert("x-api-key", v);
        }
    }
    let mut resp = match caller(&plane, &headers, Needs::Values) {
        Ok(c) if c.scope == Scope::Client => {
            let rx = plane.hub.subscribe(c.env.env.id);
            let body = event_body(
                &plane,
                rx,
                c.key_hash,
                Vec::new(),
                c.env.env.version,
                |ev| (!ev.keys).then(|| vexil_protocol::event::refetch_frame(ev.version).into()),
            );
            event_stream_response(body)
        }
        Ok(_) => refuse(
            StatusCode::FORBIDDEN,
            "the event stream takes client keys only: other keys are secrets and must not travel in URLs",
        ),
        Err(resp) => *resp,
    };
    cors(&headers, &mut resp);
    resp
}

fn event_stream_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The body of an SSE response: `initial` frames, then one frame per
/// change event newer than `sent` and per `keys` event (made by `frame`,
/// which may skip an event), and a heartbeat comment every `heartbeat`;
/// ends when the subscriber lags behind the buffer, the key it was opened
/// with is revoked, or the server shuts down.
///
/// A change reaches every subscriber of its environment at once, so what
/// a subscriber does per event is kept to the event: the wait for the end
/// (shutdown, revocation) and the heartbeat's timer are made once per
/// stream and stay registered between events, instead of being made and
/// dropped around every event.
fn event_body(
    plane: &Arc<Plane>,
    rx: broadcast::Receiver<Arc<StreamEvent>>,
    key_hash: keys::Digest,
    initial: Vec<Bytes>,
    sent: i64,
    frame: fn(&StreamEvent) -> Option<Bytes>,
) -> Body {
    type Ended = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
    struct Feed {
        rx: broadcast::Receiver<Arc<StreamEvent>>,
        /// Completes when the stream must end: shutdown, or its key revoked.
        ended: Ended,
        beat: std::pin::Pin<Box<tokio::time::Sleep>>,
        heartbeat: std::time::Duration,
        metrics: Arc<crate::metrics::Metrics>,
        initial: std::vec::IntoIter<Bytes>,
        sent: i64,
        frame: fn(&StreamEvent) -> Option<Bytes>,
    }
    let mut closing = plane.closing.subscribe();
    let mut revocations = plane.key_revocations.subscribe();
    let watcher = plane.clone();
    let ended: Ended = Box::pin(async move {
        loop {
            if *closing.borrow_and_update() || watcher.key(&key_hash).is_none() {
                return;
            }
            tokio::select! {
                changed = closing.changed() => if changed.is_err() { return },
                changed = revocations.changed() => if changed.is_err() { return },
            }
        }
    });
    let heartbeat = plane.settings.heartbeat;
    let feed = Feed {
        rx,
        ended,
        beat: Box::pin(tokio::time::sleep(heartbeat)),
        heartbeat,
        metrics: plane.metrics.clone(),
        initial: initial.into_iter(),
        sent,
        frame,
    };
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        if let Some(frame) = feed.initial.next() {
            return Some((Ok::<Bytes, std::convert::Infallible>(frame), feed));
        }
        loop {
            let next = tokio::select! {
                biased;
                next = feed.rx.recv() => next,
                () = &mut feed.ended => return None,
                () = &mut feed.beat => {
                    let at = tokio::time::Instant::now() + feed.heartbeat;
                    feed.beat.as_mut().reset(at);
                    let beat = Bytes::from_static(vexil_protocol::sse::heartbeat());
                    return Some((Ok(beat), feed));
                }
            };
            match next {
                Ok(ev) if ev.keys => {
                    if let Some(out) = (feed.frame)(&ev) {
                        return Some((Ok(out), feed));
                    }
                }
                Ok(ev) if ev.version > feed.sent => {
                    feed.sent = ev.version;
                    if let Some(out) = (feed.frame)(&ev) {
                        return Some((Ok(out), feed));
                    }
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    feed.metrics
                        .subscribers_dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return None;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Body::from_stream(body)
}
