//! [`SqlStore`]: the store over SQLite or PostgreSQL through sqlx's `Any`
//! driver. The SQL is shared; only the schema differs per backend.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::migrations::MIGRATIONS;
use crate::types::{
    MAX_CHANGES, bucketing_name, parse_bucketing, setting_of, storable, storable_commit,
};
use crate::{
    Action, ApiKey, Change, ChangeFilter, Definition, EnvState, Environment, ErrorKind, Item,
    ItemKind, Mutation, NewKey, Project, Result, Scope, Store, StoreError,
};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The PostgreSQL channel commits are announced on.
const CHANNEL: &str = "vexil_changes";

/// The store over a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL: where to open the `LISTEN` connection, and its notices.
    listen: Option<std::sync::Arc<Listen>>,
}

/// The `LISTEN` side of a PostgreSQL store, started on first use.
#[derive(Debug)]
struct Listen {
    url: String,
    notices: tokio::sync::watch::Sender<u64>,
    started: std::sync::Once,
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database `vexil.db` in `dir`.
    ///
    /// Durability: WAL journal with `synchronous = FULL`, so a write that
    /// returned is on disk and survives a crash of the process or machine.
    /// One connection: writes are serialised, which also rules out
    /// `SQLITE_BUSY` between our own connections.
    pub async fn open_sqlite(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError {
            kind: ErrorKind::Unavailable,
            message: format!("cannot create data directory {}", dir.display()),
            source: Some(Box::new(e)),
        })?;
        let file = dir.join("vexil.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        install_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| {
                StoreError::db(
                    &format!("cannot open SQLite database {}", file.display()),
                    e,
                )
            })?;
        Ok(SqlStore {
            pool,
            backend: Backend::Sqlite,
            listen: None,
        })
    }

    /// Connects to PostgreSQL.
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Self> {
        install_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| StoreError::db("cannot connect to PostgreSQL", e))?;
        Ok(SqlStore {
            pool,
            backend: Backend::Postgres,
            listen: Some(std::sync::Arc::new(Listen {
                url: url.to_owned(),
                notices: tokio::sync::watch::channel(0).0,
                started: std::sync::Once::new(),
            })),
        })
    }

    /// Announces a change to every server listening on this database
    /// (PostgreSQL; delivered when the transaction commits).
    async fn notify(&self, conn: &mut sqlx::AnyConnection, what: &str) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(what)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::db("cannot announce the change", e))
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn environment_by_id(&self, env_id: i64) -> Result<Environment> {
        let row = sqlx::query(&format!("{ENV_SELECT} WHERE e.id = $1"))
            .bind(env_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read environment", e))?
            .ok_or_else(|| {
                StoreError::new(
                    ErrorKind::NotFound,
                    format!("environment {env_id} not found"),
                )
            })?;
        env_from(&row)
    }
}

const ENV_SELECT: &str = "SELECT e.id, e.project_id, p.key AS project_key, e.key, e.name, e.version, e.created_at, e.bucketing \
     FROM environments e JOIN projects p ON p.id = e.project_id";

fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col)
        .map_err(|e| StoreError::db(&format!("cannot read column {col}"), e))
}

fn json_of(text: Option<String>) -> Result<Option<Definition>> {
    text.map(definition_of).transpose()
}

fn definition_of(text: String) -> Result<Definition> {
    Definition::from_text(&text).map_err(|e| StoreError {
        kind: ErrorKind::Internal,
        message: "stored JSON is corrupt".into(),
        source: Some(Box::new(e)),
    })
}

