//! Change listeners and the client's background tasks: one task reads the
//! follower's updates in order, works out which flags may evaluate
//! differently, and calls the listeners (never under a lock); another
//! saves each new version to the cache file, coalescing bursts.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use vexil_engine::Document;
use vexil_engine::model::FlagDef;

use crate::cache::Cache;
use crate::followed::{Followed, Origin};
use crate::follower::{Follower, Update, Updates};
use crate::slot::Slot;

/// What a listener is told: a new version, and the flags whose evaluation
/// it may change (definitions changed, or a flag they require, or a
/// segment; conservative: a listed flag may evaluate as before).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Changed {
    /// The version now served.
    pub version: i64,
    /// Flags that may evaluate differently, in key order (deleted ones
    /// included).
    pub flags: Arc<[String]>,
}

/// Names a listener, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

type Callback = Arc<dyn Fn(&Changed) + Send + Sync>;

struct Listener {
    id: u64,
    /// The number of the last update published when it was added: it is
    /// told of later ones only (what it could not have seen already).
    since: u64,
    /// Only changes of this flag; every change when `None`.
    flag: Option<String>,
    callback: Callback,
}

/// The listeners, copied on write: the task takes the current list and
/// calls it without holding the lock.
#[derive(Default)]
pub(super) struct Listeners {
    next: AtomicU64,
    list: Mutex<Arc<Vec<Arc<Listener>>>>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("count", &self.snapshot().len())
            .finish()
    }
}

impl Listeners {
    pub(super) fn add(&self, flag: Option<String>, since: u64, callback: Callback) -> ListenerId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Vec::clone(&list);
        next.push(Arc::new(Listener {
            id,
            since,
            flag,
            callback,
        }));
        *list = Arc::new(next);
        ListenerId(id)
    }

    pub(super) fn remove(&self, id: ListenerId) -> bool {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let before = list.len();
        let next: Vec<_> = list.iter().filter(|l| l.id != id.0).cloned().collect();
        let removed = next.len() != before;
        *list = Arc::new(next);
        removed
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Listener>>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls every listener concerned by `changed` (update number `seq`),
    /// one after another.
    pub(super) fn notify(&self, changed: &Changed, seq: u64) {
        for listener in self.snapshot().iter() {
            if listener.since >= seq {
                continue;
            }
            let concerned = match &listener.flag {
                None => true,
                Some(flag) => changed.flags.binary_search(flag).is_ok(),
            };
            if !concerned {
                continue;
            }
            let call = std::panic::catch_unwind(AssertUnwindSafe(|| (listener.callback)(changed)));
            if call.is_err() {
                tracing::error!(version = changed.version, "a change listener panicked");
            }
        }
    }
}

/// Starts the client's tasks on the follower's runtime: listeners, and
/// the cache writer when there is a cache.
pub(super) fn spawn(
    follower: &Follower,
    listeners: Arc<Listeners>,
    cache: Option<(Cache, String)>,
) -> Vec<tokio::task::AbortHandle> {
    let mut tasks = Vec::new();
    let initial = follower.current();
    let (save_tx, save_rx) = watch::channel(None::<Arc<Followed>>);
    if let Some((cache, label)) = cache {
        tasks.push(tokio::spawn(save(cache, label, save_rx)).abort_handle());
    }
    let updates = follower.updates();
    let slot = follower.current_slot();
    tasks.push(tokio::spawn(follow(updates, listeners, slot, initial, save_tx)).abort_handle());
    tasks
}

/// Reads the updates in order: notifies listeners of new versions, and
/// hands upstream states to the cache writer.
async fn follow(
    mut updates: Updates,
    listeners: Arc<Listeners>,
    slot: Arc<Slot>,
    mut last: Option<Arc<Followed>>,
    save: watch::Sender<Option<Arc<Followed>>>,
) {
    while let Some(update) = updates.recv().await {
        let followed = match update {
            Update::Snapshot(f) | Update::Change { followed: f, .. } => f,
            // Same version, new keys: the state served carries them.
            Update::Keys(_) => match slot.load_full() {
                Some(f) => f,
                None => continue,
            },
        };
        if followed.origin() == Origin::Upstream {
            save.send_replace(Some(followed.clone()));
        }
        let same = last
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l.document(), followed.document()));
        let flags = if same {
            Vec::new()
        } else {
            changed_flags(
                last.as_ref().map(|l| l.document().as_ref()),
                followed.document(),
            )
        };
        let version = followed.version();
        last = Some(followed);
        if !flags.is_empty() {
            listeners.notify(
                &Changed {
                    version,
                    flags: flags.into(),
                },
                updates.seen(),
            );
        }
    }
}

/// Saves the newest state handed over, one write at a time (states
/// handed over during a write are coalesced into the next).
async fn save(cache: Cache, label: String, mut rx: watch::Receiver<Option<Arc<Followed>>>) {
    while rx.changed().await.is_ok() {
        let Some(followed) = rx.borrow_and_update().clone() else {
            continue;
        };
        let (cache, label, f) = (cache.clone(), label.clone(), followed.clone());
        let written = tokio::task::spawn_blocking(move || cache.write(&label, &f.seed()?)).await;
        match written {
            Ok(Ok(())) => tracing::debug!(version = followed.version(), "cache saved"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot save the cache"),
            Err(e) => tracing::warn!(error = %e, "saving the cache failed"),
        }
    }
}

/// The flags of `new` (and those gone since `old`) whose evaluation may
/// differ from `old`'s, in key order: changed definitions; when segments,
/// document metadata or bucketing changed, every flag; then every flag
/// requiring one of those, transitively.
pub(crate) fn changed_flags(old: Option<&Document>, new: &Document) -> Vec<String> {
    let empty = Document::default();
    let old = old.unwrap_or(&empty);
    let before: HashMap<&str, &FlagDef> = old.flags.iter().collect();
    let everything = old.segments != new.segments
        || old.metadata != new.metadata
        || old.bucketing != new.bucketing;
    let mut changed: BTreeSet<&str> = new
        .flags
        .iter()
        .filter(|(k, def)| everything || before.get(k) != Some(def))
        .map(|(k, _)| k)
        .collect();
    let now: HashMap<&str, &FlagDef> = new.flags.iter().collect();
    changed.extend(before.keys().filter(|k| !now.contains_key(*k)));
    // Flags requiring a changed flag may change too (chains are short:
    // the engine bounds their depth).
    loop {
        let more: Vec<&str> = new
            .flags
            .iter()
            .filter(|(k, def)| {
                !changed.contains(k)
                    && def
                        .prerequisites
                        .iter()
                        .any(|p| changed.contains(p.flag.as_str()))
            })
            .map(|(k, _)| k)
            .collect();
        if more.is_empty() {
            break;
        }
        changed.extend(more);
    }
    changed.into_iter().map(str::to_owned).collect()
}
