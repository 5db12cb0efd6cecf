//! `vexil serve`: open the store, bootstrap an empty one, load snapshots,
//! follow other servers' changes, and serve HTTP until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use vexil_store::{ErrorKind, FileStore, Scope, SqlStore, Store};

use crate::Error;
use crate::config::{Config, StoreConfig};
use crate::control::Control;
use crate::http::limits::{Limiter, RateLimits};
use crate::keys;
use crate::metrics::Metrics;
use crate::plane::{Plane, PlaneSettings};
use crate::state::AppState;
use crate::timed_store::{StoreMetrics, TimedStore};

/// Opens the configured store and applies migrations.
async fn open_store(config: &StoreConfig) -> Result<SqlStore, Error> {
    let store = match config {
        StoreConfig::Sqlite(dir) => SqlStore::open_sqlite(dir).await?,
        StoreConfig::Postgres(url) => SqlStore::open_postgres(url, 16).await?,
        StoreConfig::File(_) => {
            return Err(Error::Config(
                "a flag file has no database to migrate".to_owned(),
            ));
        }
    };
    let version = store.migrate().await?;
    tracing::info!(schema = version, "store ready");
    Ok(store)
}

/// Applies the database migrations of `store` and closes it (`vexil
/// migrate`).
pub async fn migrate(store: &StoreConfig) -> Result<(), Error> {
    let store = open_store(store).await?;
    store.close().await;
    Ok(())
}

/// On an empty store: a `default` project with `development` and
/// `production` environments. Makes sure an admin key exists: the one from
/// `VEXIL_ADMIN_KEY`, or a new random one, printed once.
async fn bootstrap(store: &dyn Store, admin_key: Option<&str>, now: i64) -> Result<(), Error> {
    // Several servers may start together on one database: whoever creates
    // a thing first wins, the others carry on.
    let exists = |r: Result<(), vexil_store::StoreError>| match r {
        Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    };
    if store.projects().await?.is_empty() {
        exists(
            store
                .create_project("default", "Default", now)
                .await
                .map(|_| ()),
        )?;
        let p = store.project("default").await?;
        for (key, name) in [("development", "Development"), ("production", "Production")] {
            exists(
                store
                    .create_environment(p.id, key, name, now)
                    .await
                    .map(|_| ()),
            )?;
        }
        tracing::info!(
            "created project `default` with environments `development` and `production`"
        );
    }
    let (secret, print) = match admin_key {
        // A key from the environment is stored once (as a hash); if it was
        // revoked since, it stays revoked.
        Some(secret) => (secret.to_owned(), false),
        None => {
            let keys = store.keys().await?;
            if keys
                .iter()
                .any(|k| k.scope == Scope::Admin && k.revoked_at.is_none())
            {
                return Ok(());
            }
            (keys::generate(Scope::Admin)?, true)
        }
    };
    if store.key_by_hash(&keys::hash(&secret)).await?.is_none() {
        let created = store
            .create_key(&vexil_store::NewKey {
                name: "admin".into(),
                hash: keys::hash(&secret),
                prefix: keys::prefix(&secret),
                scope: Scope::Admin,
                project_id: None,
                environment_id: None,
                now,
            })
            .await
            .map(|_| ());
        exists(created)?;
    }
    if print {
        // Shown once: only its hash is stored.
        crate::notice(format_args!(
            "admin key (shown once, store it now): {secret}"
        ));
    }
    Ok(())
}

/// Serves on `listener` until `shutdown` completes, then ends open
/// streams, drains in-flight requests and closes the store.
///
/// Prints `vexil listening on http://ADDR` on standard output once it
/// accepts connections (health answers at once; readiness once every
/// environment's snapshot is loaded).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let grpc = crate::grpc::bind(&config.plane).await?;
    let store: Arc<dyn Store> = match &config.store {
        StoreConfig::File(path) => {
            let secret = match &config.admin_key {
                Some(k) => k.clone(),
                None => {
                    let k = keys::generate(Scope::Admin)?;
                    crate::notice(format_args!(
                        "admin key for this run (set VEXIL_ADMIN_KEY to keep one): {k}"
                    ));
                    k
                }
            };
            let keys = vexil_store::FileKeys {
                admin: keys::hash(&secret),
                ..config.file_keys.clone()
            };
            let file = Arc::new(FileStore::open(path, &keys, config.clock.unix_ms())?);
            // Re-read once a second; accepted changes are announced.
            let clock = config.clock.clone();
            file.watch(
                std::time::Duration::from_secs(1),
                Arc::new(move || clock.unix_ms()),
            );
            file
        }
        other => {
            let sql = open_store(other).await?;
            bootstrap(&sql, config.admin_key.as_deref(), config.clock.unix_ms()).await?;
            Arc::new(sql)
        }
    };
    let clock = config.clock.clone();
    let limiter = Arc::new(Limiter::new(
        RateLimits {
            admin: config.rate_limit_admin,
            server: config.plane.rate_limit_server,
            client: config.plane.rate_limit_client,
        },
        config.plane.max_in_flight,
    ));
    let metrics = Arc::new(Metrics::default());
    let store_metrics = Arc::new(StoreMetrics::default());
    let store: Arc<dyn Store> = Arc::new(TimedStore::new(store, store_metrics.clone()));
    let plane = Arc::new(Plane::new(
        PlaneSettings {
            stream_buffer: config.plane.stream_buffer,
            heartbeat: config.plane.heartbeat,
            public_url: config.plane.public_url.clone(),
            admin_evaluates_single_env: store.read_only(),
        },
        limiter.clone(),
        metrics.clone(),
        clock.clone(),
    ));
    let control = Arc::new(Control::new(
        store.clone(),
        plane.clone(),
        clock,
        config.compile_timeout,
    ));
    let state = Arc::new(AppState {
        control: control.clone(),
        plane: plane.clone(),
        store,
        limiter,
        metrics,
        store_metrics,
        request_timeout: config.request_timeout,
        sessions: Arc::new(crate::api::ui::Sessions::new(config.ui.clone())),
        flagd_bucketing: config.plane.flagd_bucketing.engine(),
    });
    // Serve at once (health answers, readiness says "not yet") while the
    // snapshots load; then follow changes other servers write.
    let sync = tokio::spawn(control.follow(config.sync_interval));

    let app = crate::api::app(state.clone(), config.plane.http.max_body_bytes);
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "cannot read the listening address".to_owned(),
        source,
    })?;
    crate::notice(format_args!("vexil listening on http://{addr}"));
    tracing::info!(%addr, "listening");
    let mut limits = config.plane.http.clone();
    if limits.max_connections == 0 {
        limits.max_connections = connection_limit();
    }
    let grpc = crate::grpc::start(grpc, &config.plane, limits.max_connections, plane.clone())?;
    let conn_metrics = state.metrics.conns.clone();
    let store = state.store.clone();
    let shutdown = async move {
        shutdown.await;
        // Streams never end by themselves: end them, then drain.
        plane.close_streams();
    };
    tracing::info!(max_connections = limits.max_connections, "connection limit");
    crate::http::serve(listener, app, limits, conn_metrics, shutdown).await;
    crate::grpc::drain(grpc).await;
    sync.abort();
    // Connections, the file watcher, the LISTEN task.
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Connections the open-file limit leaves room for, keeping a reserve for
/// the store, the flag file, logs and refusals.
pub(crate) fn connection_limit() -> usize {
    const RESERVE: u64 = 256;
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => soft.saturating_sub(RESERVE).clamp(64, 1 << 20) as usize,
        Err(_) => 1024 - RESERVE as usize,
    }
}