fn project_from(row: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: get(row, "id")?,
        key: get(row, "key")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

fn env_from(row: &AnyRow) -> Result<Environment> {
    let bucketing: String = get(row, "bucketing")?;
    Ok(Environment {
        bucketing: parse_bucketing(&bucketing).ok_or_else(|| {
            StoreError::new(
                ErrorKind::Internal,
                format!("unknown stored bucketing `{bucketing}`"),
            )
        })?,
        id: get(row, "id")?,
        project_id: get(row, "project_id")?,
        project_key: get(row, "project_key")?,
        key: get(row, "key")?,
        name: get(row, "name")?,
        version: get(row, "version")?,
        created_at: get(row, "created_at")?,
    })
}

fn key_from(row: &AnyRow) -> Result<ApiKey> {
    let scope: String = get(row, "scope")?;
    Ok(ApiKey {
        id: get(row, "id")?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        scope: Scope::parse(&scope).ok_or_else(|| {
            StoreError::new(
                ErrorKind::Internal,
                format!("unknown stored scope `{scope}`"),
            )
        })?,
        project_id: get(row, "project_id")?,
        environment_id: get(row, "environment_id")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn kind_of(s: &str) -> Result<ItemKind> {
    ItemKind::parse(s)
        .ok_or_else(|| StoreError::new(ErrorKind::Internal, format!("unknown stored kind `{s}`")))
}

const KEY_SELECT: &str = "SELECT id, name, prefix, scope, project_id, environment_id, created_at, revoked_at FROM api_keys";

#[async_trait]
impl Store for SqlStore {
    async fn close(&self) {
        self.pool.close().await;
    }

    fn change_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        let listen = self.listen.as_ref()?;
        // One listening connection per store, started by the first caller
        // (who runs inside the runtime).
        listen.started.call_once(|| {
            tokio::spawn(listen_task(listen.clone()));
        });
        Some(listen.notices.subscribe())
    }

    async fn migrate(&self) -> Result<i64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StoreError::db("cannot begin migration", e))?;
        if self.backend == Backend::Postgres {
            // Instances starting together migrate one at a time.
            tx.execute("SELECT pg_advisory_xact_lock(7356912)")
                .await
                .map_err(|e| StoreError::db("cannot lock for migration", e))?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(|e| StoreError::db("cannot create schema_migrations", e))?;
        let current: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::db("cannot read schema version", e))
                .and_then(|row| get(&row, "v"))?;
        let mut version = current;
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                tx.execute(statement).await.map_err(|e| {
                    StoreError::db(&format!("migration {} ({}) failed", m.version, m.name), e)
                })?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(0_i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::db("cannot record migration", e))?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "applied schema migration"
            );
            version = m.version;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::db("cannot commit migration", e))?;
        Ok(version)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::db("store does not answer", e))
    }

    async fn create_project(&self, key: &str, name: &str, now: i64) -> Result<Project> {
        storable("project key", key)?;
        storable("project name", name)?;
        let row = sqlx::query("INSERT INTO projects (key, name, created_at) VALUES ($1, $2, $3) RETURNING id, key, name, created_at")
            .bind(key)
            .bind(name)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::db(&format!("cannot create project `{key}`"), e))?;
        project_from(&row)
    }

    async fn projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, key, name, created_at FROM projects ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot list projects", e))?;
        rows.iter().map(project_from).collect()
    }

    async fn project(&self, key: &str) -> Result<Project> {
        if key.contains('\0') {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                "project not found (its key contains a NUL character)",
            ));
        }
        let row = sqlx::query("SELECT id, key, name, created_at FROM projects WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read project", e))?
            .ok_or_else(|| {
                StoreError::new(ErrorKind::NotFound, format!("project `{key}` not found"))
            })?;
        project_from(&row)
    }

    async fn create_environment(
        &self,
        project_id: i64,
        key: &str,
        name: &str,
        now: i64,
    ) -> Result<Environment> {
        storable("environment key", key)?;
        storable("environment name", name)?;
        let row = sqlx::query(
            "INSERT INTO environments (project_id, key, name, version, created_at) VALUES ($1, $2, $3, 0, $4) RETURNING id",
        )
        .bind(project_id)
        .bind(key)
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::db(&format!("cannot create environment `{key}`"), e))?;
        self.environment_by_id(get(&row, "id")?).await
    }

    async fn environments(&self, project_id: Option<i64>) -> Result<Vec<Environment>> {
        let rows = match project_id {
            Some(p) => {
                sqlx::query(&format!(
                    "{ENV_SELECT} WHERE e.project_id = $1 ORDER BY e.id"
                ))
                .bind(p)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!("{ENV_SELECT} ORDER BY e.id"))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(|e| StoreError::db("cannot list environments", e))?;
        rows.iter().map(env_from).collect()
    }

    async fn environment(&self, project_key: &str, env_key: &str) -> Result<Environment> {
        if project_key.contains('\0') || env_key.contains('\0') {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                "environment not found (its key contains a NUL character)",
            ));
        }
        let row = sqlx::query(&format!("{ENV_SELECT} WHERE p.key = $1 AND e.key = $2"))
            .bind(project_key)
            .bind(env_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read environment", e))?;
        match row {
            Some(row) => env_from(&row),
            // Say which of the two is missing.
            None => {
                self.project(project_key).await?;
                Err(StoreError::new(
                    ErrorKind::NotFound,
                    format!("environment `{env_key}` not found in project `{project_key}`"),
                ))
            }
        }
    }

    async fn load(&self, env_id: i64) -> Result<EnvState> {
        // One transaction, so the version and the items agree.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StoreError::db("cannot begin read", e))?;
        let row = sqlx::query(&format!("{ENV_SELECT} WHERE e.id = $1"))
            .bind(env_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| StoreError::db("cannot read environment", e))?
            .ok_or_else(|| {
                StoreError::new(
                    ErrorKind::NotFound,
                    format!("environment {env_id} not found"),
                )
            })?;
        let env = env_from(&row)?;
        let rows = sqlx::query(
            "SELECT kind, key, definition, version, archived, updated_at FROM items WHERE environment_id = $1 ORDER BY kind, key",
        )
        .bind(env_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| StoreError::db("cannot read flags", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::db("cannot end read", e))?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = get(row, "kind")?;
            let archived: i64 = get(row, "archived")?;
            items.push(Item {
                kind: kind_of(&kind)?,
                key: get(row, "key")?,
                definition: definition_of(get(row, "definition")?)?,
                version: get(row, "version")?,
                archived: archived != 0,
                updated_at: get(row, "updated_at")?,
            });
        }
        Ok(EnvState { env, items })
    }

    async fn commit(
        &self,
        env_id: i64,
        based_on: i64,
        actor: &str,
        mutations: &[Mutation],
        now: i64,
    ) -> Result<i64> {
        storable_commit(actor, mutations)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StoreError::db("cannot begin write", e))?;
        let bumped = sqlx::query(
            "UPDATE environments SET version = version + 1 WHERE id = $1 AND version = $2",
        )
        .bind(env_id)
        .bind(based_on)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::db("cannot bump environment version", e))?;
        if bumped.rows_affected() != 1 {
            return Err(StoreError::new(
                ErrorKind::Conflict,
                format!("environment {env_id} changed since version {based_on}"),
            ));
        }
        let version = based_on + 1;
        // Items in runs of upserts (one multi-row statement per run of up
        // to ROWS_PER_INSERT distinct items), deletes and settings one by
        // one, all in the mutations' order.
        let mut run: Vec<&Mutation> = Vec::new();
        for m in mutations {
            let joins = m.kind != ItemKind::Setting
                && m.after.is_some()
                && run.len() < ROWS_PER_INSERT
                && !run.iter().any(|r| r.kind == m.kind && r.key == m.key);
            if !joins {
                upsert_items(&mut tx, self.backend, env_id, version, now, &run).await?;
                run.clear();
            }
            match &m.after {
                _ if m.kind == ItemKind::Setting => {
                    let bucketing = setting_of(m)?.unwrap_or_default();
                    sqlx::query("UPDATE environments SET bucketing = $1 WHERE id = $2")
                        .bind(bucketing_name(bucketing))
                        .bind(env_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            StoreError::db("cannot write the environment's bucketing", e)
                        })?;
                }
                Some(_) => run.push(m),
                None => {
                    sqlx::query(
                        "DELETE FROM items WHERE environment_id = $1 AND kind = $2 AND key = $3",
                    )
                    .bind(env_id)
                    .bind(m.kind.as_str())
                    .bind(&m.key)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        StoreError::db(&format!("cannot delete {} `{}`", m.kind.as_str(), m.key), e)
                    })?;
                }
            }
        }
        upsert_items(&mut tx, self.backend, env_id, version, now, &run).await?;
        for (chunk_at, chunk) in mutations.chunks(ROWS_PER_INSERT).enumerate() {
            let sql = format!(
                "INSERT INTO changes (environment_id, version, seq, at, actor, kind, key, action, before, after) VALUES {}",
                placeholders(self.backend, chunk.len(), 10)
            );
            let mut q = sqlx::query(&sql);
            for (i, m) in chunk.iter().enumerate() {
                q = q
                    .bind(env_id)
                    .bind(version)
                    .bind((chunk_at * ROWS_PER_INSERT + i) as i64)
                    .bind(now)
                    .bind(actor)
                    .bind(m.kind.as_str())
                    .bind(&m.key)
                    .bind(m.action.as_str())
                    .bind(m.before.as_ref().map(Definition::as_str))
                    .bind(m.after.as_ref().map(Definition::as_str));
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| StoreError::db("cannot append to the change log", e))?;
        }
        self.notify(&mut tx, &env_id.to_string()).await?;
        tx.commit()
            .await
            .map_err(|e| StoreError::db("cannot commit change", e))?;
        Ok(version)
    }

    async fn changes(&self, env_id: i64, filter: &ChangeFilter) -> Result<Vec<Change>> {
        let limit = filter.capped(MAX_CHANGES) as i64;
        if filter
            .item
            .as_ref()
            .is_some_and(|(_, key)| key.contains('\0'))
        {
            // No stored key contains one.
            return Ok(Vec::new());
        }
        let cols = "SELECT version, at, actor, kind, key, action, before, after FROM changes";
        let rows = match &filter.item {
            Some((kind, key)) => sqlx::query(&format!(
                "{cols} WHERE environment_id = $1 AND version > $2 AND kind = $3 AND key = $4 ORDER BY version, seq LIMIT $5"
            ))
            .bind(env_id)
            .bind(filter.after_version)
            .bind(kind.as_str())
            .bind(key.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await,
            None => sqlx::query(&format!(
                "{cols} WHERE environment_id = $1 AND version > $2 ORDER BY version, seq LIMIT $3"
            ))
            .bind(env_id)
            .bind(filter.after_version)
            .bind(limit)
            .fetch_all(&self.pool)
            .await,
        }
        .map_err(|e| StoreError::db("cannot read the change log", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = get(row, "kind")?;
            let action: String = get(row, "action")?;
            out.push(Change {
                version: get(row, "version")?,
                at: get(row, "at")?,
                actor: get(row, "actor")?,
                kind: kind_of(&kind)?,
                key: get(row, "key")?,
                action: Action::parse(&action).ok_or_else(|| {
                    StoreError::new(
                        ErrorKind::Internal,
                        format!("unknown stored action `{action}`"),
                    )
                })?,
                before: json_of(get(row, "before")?)?,
                after: json_of(get(row, "after")?)?,
            });
        }
        Ok(out)
    }

    async fn versions(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT id, version FROM environments ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read environment versions", e))?;
        rows.iter()
            .map(|r| Ok((get(r, "id")?, get(r, "version")?)))
            .collect()
    }

    async fn create_key(&self, key: &NewKey) -> Result<ApiKey> {
        storable("key name", &key.name)?;
        let row = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, prefix, scope, project_id, environment_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&key.name)
        .bind(&key.hash)
        .bind(&key.prefix)
        .bind(key.scope.as_str())
        .bind(key.project_id)
        .bind(key.environment_id)
        .bind(key.now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::db("cannot store API key", e))?;
        let id: i64 = get(&row, "id")?;
        let row = sqlx::query(&format!("{KEY_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read API key", e))?;
        key_from(&row)
    }

    async fn keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!("{KEY_SELECT} ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot list API keys", e))?;
        rows.iter().map(key_from).collect()
    }

    async fn keys_with_hashes(&self) -> Result<Vec<(String, ApiKey)>> {
        let rows = sqlx::query(
            "SELECT id, name, prefix, scope, project_id, environment_id, created_at, revoked_at, key_hash FROM api_keys",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::db("cannot list API keys", e))?;
        rows.iter()
            .map(|r| Ok((get(r, "key_hash")?, key_from(r)?)))
            .collect()
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!("{KEY_SELECT} WHERE key_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read API key", e))?;
        row.as_ref().map(key_from).transpose()
    }

    async fn revoke_key(&self, id: i64, now: i64) -> Result<ApiKey> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StoreError::db("cannot begin write", e))?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::db("cannot revoke API key", e))?;
        self.notify(&mut tx, "keys").await?;
        tx.commit()
            .await
            .map_err(|e| StoreError::db("cannot commit the revocation", e))?;
        let row = sqlx::query(&format!("{KEY_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::db("cannot read API key", e))?
            .ok_or_else(|| {
                StoreError::new(ErrorKind::NotFound, format!("API key {id} not found"))
            })?;
        key_from(&row)
    }
}

