//! Following one environment for a gRPC stream (`Watch`), and the
//! evaluation services' EventStream built on it: `provider_ready` at once,
//! `configuration_change` with the changed flags after every new version,
//! `keep_alive` while idle.

use std::sync::Arc;
use std::time::Duration;

use prost_types::Struct;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;
use tonic::codegen::BoxStream;
use vexil_engine::model::Document;

use super::auth::Admitted;
use super::metrics::StreamGuard;
use super::{Grpc, convert};
use crate::keys::Digest;
use crate::plane::{EnvSnapshot, Plane, StreamEvent};

/// What happened to a followed environment.
pub(super) enum Next {
    /// A newer version is installed: the previous one and the new one.
    Changed(Arc<EnvSnapshot>, Arc<EnvSnapshot>),
    /// Nothing for a whole interval.
    Idle,
    /// The stream is over, with the status to end it with.
    End(Status),
}

/// One environment followed through the plane's change events.
pub(super) struct Watch {
    plane: Arc<Plane>,
    key: Option<Digest>,
    rx: tokio::sync::broadcast::Receiver<Arc<StreamEvent>>,
    closing: tokio::sync::watch::Receiver<bool>,
    revocations: tokio::sync::watch::Receiver<u64>,
    /// The version the caller has.
    pub(super) current: Arc<EnvSnapshot>,
    _open: StreamGuard,
}

impl Watch {
    pub(super) fn new(plane: &Arc<Plane>, admitted: Admitted) -> Self {
        Watch {
            rx: plane.subscribe(admitted.env.env.id),
            closing: plane.closing(),
            revocations: plane.revocations(),
            key: admitted.key,
            current: admitted.env,
            _open: StreamGuard::new(plane.metrics.clone()),
            plane: plane.clone(),
        }
    }

    /// Waits for a newer version, at most `idle`.
    pub(super) async fn next(&mut self, idle: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + idle;
        loop {
            if *self.closing.borrow() {
                return Next::End(shutting_down());
            }
            tokio::select! {
                _ = self.closing.changed() => return Next::End(shutting_down()),
                _ = self.revocations.changed() => {
                    if self.key.is_some_and(|k| self.plane.key(&k).is_none()) {
                        return Next::End(Status::permission_denied(
                            "the key of this stream was revoked",
                        ));
                    }
                }
                event = self.rx.recv() => match event {
                    Ok(e) if e.keys => {}
                    // A version's frame; or events were missed: look at the
                    // installed version either way.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        if let Some(next) = self.newer() {
                            return next;
                        }
                    }
                    Err(RecvError::Closed) => return Next::End(shutting_down()),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    // A version installed without an event still gets out.
                    return self.newer().unwrap_or(Next::Idle);
                }
            }
        }
    }

    fn newer(&mut self) -> Option<Next> {
        let installed = self.plane.snapshot(self.current.env.id)?;
        if installed.env.version <= self.current.env.version {
            return None;
        }
        let old = std::mem::replace(&mut self.current, installed.clone());
        Some(Next::Changed(old, installed))
    }
}

/// Streams end with an error at shutdown, never cleanly: providers
/// reconnect after an error status (the JavaScript provider only then).
fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down; reconnect")
}

/// The flags that differ between two versions, as flagd describes them:
/// key to `{"type": "write" | "update" | "delete"}`. A change of segments or
/// of the document's settings may change any flag: all are listed.
fn changed_flags(old: &Document, new: &Document) -> Map<String, Value> {
    let everything = old.segments != new.segments
        || old.metadata != new.metadata
        || old.bucketing != new.bucketing;
    let mut out = Map::new();
    for (key, def) in new.flags.iter() {
        let kind = match old.flags.get(key) {
            None => "write",
            Some(before) if everything || before != def => "update",
            Some(_) => continue,
        };
        out.insert(key.to_owned(), json!({ "type": kind }));
    }
    for key in old.flags.keys() {
        if new.flags.get(key).is_none() {
            out.insert(key.to_owned(), json!({ "type": "delete" }));
        }
    }
    out
}

/// The EventStream of either evaluation service; `message` builds its
/// version's response from a type and optional data.
pub(super) fn event_stream<R: Send + 'static>(
    grpc: &Grpc,
    admitted: Admitted,
    message: fn(&str, Option<Struct>) -> R,
) -> BoxStream<R> {
    let watch = Watch::new(&grpc.plane, admitted);
    let idle = grpc.event_keepalive;
    let ready = message("provider_ready", None);
    let first = futures_util::stream::once(async move { Ok(ready) });
    let rest = futures_util::stream::unfold(Some(watch), move |watch| async move {
        let mut watch = watch?;
        match watch.next(idle).await {
            Next::Changed(old, new) => {
                let flags = changed_flags(&old.doc, &new.doc);
                let mut data = Map::new();
                data.insert("flags".to_owned(), Value::Object(flags));
                let data = convert::map_to_struct(&data);
                Some((Ok(message("configuration_change", Some(data))), Some(watch)))
            }
            Next::Idle => Some((Ok(message("keep_alive", None)), Some(watch))),
            Next::End(status) => Some((Err(status), None)),
        }
    });
    Box::pin(futures_util::StreamExt::chain(first, rest))
}

#[cfg(test)]
mod tests;
