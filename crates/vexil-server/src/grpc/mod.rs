//! flagd's gRPC services over the data plane, so that every flagd
//! provider can use Vexil:
//!
//! - `flagd.sync.v1.FlagSyncService` (`sync.rs`): the environment as a
//!   flagd JSON document, for in-process providers (they evaluate
//!   themselves); only the flags with an exact flagd form are sent
//!   (`document.rs`).
//! - `flagd.evaluation.v1.Service` and `v2` (`evaluation.rs`, `v1.rs`,
//!   `v2.rs`): one call per evaluation with Vexil's engine, every flag,
//!   and the event stream (`events.rs`), for RPC providers.
//!
//! Both read only what the plane holds (snapshots, the key cache, the
//! hub's change events): they serve the same on `vexil serve` and `vexil
//! edge`, and the plane knows nothing of them. Callers are admitted by
//! `auth.rs`.

mod auth;
mod convert;
mod document;
mod evaluation;
mod events;
mod listener;
pub(crate) mod metrics;
mod sync;
mod v1;
mod v2;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vexil_flagd_grpc::evaluation_v1::service_server::ServiceServer as V1Server;
use vexil_flagd_grpc::evaluation_v2::service_server::ServiceServer as V2Server;
use vexil_flagd_grpc::sync_v1::flag_sync_service_server::FlagSyncServiceServer;

use crate::Error;
use crate::config::{GrpcConfig, PlaneConfig};
use crate::plane::Plane;

/// Client HTTP/2 pings are answered whatever their rate (hyper has no
/// "too many pings" policy), so providers' 30 s keep-alives never cause a
/// GOAWAY. The server pings idle connections this often itself (sooner
/// under a short `--idle-timeout-ms`, so that a healthy connection always
/// moves within it) and drops the ones that do not answer in time.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent calls (streams included) per connection, and HTTP/2 streams.
const CALLS_PER_CONNECTION: usize = 256;
/// Largest request header block.
const MAX_HEADER_BYTES: u32 = 16 * 1024;

/// What every service holds.
pub(crate) struct Grpc {
    pub(crate) plane: Arc<Plane>,
    /// `(project, environment)` readable without a key.
    open_envs: Vec<(String, String)>,
    /// An open EventStream's `keep_alive` interval.
    event_keepalive: Duration,
    /// The flagd documents of the sync service, one per environment
    /// version.
    documents: Arc<document::Documents>,
}

/// Binds the gRPC listener when one is configured: at start, before
/// anything else, so that a taken address stops the server at once.
pub(crate) async fn bind(config: &PlaneConfig) -> Result<Option<TcpListener>, Error> {
    let Some(g) = &config.grpc else {
        return Ok(None);
    };
    TcpListener::bind(g.listen)
        .await
        .map(Some)
        .map_err(|source| Error::Io {
            what: format!("cannot listen for gRPC on {}", g.listen),
            source,
        })
}

/// Serves flagd's services on the bound listener until the plane closes
/// its streams (shutdown). Returns the serving task, to await after the
/// HTTP server drained.
pub(crate) fn start(
    listener: Option<TcpListener>,
    config: &PlaneConfig,
    max_connections: usize,
    plane: Arc<Plane>,
) -> Result<Option<JoinHandle<()>>, Error> {
    let (Some(listener), Some(g)) = (listener, &config.grpc) else {
        return Ok(None);
    };
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "cannot read the gRPC listening address".to_owned(),
        source,
    })?;
    crate::notice(format_args!("vexil grpc listening on {addr}"));
    tracing::info!(%addr, "grpc listening");
    let grpc = Arc::new(Grpc::new(g, plane.clone()));
    let max_message = config.http.max_body_bytes;
    let request_timeout = config.http.body_timeout;
    let mut closing = plane.closing();
    let shutdown = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let idle = config.http.idle_timeout;
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(PING_INTERVAL.min(idle / 3)))
        .http2_keepalive_timeout(Some(PING_TIMEOUT.min(idle / 3)))
        .max_concurrent_streams(Some(CALLS_PER_CONNECTION as u32))
        .concurrency_limit_per_connection(CALLS_PER_CONNECTION)
        .http2_max_header_list_size(MAX_HEADER_BYTES)
        // Bounds the time to an answer's headers: a stream answers its
        // headers at once, so streams are not cut by it.
        .timeout(request_timeout)
        .add_service(
            FlagSyncServiceServer::from_arc(grpc.clone()).max_decoding_message_size(max_message),
        )
        .add_service(V1Server::from_arc(grpc.clone()).max_decoding_message_size(max_message))
        .add_service(V2Server::from_arc(grpc).max_decoding_message_size(max_message));
    let incoming = listener::incoming(listener, max_connections, idle);
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = server
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!(error = %e, "grpc server failed");
        }
    })))
}

/// Waits for the gRPC server to finish after shutdown began (its streams
/// end with the plane's), at most a few seconds.
pub(crate) async fn drain(task: Option<JoinHandle<()>>) {
    let Some(task) = task else {
        return;
    };
    let abort = task.abort_handle();
    if tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .is_err()
    {
        tracing::warn!("grpc connections still open at shutdown; closing them");
        abort.abort();
    }
}

impl Grpc {
    fn new(config: &GrpcConfig, plane: Arc<Plane>) -> Self {
        Grpc {
            documents: Arc::new(document::Documents::new(
                config.bucketing.engine(),
                plane.metrics.clone(),
            )),
            plane,
            open_envs: config.open_envs.clone(),
            event_keepalive: config.event_keepalive,
        }
    }
}
