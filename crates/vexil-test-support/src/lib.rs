//! Test helpers shared by the store and server tests: throwaway stores on
//! every backend.
//!
//! PostgreSQL tests need `VEXIL_TEST_DATABASE_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`). Each store gets a database
//! of its own, dropped afterwards. Without the variable the PostgreSQL
//! part is skipped locally, and fails under `CI=true`: on CI a skipped
//! PostgreSQL test is a failure.

#![deny(missing_docs)]

mod proxy;
#[cfg(feature = "server")]
pub mod server;

pub use proxy::TcpProxy;

use std::sync::atomic::{AtomicU32, Ordering};

use std::sync::Arc;

use sqlx::Executor;
use vexil_store::{SqlStore, Store};

/// A store for one test, and what must be cleaned up after it.
pub struct TestStore {
    /// The store, as callers hold it.
    pub store: Arc<dyn Store>,
    /// The same store when it is a SQL one, to close it.
    sql: Option<SqlStore>,
    /// `sqlite` or `postgres`, for messages.
    pub name: &'static str,
    /// The URL to reach the same database from another process, or the
    /// data directory for SQLite.
    pub location: String,
    _dir: Option<tempfile::TempDir>,
    drop_db: Option<(String, String)>,
}

impl TestStore {
    /// Drops the PostgreSQL database (the SQLite directory goes with the
    /// value).
    pub async fn cleanup(self) {
        if let Some(sql) = &self.sql {
            sql.close().await;
        }
        if let Some((admin_url, db)) = self.drop_db
            && let Ok(pool) = sqlx::AnyPool::connect(&admin_url).await
        {
            let _ = pool
                .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
                .await;
            pool.close().await;
        }
    }
}

/// The PostgreSQL URL for tests, if configured. Panics under `CI=true`
/// when it is missing.
pub fn postgres_url() -> Option<String> {
    match std::env::var("VEXIL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("VEXIL_TEST_DATABASE_URL is not set: PostgreSQL tests must run on CI")
        }
        _ => {
            eprintln!("VEXIL_TEST_DATABASE_URL is not set: skipping PostgreSQL");
            None
        }
    }
}

/// A fresh SQLite store in a temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqlStore::open_sqlite(dir.path())
        .await
        .expect("open SQLite");
    TestStore {
        store: Arc::new(store.clone()),
        sql: Some(store),
        name: "sqlite",
        location: dir.path().display().to_string(),
        _dir: Some(dir),
        drop_db: None,
    }
}

/// A fresh PostgreSQL database and a store on it, when configured.
pub async fn postgres() -> Option<TestStore> {
    let url = postgres_url()?;
    let (url, _) = create_database(&url).await;
    Some(url_store(url).await)
}

/// Creates an empty database next to the one `url` names; returns its URL
/// and name.
pub async fn create_database(url: &str) -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    sqlx::any::install_default_drivers();
    let db = format!(
        "vexil_t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let pool = sqlx::AnyPool::connect(url)
        .await
        .expect("connect to PostgreSQL");
    drop_stale(&pool).await;
    pool.execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .expect("create test database");
    pool.close().await;
    let base = url.split('?').next().unwrap_or(url);
    let cut = base.rfind('/').expect("database URL names a database");
    (format!("{}/{db}", &base[..cut]), db)
}

async fn url_store(db_url: String) -> TestStore {
    let admin = std::env::var("VEXIL_TEST_DATABASE_URL").expect("set");
    let db = db_url.rsplit('/').next().unwrap_or_default().to_owned();
    let store = SqlStore::open_postgres(&db_url, 8)
        .await
        .expect("open PostgreSQL");
    TestStore {
        store: Arc::new(store.clone()),
        sql: Some(store),
        name: "postgres",
        location: db_url,
        _dir: None,
        drop_db: Some((admin, db)),
    }
}

/// A fresh in-memory store.
pub fn memory() -> TestStore {
    TestStore {
        store: Arc::new(vexil_store::MemoryStore::new()),
        sql: None,
        name: "memory",
        location: String::new(),
        _dir: None,
        drop_db: None,
    }
}

/// Every configured backend: memory and SQLite always, PostgreSQL when
/// configured.
pub async fn all() -> Vec<TestStore> {
    let mut out = vec![memory(), sqlite().await];
    if let Some(pg) = postgres().await {
        out.push(pg);
    }
    out
}

/// Drops a database made by [`create_database`] (best effort).
pub async fn drop_database(db_url: &str) {
    let Some(admin) = postgres_url() else { return };
    let db = db_url.rsplit('/').next().unwrap_or_default().to_owned();
    if !db.starts_with("vexil_t_") {
        return;
    }
    if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
        let _ = pool
            .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
            .await;
        pool.close().await;
    }
}

/// Drops test databases left by test processes that no longer run (a
/// failed test does not reach its cleanup).
async fn drop_stale(pool: &sqlx::AnyPool) {
    use sqlx::Row;
    let Ok(rows) =
        sqlx::query("SELECT datname::text AS name FROM pg_database WHERE datname LIKE 'vexil_t_%'")
            .fetch_all(pool)
            .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>(0) else {
            continue;
        };
        let pid = name.split('_').nth(2).unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = pool
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}
