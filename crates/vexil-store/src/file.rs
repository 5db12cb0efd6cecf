//! [`FileStore`], behind `vexil serve --flags FILE`: a read-only store over
//! one flag file (native or flagd, JSON or YAML), watched for changes, as
//! flagd users expect. It is served as project `default`, environment
//! `default`. The store owns its watcher (started by [`FileStore::watch`],
//! ended by [`Store::close`]) and announces accepted changes through
//! [`Store::change_notices`].
//!
//! As flagd does, a flag with problems does not take the file down: it is
//! served, its evaluations give PARSE_ERROR, and its problems are logged.
//! A changed file that does not parse at all (or whose segments are
//! invalid) is logged and the last good version keeps serving. Each
//! accepted change becomes the next version, with change log entries (what
//! was created, updated or deleted), so SSE subscribers hear of it as they
//! hear of a write.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use vexil_engine::model::{Bucketing, Document, FlagDef};
use vexil_engine::{Format, Problem};

use crate::types::{BUCKETING_SETTING, MAX_CHANGES, bucketing_name};
use crate::{
    Action, ApiKey, Change, ChangeFilter, Definition, EnvState, Environment, ErrorKind, Item,
    ItemKind, Mutation, NewKey, Project, Result, Scope, Store, StoreError,
};

/// Change log entries kept for reconnecting SSE subscribers.
const KEPT_CHANGES: usize = 1000;

/// The project and environment a flag file is served as.
pub const FILE_PROJECT: &str = "default";
/// See [`FILE_PROJECT`].
pub const FILE_ENV: &str = "default";

/// The keys a flag file's server accepts, as SHA-256 hashes (hex): the
/// secrets are not kept.
#[derive(Debug, Clone, Default)]
pub struct FileKeys {
    /// The admin key.
    pub admin: String,
    /// Server keys of the file's environment.
    pub server: Vec<String>,
    /// Client keys of the file's environment.
    pub client: Vec<String>,
}

/// The file's current version, items, load time and bucketing.
type Current = (i64, Vec<Item>, i64, Bucketing);

