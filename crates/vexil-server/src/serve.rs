//! `vexil serve`: open the store, bootstrap an empty one, load snapshots,
//! follow other servers' changes, and serve HTTP until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use vexil_store::{ErrorKind, FileStore, Scope, SqlStore, Store};

use crate::Error;
use crate::config::{Config, StoreConfig};
use crate::keys;
use crate::state::{AppState, now_ms};

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
async fn bootstrap(store: &dyn Store, admin_key: Option<&str>) -> Result<(), Error> {
    // Several servers may start together on one database: whoever creates
    // a thing first wins, the others carry on.
    let exists = |r: Result<(), vexil_store::StoreError>| match r {
        Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    };
    if store.projects().await?.is_empty() {
        exists(
            store
                .create_project("default", "Default", now_ms())
                .await
                .map(|_| ()),
        )?;
        let p = store.project("default").await?;
        for (key, name) in [("development", "Development"), ("production", "Production")] {
            exists(
                store
                    .create_environment(p.id, key, name, now_ms())
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
                now: now_ms(),
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
            let file = Arc::new(FileStore::open(path, &keys, now_ms())?);
            // Re-read once a second; accepted changes are announced.
            file.watch(std::time::Duration::from_secs(1), now_ms);
            file
        }
        other => {
            let sql = open_store(other).await?;
            bootstrap(&sql, config.admin_key.as_deref()).await?;
            Arc::new(sql)
        }
    };
    let limiter = crate::limits::Limiter::new(config.rate_limits, config.max_in_flight);
    let store_metrics = Arc::new(crate::timed_store::StoreMetrics::default());
    let store: Arc<dyn Store> = Arc::new(crate::timed_store::TimedStore::new(
        store,
        store_metrics.clone(),
    ));
    let state = Arc::new(AppState::new(
        store,
        limiter,
        crate::state::StateSettings {
            compile_timeout: config.compile_timeout,
            stream_buffer: config.stream_buffer,
            heartbeat: config.heartbeat,
            public_url: config.public_url.clone(),
        },
        config.request_timeout,
        store_metrics,
    ));
    // Serve at once (health answers, readiness says "not yet") while the
    // snapshots load; then follow changes other servers write.
    let sync_state = state.clone();
    let interval = config.sync_interval;
    let sync = tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(100);
        while let Err(e) = sync_state.load_all().await {
            tracing::warn!(error = %e.message, "cannot load flags yet; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
        tracing::info!("snapshots loaded");
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // PostgreSQL announces every commit: look at once, and keep polling
        // as the fallback for notifications lost while disconnected.
        let mut notices = sync_state.store.change_notices();
        // Log when checking starts failing and when it works again, not
        // on every tick in between.
        let mut failing = false;
        loop {
            match notices.as_mut() {
                Some(n) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        changed = n.changed() => {
                            if changed.is_err() {
                                notices = None;
                            }
                        }
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            match sync_state.sync().await {
                Ok(n) => {
                    if failing {
                        tracing::info!("checking the store for changes works again");
                        failing = false;
                    }
                    if n > 0 {
                        tracing::debug!(environments = n, "picked up changes from the store");
                    }
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e.message, "cannot check the store for changes; retrying every tick");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    });

    let app = crate::api::app(state.clone(), config.max_body_bytes);
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "cannot read the listening address".to_owned(),
        source,
    })?;
    crate::notice(format_args!("vexil listening on http://{addr}"));
    tracing::info!(%addr, "listening");
    let conn_metrics = state.metrics.conns.clone();
    let store = state.store.clone();
    let shutdown = async move {
        shutdown.await;
        // Streams never end by themselves: end them, then drain.
        state.close_streams();
    };
    let mut limits = config.http.clone();
    if limits.max_connections == 0 {
        limits.max_connections = connection_limit();
    }
    tracing::info!(max_connections = limits.max_connections, "connection limit");
    crate::http::serve(listener, app, limits, conn_metrics, shutdown).await;
    sync.abort();
    // Connections, the file watcher, the LISTEN task.
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Connections the open-file limit leaves room for, keeping a reserve for
/// the store, the flag file, logs and refusals.
fn connection_limit() -> usize {
    const RESERVE: u64 = 256;
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => soft.saturating_sub(RESERVE).clamp(64, 1 << 20) as usize,
        Err(_) => 1024 - RESERVE as usize,
    }
}
