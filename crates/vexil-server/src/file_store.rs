//! `vexil serve --flags FILE`: a read-only store over one flag file
//! (native or flagd, JSON or YAML), watched for changes, as flagd users
//! expect. It is served as project `default`, environment `default`.
//!
//! A changed file is validated as a whole; if it does not validate, the
//! problems are logged and the last good version keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use vexil_engine::Format;
use vexil_store::{
    ApiKey, Change, ChangeFilter, EnvState, Environment, ErrorKind, Item, Mutation, NewKey,
    Project, Result, Scope, Store, StoreError,
};

use crate::keys;

/// The project and environment a flag file is served as.
pub(crate) const FILE_PROJECT: &str = "default";
pub(crate) const FILE_ENV: &str = "default";

/// A read-only store holding one file's flags.
pub(crate) struct FileStore {
    path: PathBuf,
    admin_hash: String,
    state: Mutex<FileState>,
}

struct FileState {
    /// Bumped on every accepted change of the file.
    version: i64,
    items: Vec<Item>,
    /// The text last read, to notice changes.
    text: String,
    loaded_at: i64,
}

fn read_only() -> StoreError {
    StoreError::new(
        ErrorKind::ReadOnly,
        "flags are served read-only from a file; edit the file instead",
    )
}

/// Parses and validates a flag file into stored items.
fn parse(text: &str, now: i64) -> std::result::Result<Vec<Item>, String> {
    let doc = vexil_engine::parse(text, Format::Auto)
        .map_err(|e| e.to_string())?
        .into_native()
        .map_err(|p| p.to_string())?;
    vexil_engine::compile(&doc).map_err(|p| p.to_string())?;
    let items = crate::state::definitions_of(&doc)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(kind, key, definition)| Item {
            kind,
            key,
            definition,
            version: 1,
            archived: false,
            updated_at: now,
        })
        .collect();
    Ok(items)
}

impl FileStore {
    /// Reads and validates the file; fails if it is missing or invalid.
    pub(crate) fn open(path: &Path, admin_key: &str, now: i64) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read flag file {}: {e}", path.display()))?;
        let items = parse(&text, now)
            .map_err(|e| anyhow::anyhow!("invalid flag file {}: {e}", path.display()))?;
        Ok(FileStore {
            path: path.to_owned(),
            admin_hash: keys::hash(admin_key),
            state: Mutex::new(FileState {
                version: 1,
                items,
                text,
                loaded_at: now,
            }),
        })
    }

    /// Re-reads the file; a valid change becomes the next version, an
    /// invalid one is logged and ignored. Returns whether anything changed.
    pub(crate) fn refresh(&self, now: i64) -> bool {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot read flag file; keeping the last good version");
                return false;
            }
        };
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if text == state.text {
            return false;
        }
        match parse(&text, now) {
            Ok(items) => {
                state.version += 1;
                let version = state.version;
                state.items = items.into_iter().map(|i| Item { version, ..i }).collect();
                state.text = text;
                state.loaded_at = now;
                tracing::info!(file = %self.path.display(), version, "flag file changed");
                true
            }
            Err(problems) => {
                // Remember the text so the same broken file is logged once.
                state.text = text;
                tracing::error!(file = %self.path.display(), %problems, "changed flag file is invalid; still serving the last good version");
                false
            }
        }
    }

    fn environment(&self, version: i64, created_at: i64) -> Environment {
        Environment {
            id: 1,
            project_id: 1,
            project_key: FILE_PROJECT.into(),
            key: FILE_ENV.into(),
            name: "Flag file".into(),
            version,
            created_at,
        }
    }

    fn snapshot_state(&self) -> Result<(i64, Vec<Item>, i64)> {
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::new(ErrorKind::Internal, "file store lock poisoned"))?;
        Ok((state.version, state.items.clone(), state.loaded_at))
    }

    fn admin(&self) -> ApiKey {
        ApiKey {
            id: 1,
            name: "admin".into(),
            prefix: String::new(),
            scope: Scope::Admin,
            project_id: None,
            environment_id: None,
            created_at: 0,
            revoked_at: None,
        }
    }
}

#[async_trait]
impl Store for FileStore {
    async fn migrate(&self) -> Result<i64> {
        Ok(0)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn create_project(&self, _: &str, _: &str, _: i64) -> Result<Project> {
        Err(read_only())
    }

    async fn projects(&self) -> Result<Vec<Project>> {
        Ok(vec![Project {
            id: 1,
            key: FILE_PROJECT.into(),
            name: "Flag file".into(),
            created_at: 0,
        }])
    }

    async fn project(&self, key: &str) -> Result<Project> {
        self.projects()
            .await?
            .into_iter()
            .find(|p| p.key == key)
            .ok_or_else(|| {
                StoreError::new(ErrorKind::NotFound, format!("project `{key}` not found"))
            })
    }

    async fn create_environment(&self, _: i64, _: &str, _: &str, _: i64) -> Result<Environment> {
        Err(read_only())
    }

    async fn environments(&self, _: Option<i64>) -> Result<Vec<Environment>> {
        let (version, _, at) = self.snapshot_state()?;
        Ok(vec![self.environment(version, at)])
    }

    async fn environment(&self, project_key: &str, env_key: &str) -> Result<Environment> {
        if project_key != FILE_PROJECT || env_key != FILE_ENV {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                format!(
                    "environment `{env_key}` not found in project `{project_key}` (a flag file is served as {FILE_PROJECT}/{FILE_ENV})"
                ),
            ));
        }
        let (version, _, at) = self.snapshot_state()?;
        Ok(self.environment(version, at))
    }

    async fn load(&self, env_id: i64) -> Result<EnvState> {
        if env_id != 1 {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                format!("environment {env_id} not found"),
            ));
        }
        let (version, items, at) = self.snapshot_state()?;
        Ok(EnvState {
            env: self.environment(version, at),
            items,
        })
    }

    async fn commit(&self, _: i64, _: i64, _: &str, _: &[Mutation], _: i64) -> Result<i64> {
        Err(read_only())
    }

    async fn changes(&self, _: i64, _: &ChangeFilter) -> Result<Vec<Change>> {
        Ok(Vec::new())
    }

    async fn versions(&self) -> Result<Vec<(i64, i64)>> {
        let (version, _, _) = self.snapshot_state()?;
        Ok(vec![(1, version)])
    }

    async fn create_key(&self, _: &NewKey) -> Result<ApiKey> {
        Err(read_only())
    }

    async fn keys(&self) -> Result<Vec<ApiKey>> {
        Ok(vec![self.admin()])
    }

    async fn keys_with_hashes(&self) -> Result<Vec<(String, ApiKey)>> {
        Ok(vec![(self.admin_hash.clone(), self.admin())])
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        Ok((hash == self.admin_hash).then(|| self.admin()))
    }

    async fn revoke_key(&self, _: i64, _: i64) -> Result<ApiKey> {
        Err(read_only())
    }
}