/// A read-only store holding one file's flags.
pub struct FileStore {
    path: PathBuf,
    /// Accepted keys by SHA-256 hash: the admin key, then the configured
    /// server and client keys of the file's environment.
    keys: Vec<(String, ApiKey)>,
    state: Mutex<FileState>,
    /// Moves on every accepted change of the file.
    notices: tokio::sync::watch::Sender<u64>,
    /// The watching task, if started.
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct FileState {
    /// Bumped on every accepted change of the file.
    version: i64,
    items: Vec<Item>,
    /// The file's own `bucketing`: the environment's setting.
    bucketing: Bucketing,
    /// The text last read, to notice changes.
    text: String,
    loaded_at: i64,
    /// What each version changed, oldest first.
    changes: VecDeque<Change>,
}

fn read_only() -> StoreError {
    StoreError::new(
        ErrorKind::ReadOnly,
        "flags are served read-only from a file; edit the file instead",
    )
}

/// A file's flags as stored items, and the problems of its invalid flags.
struct Parsed {
    items: Vec<Item>,
    bucketing: Bucketing,
    invalid: Vec<Problem>,
}

/// Parses a flag file into stored items. Invalid flags are kept (their
/// evaluations give PARSE_ERROR) and reported; a file that does not parse,
/// or whose problems are not confined to flags, is refused.
fn parse(text: &str, now: i64) -> std::result::Result<Parsed, String> {
    let doc = vexil_engine::parse(text, Format::Auto)
        .map_err(|e| e.to_string())?
        .into_native_serving();
    let compiled = vexil_engine::compile_serving(&doc).map_err(|p| p.to_string())?;
    let items = definitions_of(&doc)
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
    Ok(Parsed {
        items,
        bucketing: doc.bucketing,
        invalid: compiled.warnings,
    })
}

/// Logs the invalid flags of a file, each with its place: pointer and line
/// (of the place, or of the nearest enclosing one the file has: flagd
/// files name some places differently).
fn log_invalid(path: &Path, text: &str, invalid: &[Problem]) {
    for p in invalid {
        let mut tokens: Vec<&str> = p.pointer.as_str().split('/').skip(1).collect();
        let line = loop {
            let at = vexil_engine::Pointer::root().at(tokens
                .iter()
                .map(|t| t.replace("~1", "/").replace("~0", "~")));
            match vexil_engine::locate(text, &at) {
                Some(line) => break Some(line),
                None if tokens.pop().is_some() => {}
                None => break None,
            }
        };
        tracing::warn!(
            file = %path.display(),
            line,
            pointer = %p.pointer,
            problem = %p.message,
            "invalid flag in flag file; its evaluations give PARSE_ERROR"
        );
    }
}

/// What changed between two versions of the items.
fn diff(before: &[Item], after: &[Item], version: i64, at: i64) -> Vec<Change> {
    let mut out = Vec::new();
    let change = |item: &Item, action, before: Option<&Item>, after: Option<&Item>| Change {
        version,
        at,
        actor: "file".into(),
        kind: item.kind,
        key: item.key.clone(),
        action,
        before: before.map(|i| i.definition.clone()),
        after: after.map(|i| i.definition.clone()),
    };
    for new in after {
        match before
            .iter()
            .find(|old| old.kind == new.kind && old.key == new.key)
        {
            None => out.push(change(new, Action::Create, None, Some(new))),
            Some(old) if old.definition != new.definition => {
                out.push(change(new, Action::Update, Some(old), Some(new)))
            }
            Some(_) => {}
        }
    }
    for old in before {
        if !after
            .iter()
            .any(|new| new.kind == old.kind && new.key == old.key)
        {
            out.push(change(old, Action::Delete, Some(old), None));
        }
    }
    out
}

/// The stored definitions a document describes: its segments, and its
/// flags with the document metadata overlaid on their own (as evaluation
/// sees them), for imports and flag files.
pub fn definitions_of(doc: &Document) -> serde_json::Result<Vec<(ItemKind, String, Definition)>> {
    let mut out = Vec::with_capacity(doc.segments.len() + doc.flags.len());
    for (key, seg) in doc.segments.iter() {
        out.push((ItemKind::Segment, key.to_owned(), Definition::to_json(seg)?));
    }
    for (key, flag) in doc.flags.shared() {
        let flag = stored_flag(doc, flag);
        out.push((ItemKind::Flag, key.to_owned(), Definition::to_json(&*flag)?));
    }
    Ok(out)
}

/// A flag of `doc` as it is stored (see [`definitions_of`]): with the
/// document's metadata overlaid by its own; the flag itself when the
/// document has none.
pub fn stored_flag(doc: &Document, flag: &Arc<FlagDef>) -> Arc<FlagDef> {
    if doc.metadata.is_empty() {
        return flag.clone();
    }
    let mut flag = FlagDef::clone(flag);
    let mut metadata = doc.metadata.clone();
    metadata.extend(std::mem::take(&mut flag.metadata));
    flag.metadata = metadata;
    Arc::new(flag)
}

/// The in-memory keys of a flag file: the admin key and the evaluation keys.
fn file_keys(evaluation: &FileKeys) -> Vec<(String, ApiKey)> {
    let key = |id: i64, name: String, scope: Scope| ApiKey {
        id,
        name,
        prefix: String::new(),
        scope,
        project_id: (scope != Scope::Admin).then_some(1),
        environment_id: (scope != Scope::Admin).then_some(1),
        created_at: 0,
        revoked_at: None,
    };
    let mut out = vec![(
        evaluation.admin.clone(),
        key(1, "admin".into(), Scope::Admin),
    )];
    for (scope, hashes) in [
        (Scope::Server, &evaluation.server),
        (Scope::Client, &evaluation.client),
    ] {
        for (n, hash) in hashes.iter().enumerate() {
            let id = out.len() as i64 + 1;
            let name = format!("{}-{}", scope.as_str(), n + 1);
            out.push((hash.clone(), key(id, name, scope)));
        }
    }
    out
}

impl FileStore {
    /// Reads the file; fails if it is missing or does not parse (invalid
    /// flags are served and logged). `keys` are the keys it accepts; `now`
    /// is the time in Unix milliseconds.
    pub fn open(path: &Path, keys: &FileKeys, now: i64) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError {
            kind: ErrorKind::Unavailable,
            message: format!("cannot read flag file {}", path.display()),
            source: Some(Box::new(e)),
        })?;
        let parsed = parse(&text, now).map_err(|e| {
            StoreError::new(
                ErrorKind::Invalid,
                format!("invalid flag file {}: {e}", path.display()),
            )
        })?;
        log_invalid(path, &text, &parsed.invalid);
        Ok(FileStore {
            notices: tokio::sync::watch::channel(0).0,
            watcher: Mutex::new(None),
            path: path.to_owned(),
            keys: file_keys(keys),
            state: Mutex::new(FileState {
                version: 1,
                items: parsed.items,
                bucketing: parsed.bucketing,
                text,
                loaded_at: now,
                changes: VecDeque::new(),
            }),
        })
    }

    /// Re-reads the file every `every` (off the async threads) until the
    /// store is closed; `clock` gives the time in Unix milliseconds.
    pub fn watch(self: &Arc<Self>, every: Duration, clock: Arc<dyn Fn() -> i64 + Send + Sync>) {
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let s = store.clone();
                let now = clock();
                if let Ok(true) = tokio::task::spawn_blocking(move || s.refresh(now)).await {
                    store.notices.send_modify(|n| *n += 1);
                }
            }
        });
        let mut watcher = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = watcher.replace(task) {
            old.abort();
        }
    }

    /// Re-reads the file; a valid change becomes the next version, an
    /// invalid one is logged and ignored. Returns whether anything changed.
    pub fn refresh(&self, now: i64) -> bool {
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
            Ok(parsed) => {
                log_invalid(&self.path, &text, &parsed.invalid);
                state.text = text;
                let version = state.version + 1;
                let mut changes = diff(&state.items, &parsed.items, version, now);
                if parsed.bucketing != state.bucketing {
                    changes.push(Change {
                        version,
                        at: now,
                        actor: "file".into(),
                        kind: ItemKind::Setting,
                        key: BUCKETING_SETTING.into(),
                        action: Action::Update,
                        before: Some(Definition::string(bucketing_name(state.bucketing))),
                        after: Some(Definition::string(bucketing_name(parsed.bucketing))),
                    });
                    state.bucketing = parsed.bucketing;
                }
                if changes.is_empty() {
                    // Only formatting or comments changed.
                    return false;
                }
                state.version = version;
                state.items = parsed
                    .items
                    .into_iter()
                    .map(|new| {
                        // Unchanged items keep the version of their last change.
                        let unchanged = changes
                            .iter()
                            .all(|c| c.kind != new.kind || c.key != new.key);
                        match state
                            .items
                            .iter()
                            .find(|old| old.kind == new.kind && old.key == new.key)
                        {
                            Some(old) if unchanged => old.clone(),
                            _ => Item { version, ..new },
                        }
                    })
                    .collect();
                state.loaded_at = now;
                state.changes.extend(changes);
                while state.changes.len() > KEPT_CHANGES {
                    state.changes.pop_front();
                }
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

    fn environment(&self, (version, _, created_at, bucketing): &Current) -> Environment {
        let (version, created_at, bucketing) = (*version, *created_at, *bucketing);
        Environment {
            bucketing,
            id: 1,
            project_id: 1,
            project_key: FILE_PROJECT.into(),
            key: FILE_ENV.into(),
            name: "Flag file".into(),
            version,
            created_at,
        }
    }

    fn snapshot_state(&self) -> Result<Current> {
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::new(ErrorKind::Internal, "file store lock poisoned"))?;
        Ok((
            state.version,
            state.items.clone(),
            state.loaded_at,
            state.bucketing,
        ))
    }
}

