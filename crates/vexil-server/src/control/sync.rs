//! Loading from the store: every environment and the key cache at start,
//! and again whenever the store's version of an environment moves ahead
//! of the installed one (another server's write, a changed flag file).
//! What changed meanwhile is announced to stream subscribers from the
//! change log.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use vexil_protocol::event::{Action as WireAction, ChangedItem, ItemKind as WireKind};
use vexil_store::{
    Action, Change, ChangeFilter, Definition, EnvState, ErrorKind, Item, ItemKind, StoreError,
};

use super::Control;
use super::document::{document_of, item_order};
use crate::plane::EnvSnapshot;

/// Change log entries read at most to announce one reload; beyond it the
/// subscribers get the whole environment instead.
const ANNOUNCE_LIMIT: usize = 1000;

/// The wire spelling of an item kind; `None` for a setting, which a
/// change event cannot carry (the whole environment is sent instead).
pub(super) fn wire_kind(kind: ItemKind) -> Option<WireKind> {
    match kind {
        ItemKind::Flag => Some(WireKind::Flag),
        ItemKind::Segment => Some(WireKind::Segment),
        ItemKind::Setting => None,
    }
}

/// The wire spelling of an action.
pub(super) fn wire_action(action: Action) -> WireAction {
    match action {
        Action::Create => WireAction::Create,
        Action::Update => WireAction::Update,
        Action::Toggle => WireAction::Toggle,
        Action::Archive => WireAction::Archive,
        Action::Restore => WireAction::Restore,
        Action::Delete => WireAction::Delete,
        Action::Copy => WireAction::Copy,
        Action::Import => WireAction::Import,
    }
}

impl Control {
    /// Loads every environment and the keys; the plane is ready after.
    pub(crate) async fn load_all(&self) -> Result<(), StoreError> {
        self.refresh_keys().await?;
        for env in self.store.environments(None).await? {
            self.reload(env.id).await?;
        }
        self.plane.set_loaded();
        Ok(())
    }

    /// Reloads environments whose version in the store is ahead of the
    /// installed one: how changes written by other servers arrive. Returns
    /// how many were reloaded.
    pub(crate) async fn sync(&self) -> Result<usize, StoreError> {
        self.refresh_keys().await?;
        let current = self.plane.snapshots();
        let mut reloaded = 0;
        for (id, version) in self.store.versions().await? {
            if current.get(&id).is_none_or(|s| s.env.version < version) {
                self.reload(id).await?;
                reloaded += 1;
            }
        }
        Ok(reloaded)
    }

