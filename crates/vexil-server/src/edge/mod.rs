//! `vexil edge`: the data plane fed by upstream followers instead of a
//! store.
//!
//! One [`vexil_sdk::Follower`] per configured server key follows an
//! environment of the upstream (a server or another edge); `source.rs`
//! installs what it accepts into the same [`Plane`] the server uses, so
//! the edge serves the same evaluation and delivery routes from the same
//! code. Keys are checked offline against the hashes the upstream's stream
//! carries; the last known state of each environment is kept in the cache
//! directory and served when the edge starts while upstream is
//! unreachable.

mod routes;
mod source;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use vexil_sdk::cache::Cache;
use vexil_sdk::{Follower, FollowerConfig};

use crate::Error;
use crate::config::EdgeConfig;
use crate::http::limits::{Limiter, RateLimits};
use crate::metrics::Metrics;
use crate::plane::{Plane, PlaneSettings};

pub(crate) use source::Upstream;

/// Serves the data plane on `listener`, fed by followers of the upstream,
/// until `shutdown` completes.
///
/// Prints `vexil edge listening on http://ADDR` once it accepts
/// connections; `/readyz` answers 200 once every environment has a
/// snapshot (from upstream or the cache).
pub async fn run_edge(
    config: EdgeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let grpc = crate::grpc::bind(&config.plane).await?;
    let limiter = Arc::new(Limiter::new(
        RateLimits {
            admin: 0.0,
            server: config.plane.rate_limit_server,
            client: config.plane.rate_limit_client,
        },
        config.plane.max_in_flight,
    ));
    let metrics = Arc::new(Metrics::default());
    let plane = Arc::new(Plane::new(
        PlaneSettings {
            stream_buffer: config.plane.stream_buffer,
            heartbeat: config.plane.heartbeat,
            public_url: config.plane.public_url.clone(),
            admin_evaluates_single_env: false,
        },
        limiter,
        metrics.clone(),
        config.clock.clone(),
    ));
    let cache = config.cache_dir.as_ref().map(Cache::new);
    let mut upstreams = Vec::new();
    for (i, key) in config.keys.iter().enumerate() {
        let label = source::label(key);
        let initial = cache.as_ref().and_then(|c| source::from_cache(c, &label));
        let mut follow = FollowerConfig::new(config.upstream.clone(), key.clone());
        follow.poll_interval = config.poll_interval;
        follow.backoff_max = config.backoff_max;
        follow.initial = initial;
        // The edge serves each version's JSON (snapshot route, cache).
        follow.keep_json = true;
        let follower = Follower::start(follow)
            .map_err(|e| Error::Config(format!("--upstream or --key cannot be followed: {e}")))?;
        upstreams.push(Arc::new(Upstream::new(i as i64 + 1, label, follower)));
    }
    let tasks: Vec<_> = upstreams
        .iter()
        .map(|u| {
            tokio::spawn(source::feed(
                u.clone(),
                plane.clone(),
                upstreams.clone(),
                cache.clone(),
            ))
        })
        .collect();

    let app = routes::app(
        plane.clone(),
        upstreams.clone(),
        config.plane.http.max_body_bytes,
    );
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "cannot read the listening address".to_owned(),
        source,
    })?;
    crate::notice(format_args!("vexil edge listening on http://{addr}"));
    tracing::info!(%addr, upstream = %config.upstream, environments = upstreams.len(), "edge listening");
    let mut limits = config.plane.http.clone();
    if limits.max_connections == 0 {
        limits.max_connections = crate::serve::connection_limit();
    }
    let grpc = crate::grpc::start(grpc, &config.plane, limits.max_connections, plane.clone())?;
    let closing = plane.clone();
    let shutdown = async move {
        shutdown.await;
        closing.close_streams();
    };
    crate::http::serve(listener, app, limits, metrics.conns.clone(), shutdown).await;
    crate::grpc::drain(grpc).await;
    for t in tasks {
        t.abort();
    }
    for u in upstreams {
        u.stop().await;
    }
    tracing::info!("stopped");
    Ok(())
}
