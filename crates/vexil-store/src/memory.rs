//! [`MemoryStore`]: the store kept in memory, for tests and for servers
//! that need no durability. It keeps the same contract as [`SqlStore`]
//! (versions, change log, conflicts, uniqueness, key hashes), checked by
//! the same contract suite; nothing survives the process.
//!
//! [`SqlStore`]: crate::SqlStore

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::types::{MAX_CHANGES, setting_of, storable, storable_commit};
use crate::{
    ApiKey, Change, ChangeFilter, EnvState, Environment, ErrorKind, Item, ItemKind, Mutation,
    NewKey, Project, Result, Store, StoreError,
};

/// The store in memory; see the module documentation.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    projects: Vec<Project>,
    environments: Vec<Environment>,
    /// (environment id, kind, key) to item; ordered as `load` returns them.
    items: BTreeMap<(i64, u8, String), Item>,
    /// Per environment, oldest first.
    changes: BTreeMap<i64, Vec<Change>>,
    keys: Vec<(String, ApiKey)>,
    next_id: i64,
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Items sort flags before segments, then by key, as `SqlStore` does.
fn kind_order(kind: ItemKind) -> u8 {
    match kind {
        ItemKind::Flag => 0,
        ItemKind::Segment => 1,
        ItemKind::Setting => 2,
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn migrate(&self) -> Result<i64> {
        // Nothing to migrate; report the schema version the SQL stores reach.
        Ok(crate::migrations::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn create_project(&self, key: &str, name: &str, now: i64) -> Result<Project> {
        storable("project key", key)?;
        storable("project name", name)?;
        self.with(|s| {
            if s.projects.iter().any(|p| p.key == key) {
                return Err(StoreError::new(
                    ErrorKind::AlreadyExists,
                    format!("cannot create project `{key}`: it exists"),
                ));
            }
            let p = Project {
                id: s.id(),
                key: key.to_owned(),
                name: name.to_owned(),
                created_at: now,
            };
            s.projects.push(p.clone());
            Ok(p)
        })
    }

    async fn projects(&self) -> Result<Vec<Project>> {
        self.with(|s| {
            let mut out = s.projects.clone();
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    async fn project(&self, key: &str) -> Result<Project> {
        self.with(|s| {
            s.projects
                .iter()
                .find(|p| p.key == key)
                .cloned()
                .ok_or_else(|| {
                    StoreError::new(ErrorKind::NotFound, format!("project `{key}` not found"))
                })
        })
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
        self.with(|s| {
            let project = s
                .projects
                .iter()
                .find(|p| p.id == project_id)
                .cloned()
                .ok_or_else(|| {
                    StoreError::new(
                        ErrorKind::NotFound,
                        format!("project {project_id} not found"),
                    )
                })?;
            if s.environments
                .iter()
                .any(|e| e.project_id == project_id && e.key == key)
            {
                return Err(StoreError::new(
                    ErrorKind::AlreadyExists,
                    format!("cannot create environment `{key}`: it exists"),
                ));
            }
            let e = Environment {
                id: s.id(),
                project_id,
                project_key: project.key,
                key: key.to_owned(),
                name: name.to_owned(),
                version: 0,
                created_at: now,
                bucketing: Default::default(),
            };
            s.environments.push(e.clone());
            Ok(e)
        })
    }

    async fn environments(&self, project_id: Option<i64>) -> Result<Vec<Environment>> {
        self.with(|s| {
            Ok(s.environments
                .iter()
                .filter(|e| project_id.is_none_or(|p| e.project_id == p))
                .cloned()
                .collect())
        })
    }

    async fn environment(&self, project_key: &str, env_key: &str) -> Result<Environment> {
        self.with(|s| {
            if let Some(e) = s
                .environments
                .iter()
                .find(|e| e.project_key == project_key && e.key == env_key)
            {
                return Ok(e.clone());
            }
            if !s.projects.iter().any(|p| p.key == project_key) {
                return Err(StoreError::new(
                    ErrorKind::NotFound,
                    format!("project `{project_key}` not found"),
                ));
            }
            Err(StoreError::new(
                ErrorKind::NotFound,
                format!("environment `{env_key}` not found in project `{project_key}`"),
            ))
        })
    }

    async fn load(&self, env_id: i64) -> Result<EnvState> {
        self.with(|s| {
            let env = s
                .environments
                .iter()
                .find(|e| e.id == env_id)
                .cloned()
                .ok_or_else(|| {
                    StoreError::new(
                        ErrorKind::NotFound,
                        format!("environment {env_id} not found"),
                    )
                })?;
            let items = s
                .items
                .range((env_id, 0, String::new())..(env_id + 1, 0, String::new()))
                .map(|(_, item)| item.clone())
                .collect();
            Ok(EnvState { env, items })
        })
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
        self.with(|s| {
            let env = s
                .environments
                .iter_mut()
                .find(|e| e.id == env_id)
                .ok_or_else(|| {
                    StoreError::new(
                        ErrorKind::NotFound,
                        format!("environment {env_id} not found"),
                    )
                })?;
            if env.version != based_on {
                return Err(StoreError::new(
                    ErrorKind::Conflict,
                    format!("environment {env_id} changed since version {based_on}"),
                ));
            }
            let version = based_on + 1;
            env.version = version;
            for m in mutations {
                if let Some(bucketing) = setting_of(m)? {
                    env.bucketing = bucketing;
                }
            }
            for m in mutations {
                let key = (env_id, kind_order(m.kind), m.key.clone());
                match &m.after {
                    _ if m.kind == ItemKind::Setting => {}
                    Some(def) => {
                        s.items.insert(
                            key,
                            Item {
                                kind: m.kind,
                                key: m.key.clone(),
                                definition: def.clone(),
                                version,
                                archived: m.archived,
                                updated_at: now,
                            },
                        );
                    }
                    None => {
                        s.items.remove(&key);
                    }
                }
                s.changes.entry(env_id).or_default().push(Change {
                    version,
                    at: now,
                    actor: actor.to_owned(),
                    kind: m.kind,
                    key: m.key.clone(),
                    action: m.action,
                    before: m.before.clone(),
                    after: m.after.clone(),
                });
            }
            Ok(version)
        })
    }

    async fn changes(&self, env_id: i64, filter: &ChangeFilter) -> Result<Vec<Change>> {
        self.with(|s| {
            Ok(s.changes
                .get(&env_id)
                .into_iter()
                .flatten()
                .filter(|c| filter.admits(c))
                .take(filter.capped(MAX_CHANGES))
                .cloned()
                .collect())
        })
    }

    async fn versions(&self) -> Result<Vec<(i64, i64)>> {
        self.with(|s| Ok(s.environments.iter().map(|e| (e.id, e.version)).collect()))
    }

    async fn create_key(&self, key: &NewKey) -> Result<ApiKey> {
        storable("key name", &key.name)?;
        self.with(|s| {
            if s.keys.iter().any(|(hash, _)| *hash == key.hash) {
                return Err(StoreError::new(
                    ErrorKind::AlreadyExists,
                    "cannot create API key: a key with this secret exists",
                ));
            }
            let k = ApiKey {
                id: s.id(),
                name: key.name.clone(),
                prefix: key.prefix.clone(),
                scope: key.scope,
                project_id: key.project_id,
                environment_id: key.environment_id,
                created_at: key.now,
                revoked_at: None,
            };
            s.keys.push((key.hash.clone(), k.clone()));
            Ok(k)
        })
    }

    async fn keys(&self) -> Result<Vec<ApiKey>> {
        self.with(|s| Ok(s.keys.iter().map(|(_, k)| k.clone()).collect()))
    }

    async fn keys_with_hashes(&self) -> Result<Vec<(String, ApiKey)>> {
        self.with(|s| Ok(s.keys.clone()))
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.with(|s| {
            Ok(s.keys
                .iter()
                .find(|(h, _)| h == hash)
                .map(|(_, k)| k.clone()))
        })
    }

    async fn revoke_key(&self, id: i64, now: i64) -> Result<ApiKey> {
        self.with(|s| {
            let (_, k) = s.keys.iter_mut().find(|(_, k)| k.id == id).ok_or_else(|| {
                StoreError::new(ErrorKind::NotFound, format!("API key {id} not found"))
            })?;
            if k.revoked_at.is_none() {
                k.revoked_at = Some(now);
            }
            Ok(k.clone())
        })
    }
}