    /// Loads every environment (retrying until the store answers), then
    /// follows the store: at every `interval`, and at once when the store
    /// announces a commit (PostgreSQL's notifications), environments whose
    /// version moved are reloaded and announced. Runs until aborted.
    pub(crate) async fn follow(self: Arc<Self>, interval: std::time::Duration) {
        let mut delay = std::time::Duration::from_millis(100);
        while let Err(e) = self.load_all().await {
            tracing::warn!(error = %e.message, "cannot load flags yet; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
        tracing::info!("snapshots loaded");
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // PostgreSQL announces every commit: look at once, and keep polling
        // as the fallback for notifications lost while disconnected.
        let mut notices = self.store.change_notices();
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
            match self.sync().await {
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
    }

    /// Reloads the key cache from the store.
    pub(crate) async fn refresh_keys(&self) -> Result<(), StoreError> {
        let keys = self
            .store
            .keys_with_hashes()
            .await?
            .into_iter()
            .filter_map(|(hash, key)| Some((crate::keys::parse_digest(&hash)?, Arc::new(key))))
            .collect::<HashMap<_, _>>();
        self.plane.install_keys(keys);
        Ok(())
    }

    /// Loads and compiles an environment from the store, installs it, and
    /// announces the versions subscribers have not seen.
    pub(crate) async fn reload(&self, env_id: i64) -> Result<(), StoreError> {
        let before = self.plane.snapshot(env_id).map(|s| s.env.version);
        let state: EnvState = self.store.load(env_id).await?;
        let doc = document_of(state.items.iter(), state.env.bucketing)?;
        // A flag file is served as flagd serves it: an invalid flag gives
        // PARSE_ERROR instead of refusing the file.
        let compiled = if self.store.read_only() {
            vexil_engine::compile_serving(&doc)
        } else {
            vexil_engine::compile(&doc)
        };
        let compiled = match compiled {
            Ok(c) => c,
            Err(problems) => {
                // Stored state is validated before it is written; this
                // means corruption or a newer server's format. Keep
                // serving the last good snapshot.
                tracing::error!(env = env_id, problems = %problems, "stored environment does not compile; keeping the last good snapshot");
                return Err(StoreError {
                    kind: ErrorKind::Internal,
                    message: "stored environment does not compile".to_owned(),
                    source: None,
                });
            }
        };
        let version = state.env.version;
        let label = format!("{}/{}", state.env.project_key, state.env.key);
        // In the order the write path's edits expect, whatever order the
        // database's collation gave.
        let mut items: Vec<Arc<Item>> = state.items.into_iter().map(Arc::new).collect();
        items.sort_by(|a, b| item_order(a.kind, &a.key).cmp(&item_order(b.kind, &b.key)));
        let items = Arc::new(items);
        let snap = EnvSnapshot::new(
            state.env,
            items.clone(),
            Arc::new(doc),
            compiled.snapshot,
            self.plane.eval_counters(env_id, &label),
        );
        let snap = Arc::new(snap);
        if !self.plane.install(snap.clone()) {
            return Ok(());
        }
        // Versions this server did not write: from the change log into the
        // hub, for subscribers now and for resumes later. At the first load
        // that is the log's tail, so that a client resuming after this
        // server restarted gets the changes it missed, not the whole
        // environment.
        let after = match before {
            Some(before) if before < version => before,
            Some(_) => return Ok(()),
            None => (version - self.plane.settings.stream_buffer as i64).max(0),
        };
        if after < version {
            let filter = ChangeFilter {
                item: None,
                after_version: after,
                limit: ANNOUNCE_LIMIT as i64,
            };
            let changes = self
                .store
                .changes(env_id, &filter)
                .await
                .unwrap_or_default();
            let mut last = after;
            for (v, frame) in frames_of(&changes, &items, version) {
                if v != last + 1 {
                    break;
                }
                self.plane.publish(env_id, v, frame);
                last = v;
            }
            // The change log cannot say what changed (or not all of it):
            // announce the new version with the whole environment instead
            // of staying silent.
            if last < version && before.is_some() {
                self.plane
                    .publish(env_id, version, snap.snapshot_frame().clone());
            }
        }
        Ok(())
    }
}

/// Change log entries as one SSE frame per version, up to `upto`; a
/// version the entries may hold only in part (the last one of a full
/// read) is left out. `items` is the environment at `upto`: an item's
/// `archived` is known for its latest change.
fn frames_of(changes: &[Change], items: &[Arc<Item>], upto: i64) -> Vec<(i64, Bytes)> {
    let complete_upto = match changes.last() {
        Some(last) if changes.len() >= ANNOUNCE_LIMIT => last.version - 1,
        _ => upto,
    }
    .min(upto);
    let archived = |c: &Change| {
        c.after.is_some()
            && items
                .iter()
                .find(|i| i.kind == c.kind && i.key == c.key)
                .map_or(c.action == Action::Archive, |i| {
                    if i.version == c.version {
                        i.archived
                    } else {
                        c.action == Action::Archive
                    }
                })
    };
    let mut out = Vec::new();
    for group in changes.chunk_by(|a, b| a.version == b.version) {
        let version = group[0].version;
        if version > complete_upto {
            break;
        }
        // A setting changed: a change event cannot say so; the caller
        // sends the whole environment from here on.
        let Some(items) = group
            .iter()
            .map(|c| {
                Some(ChangedItem {
                    kind: wire_kind(c.kind)?,
                    key: &c.key,
                    action: wire_action(c.action),
                    definition: c.after.as_ref(),
                    archived: archived(c),
                })
            })
            .collect::<Option<Vec<ChangedItem<'_, Definition>>>>()
        else {
            break;
        };
        out.push((
            version,
            Bytes::from(vexil_protocol::event::change_frame(version, &items)),
        ));
    }
    out
}
