//! Who may call the gRPC services, and which environment they read.
//!
//! The selector (`flagd-selector` header, else the request's `selector`
//! field) names the environment as `project/environment`. A caller
//! presents a server key as `authorization: Bearer <key>`, checked against
//! the plane's key cache exactly as the HTTP routes check it (SHA-256 of
//! the secret; offline at the edge). A server key belongs to one
//! environment, so an empty selector means the key's own. Environments
//! named by `--grpc-open-env` need no key: their rules go to anyone who
//! reaches the port; when exactly one is open, a call without key and
//! selector reads it.
//!
//! - no key, and the environment is not open: `UNAUTHENTICATED`;
//! - an unknown or revoked key, a key that is not a server key, or a key
//!   of another environment: `PERMISSION_DENIED`;
//! - the key's rate limit reached: `RESOURCE_EXHAUSTED`.

use std::sync::Arc;

use tonic::Status;
use tonic::metadata::MetadataMap;
use vexil_store::Scope;

use super::Grpc;
use crate::http::limits::Use;
use crate::keys::{self, Digest};
use crate::plane::EnvSnapshot;

/// An admitted caller.
pub(super) struct Admitted {
    /// The environment read, at the version current on admission.
    pub(super) env: Arc<EnvSnapshot>,
    /// The key it came with; streams end when it is revoked. `None` for
    /// an open environment.
    pub(super) key: Option<Digest>,
}

/// The selector of a call: the `flagd-selector` header wins over the
/// request field.
fn selector<'a>(meta: &'a MetadataMap, field: &'a str) -> &'a str {
    meta.get("flagd-selector")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(field.trim())
}

/// The bearer secret of a call.
fn secret(meta: &MetadataMap) -> Option<&str> {
    meta.get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, rest)| rest.trim())
        .filter(|s| !s.is_empty())
}

/// Admits a call, or says why not.
pub(super) fn admit(grpc: &Grpc, meta: &MetadataMap, field: &str) -> Result<Admitted, Status> {
    let selector = selector(meta, field);
    let named = match selector.split_once('/') {
        Some((p, e)) if !p.is_empty() && !e.is_empty() => Some((p, e)),
        // No selector and no key: the only open environment, if there is
        // exactly one (the JavaScript provider sends no selector with its
        // EventStream).
        None if selector.is_empty() && secret(meta).is_none() && grpc.open_envs.len() == 1 => grpc
            .open_envs
            .first()
            .map(|(p, e)| (p.as_str(), e.as_str())),
        None if selector.is_empty() => None,
        _ => {
            return Err(Status::invalid_argument(format!(
                "the selector names an environment as `project/environment`, got `{selector}`"
            )));
        }
    };
    if let Some((p, e)) = named
        && grpc.open_envs.iter().any(|(op, oe)| op == p && oe == e)
    {
        let env = grpc
            .plane
            .snapshots()
            .values()
            .find(|s| s.env.project_key == p && s.env.key == e)
            .cloned()
            .ok_or_else(|| not_loaded(grpc, selector))?;
        return Ok(Admitted { env, key: None });
    }
    let Some(secret) = secret(meta) else {
        return Err(Status::unauthenticated(
            "missing server key: send `authorization: Bearer <server key>` metadata",
        ));
    };
    let hash = keys::digest(secret);
    let Some(key) = grpc.plane.key(&hash) else {
        return Err(Status::permission_denied("unknown or revoked key"));
    };
    let (Scope::Server, Some(env_id)) = (key.scope, key.environment_id) else {
        return Err(Status::permission_denied(
            "flagd's services need a server key (it names the environment)",
        ));
    };
    if let Err(retry) = grpc.plane.limiter.admit(&key, Use::Evaluation) {
        return Err(Status::resource_exhausted(format!(
            "this key's rate limit is reached; retry in {} s",
            retry.0
        )));
    }
    let env = grpc
        .plane
        .snapshot(env_id)
        .ok_or_else(|| Status::unavailable("flags are not loaded yet; retry shortly"))?;
    if let Some((p, e)) = named
        && (env.env.project_key != p || env.env.key != e)
    {
        return Err(Status::permission_denied(format!(
            "this key reads {}, not {selector}",
            env.label()
        )));
    }
    Ok(Admitted {
        env,
        key: Some(hash),
    })
}

fn not_loaded(grpc: &Grpc, selector: &str) -> Status {
    if grpc.plane.loaded() {
        Status::not_found(format!("no environment {selector}"))
    } else {
        Status::unavailable("flags are not loaded yet; retry shortly")
    }
}