#[async_trait]
impl Store for FileStore {
    fn read_only(&self) -> bool {
        true
    }

    fn change_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.notices.subscribe())
    }

    async fn close(&self) {
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = watcher {
            w.abort();
        }
    }

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
        Ok(vec![self.environment(&self.snapshot_state()?)])
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
        Ok(self.environment(&self.snapshot_state()?))
    }

    async fn load(&self, env_id: i64) -> Result<EnvState> {
        if env_id != 1 {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                format!("environment {env_id} not found"),
            ));
        }
        let current = self.snapshot_state()?;
        Ok(EnvState {
            env: self.environment(&current),
            items: current.1,
        })
    }

    async fn commit(&self, _: i64, _: i64, _: &str, _: &[Mutation], _: i64) -> Result<i64> {
        Err(read_only())
    }

    async fn changes(&self, env_id: i64, filter: &ChangeFilter) -> Result<Vec<Change>> {
        if env_id != 1 {
            return Ok(Vec::new());
        }
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::new(ErrorKind::Internal, "file store lock poisoned"))?;
        Ok(state
            .changes
            .iter()
            .filter(|c| filter.admits(c))
            .take(filter.capped(MAX_CHANGES))
            .cloned()
            .collect())
    }

    async fn versions(&self) -> Result<Vec<(i64, i64)>> {
        let (version, _, _, _) = self.snapshot_state()?;
        Ok(vec![(1, version)])
    }

    async fn create_key(&self, _: &NewKey) -> Result<ApiKey> {
        Err(read_only())
    }

    async fn keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.keys.iter().map(|(_, k)| k.clone()).collect())
    }

    async fn keys_with_hashes(&self) -> Result<Vec<(String, ApiKey)>> {
        Ok(self.keys.clone())
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        Ok(self
            .keys
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, k)| k.clone()))
    }

    async fn revoke_key(&self, _: i64, _: i64) -> Result<ApiKey> {
        Err(read_only())
    }
}