/// Follows `LISTEN vexil_changes` and bumps `notices` on every
/// notification, and after every reconnect (notifications sent while it
/// was away are lost, so listeners should look for changes then).
async fn listen_task(listen: std::sync::Arc<Listen>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut l = sqlx::postgres::PgListener::connect(&listen.url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match connected {
            Ok(mut l) => {
                delay = Duration::from_millis(100);
                listen.notices.send_modify(|n| *n += 1);
                loop {
                    match l.try_recv().await {
                        Ok(Some(_)) => listen.notices.send_modify(|n| *n += 1),
                        // The connection dropped; try_recv reconnects on
                        // its next call, and missed notices are unknown.
                        Ok(None) => listen.notices.send_modify(|n| *n += 1),
                        Err(e) => {
                            tracing::debug!(error = %e, "change notifications interrupted");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot listen for change notifications yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Rows per multi-row `INSERT`: a large change takes few statements
/// (each a round trip to the database's worker), but not so many rows
/// that a statement gets unwieldy. 32 measured fastest for a 100,000-flag
/// import when SQLite's parameters were numbered (see [`placeholders`]).
const ROWS_PER_INSERT: usize = 32;

/// The values of a multi-row `INSERT`: `(?, …), (?, …), …` on SQLite,
/// `($1, …, $cols), ($cols+1, …), …` on PostgreSQL, for `rows` rows of
/// `cols` columns, bound in order either way. SQLite's placeholders are
/// anonymous because sqlx looks the place of a numbered one up by name,
/// and SQLite finds a name by a walk through all of the statement's: a
/// cost per value that grows with the statement (an eighth of a
/// 100,000-flag import).
fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

/// Writes a run of items (distinct, each with a definition) in one
/// statement.
async fn upsert_items(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    env_id: i64,
    version: i64,
    now: i64,
    run: &[&Mutation],
) -> Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO items (environment_id, kind, key, definition, version, archived, updated_at) \
         VALUES {} \
         ON CONFLICT (environment_id, kind, key) DO UPDATE SET \
         definition = excluded.definition, version = excluded.version, \
         archived = excluded.archived, updated_at = excluded.updated_at",
        placeholders(backend, run.len(), 7)
    );
    let mut q = sqlx::query(&sql);
    for m in run {
        q = q
            .bind(env_id)
            .bind(m.kind.as_str())
            .bind(&m.key)
            .bind(m.after.as_ref().map(Definition::as_str))
            .bind(version)
            .bind(i64::from(m.archived))
            .bind(now);
    }
    q.execute(&mut **tx).await.map_err(|e| {
        let what = match run {
            [one] => format!("cannot write {} `{}`", one.kind.as_str(), one.key),
            _ => format!("cannot write {} items", run.len()),
        };
        StoreError::db(&what, e)
    })?;
    Ok(())
}
