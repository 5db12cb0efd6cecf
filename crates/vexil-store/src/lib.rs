//! Vexil's durable store: current state plus an append-only change log per
//! environment, and API keys.
//!
//! Every accepted change gets the next environment version, assigned in
//! the same transaction as the change itself, so the log has no gaps and
//! versions order all changes of an environment. Writes name the version
//! they were based on and fail with [`ErrorKind::Conflict`] when another
//! writer got there first; callers re-validate and retry.
//!
//! [`SqlStore`] serves both SQLite (the embedded default) and PostgreSQL
//! (production); [`MemoryStore`] keeps the same contract in memory, for
//! tests and throwaway servers; [`FileStore`] serves one watched flag file,
//! read-only.

#![deny(missing_docs)]

mod definition;
mod error;
mod file;
mod memory;
mod migrations;
mod sql;
mod types;

pub use definition::Definition;
pub use error::{ErrorKind, StoreError};
pub use file::{FILE_ENV, FILE_PROJECT, FileKeys, FileStore, definitions_of, stored_flag};
pub use memory::MemoryStore;
pub use sql::{Backend, SqlStore};
pub use types::{
    Action, ApiKey, BUCKETING_SETTING, Change, ChangeFilter, EnvState, Environment, Item, ItemKind,
    Mutation, NewKey, Project, Scope, bucketing_name, parse_bucketing,
};

use async_trait::async_trait;

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store interface the server uses; see [`SqlStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending schema migrations; returns the schema version.
    async fn migrate(&self) -> Result<i64>;
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;

    /// Creates a project.
    async fn create_project(&self, key: &str, name: &str, now: i64) -> Result<Project>;
    /// All projects, by key.
    async fn projects(&self) -> Result<Vec<Project>>;
    /// A project by key.
    async fn project(&self, key: &str) -> Result<Project>;

    /// Creates an environment in a project.
    async fn create_environment(
        &self,
        project_id: i64,
        key: &str,
        name: &str,
        now: i64,
    ) -> Result<Environment>;
    /// Environments, of one project or of all.
    async fn environments(&self, project_id: Option<i64>) -> Result<Vec<Environment>>;
    /// An environment by project and environment key.
    async fn environment(&self, project_key: &str, env_key: &str) -> Result<Environment>;

    /// The current state of an environment: its version and every flag
    /// and segment (archived ones included).
    async fn load(&self, env_id: i64) -> Result<EnvState>;
    /// Applies mutations as one change: the environment moves from
    /// `based_on` to `based_on + 1`, or nothing happens and the error is
    /// [`ErrorKind::Conflict`]. Returns the new version. A mutation of
    /// kind [`ItemKind::Setting`] changes the environment's setting (and
    /// is logged) instead of an item.
    async fn commit(
        &self,
        env_id: i64,
        based_on: i64,
        actor: &str,
        mutations: &[Mutation],
        now: i64,
    ) -> Result<i64>;
    /// Change log entries, oldest first.
    async fn changes(&self, env_id: i64, filter: &ChangeFilter) -> Result<Vec<Change>>;
    /// (environment id, version) of every environment: how other instances'
    /// writes are noticed.
    async fn versions(&self) -> Result<Vec<(i64, i64)>>;

    /// Stores a new API key (its hash only).
    async fn create_key(&self, key: &NewKey) -> Result<ApiKey>;
    /// All API keys, revoked ones included.
    async fn keys(&self) -> Result<Vec<ApiKey>>;
    /// All API keys with their hashes, for in-memory lookup.
    async fn keys_with_hashes(&self) -> Result<Vec<(String, ApiKey)>>;
    /// The key with this hash, if any.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Marks a key revoked.
    async fn revoke_key(&self, id: i64, now: i64) -> Result<ApiKey>;
    /// A counter that moves whenever another process may have changed the
    /// store (PostgreSQL: `LISTEN`/`NOTIFY` on every commit and key
    /// revocation), so callers can look for changes at once instead of
    /// waiting for their next poll. `None` when the backend cannot tell;
    /// polling stays the fallback either way.
    fn change_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Whether the store refuses every write (a flag file).
    fn read_only(&self) -> bool {
        false
    }
    /// Releases connections and background tasks; the store answers
    /// nothing useful afterwards.
    async fn close(&self) {}
}
