//! Versioned schema migrations, embedded in the binary and applied at
//! start-up (and by `vexil migrate`).
//!
//! Rules, so that an older and a newer server can share one database
//! during a rolling upgrade (see docs/operations.md):
//! - a migration only *expands*: new tables, new nullable or defaulted
//!   columns, new indexes; the running (older) server ignores them;
//! - a *contract* step (dropping or renaming something the previous
//!   release still reads) ships one release later, once no server of the
//!   older version runs;
//! - applied migrations are never edited; each runs once, in a transaction,
//!   and is recorded in `schema_migrations`.

/// One migration: its version, a name, and the SQL for each backend.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sqlite: r#"
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE environments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, key)
);
CREATE TABLE items (
    environment_id INTEGER NOT NULL REFERENCES environments(id),
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    definition TEXT NOT NULL,
    version INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (environment_id, kind, key)
);
CREATE TABLE changes (
    environment_id INTEGER NOT NULL REFERENCES environments(id),
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after TEXT,
    PRIMARY KEY (environment_id, version, seq)
);
CREATE INDEX changes_by_key ON changes (environment_id, kind, key, version);
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scope TEXT NOT NULL,
    project_id INTEGER REFERENCES projects(id),
    environment_id INTEGER REFERENCES environments(id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
"#,
        postgres: r#"
CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE environments (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, key)
);
CREATE TABLE items (
    environment_id BIGINT NOT NULL REFERENCES environments(id),
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    definition TEXT NOT NULL,
    version BIGINT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (environment_id, kind, key)
);
CREATE TABLE changes (
    environment_id BIGINT NOT NULL REFERENCES environments(id),
    version BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after TEXT,
    PRIMARY KEY (environment_id, version, seq)
);
CREATE INDEX changes_by_key ON changes (environment_id, kind, key, version);
CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scope TEXT NOT NULL,
    project_id BIGINT REFERENCES projects(id),
    environment_id BIGINT REFERENCES environments(id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
"#,
    },
    Migration {
        version: 2,
        name: "environment bucketing",
        // Expand only: an older server ignores the column (and serves
        // such an environment with the default bucketing).
        sqlite: "ALTER TABLE environments ADD COLUMN bucketing TEXT NOT NULL DEFAULT 'concat';",
        postgres: "ALTER TABLE environments ADD COLUMN bucketing TEXT NOT NULL DEFAULT 'concat';",
    },
];
