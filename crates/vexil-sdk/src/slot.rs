//! `Slot`: where the version being served is kept, written by the follower
//! and read by every evaluation.
//!
//! A plain `ArcSwapOption::load` costs two atomic read-modify-write
//! operations (taking and returning a debt slot), which is a sixth of a
//! typical flag evaluation. Evaluations read far more often than versions
//! change, so each thread keeps its own `Arc` of the version it last saw
//! together with the slot's generation, and takes the shared path only
//! when the generation moved: the common read is one thread-local lookup
//! and one ordinary atomic load.
//!
//! The price: a thread that evaluated once keeps the version it saw alive
//! until it evaluates again through this slot (or the slot is dropped),
//! so a process may hold one superseded snapshot per idle thread.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use thread_local::ThreadLocal;

use crate::followed::Followed;

/// The version being served, with a per-thread read cache.
#[derive(Default)]
pub(crate) struct Slot {
    current: ArcSwapOption<Followed>,
    /// Bumped after every store: a thread whose cached generation differs
    /// reloads `current`.
    generation: AtomicU64,
    cached: ThreadLocal<RefCell<Cached>>,
}

#[derive(Default)]
struct Cached {
    generation: u64,
    followed: Option<Arc<Followed>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("version", &self.load_full().map(|f| f.version()))
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish()
    }
}

impl Slot {
    pub(crate) fn new(initial: Option<Arc<Followed>>) -> Slot {
        Slot {
            current: ArcSwapOption::new(initial),
            // Thread caches start at generation 0 with nothing: 1 makes the
            // first read of each thread load.
            generation: AtomicU64::new(1),
            cached: ThreadLocal::new(),
        }
    }

    /// Serves `followed` from now on.
    pub(crate) fn store(&self, followed: Option<Arc<Followed>>) {
        self.current.store(followed);
        // After the store: a reader that sees the new generation loads the
        // new value (it reads the generation before loading).
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The version served now (an `Arc` of its own).
    pub(crate) fn load_full(&self) -> Option<Arc<Followed>> {
        self.current.load_full()
    }

    /// Calls `f` with the version served now, through this thread's cache.
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&Followed>) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        let cell = self.cached.get_or_default();
        // A reentrant read (the cache already borrowed further up this
        // thread's stack) takes the shared path instead.
        if let Ok(cached) = cell.try_borrow()
            && cached.generation == generation
        {
            return f(cached.followed.as_deref());
        }
        let followed = self.current.load_full();
        if let Ok(mut cached) = cell.try_borrow_mut() {
            cached.generation = generation;
            cached.followed = followed.clone();
        }
        f(followed.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn followed(version: i64) -> Arc<Followed> {
        let json = bytes::Bytes::from_static(br#"{"flags": {}}"#);
        Arc::new(Followed::from_json(version, crate::Origin::Upstream, json, None).unwrap())
    }

    #[test]
    fn a_read_after_a_store_sees_the_stored_version() {
        let slot = Slot::new(None);
        assert_eq!(slot.with(|f| f.map(Followed::version)), None);
        slot.store(Some(followed(1)));
        assert_eq!(slot.with(|f| f.map(Followed::version)), Some(1));
        slot.store(Some(followed(2)));
        assert_eq!(slot.with(|f| f.map(Followed::version)), Some(2));
        slot.store(None);
        assert_eq!(slot.with(|f| f.map(Followed::version)), None);
    }

    #[test]
    fn every_thread_sees_the_latest_store() {
        let slot = Arc::new(Slot::new(Some(followed(1))));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let slot = slot.clone();
                std::thread::spawn(move || {
                    assert_eq!(slot.with(|f| f.map(Followed::version)), Some(1));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        slot.store(Some(followed(2)));
        let slot2 = slot.clone();
        std::thread::spawn(move || assert_eq!(slot2.with(|f| f.map(Followed::version)), Some(2)))
            .join()
            .unwrap();
        assert_eq!(slot.with(|f| f.map(Followed::version)), Some(2));
    }

    #[test]
    fn a_nested_read_takes_the_shared_path() {
        let slot = Slot::new(Some(followed(3)));
        let outer = slot.with(|f| {
            let inner = slot.with(|g| g.map(Followed::version));
            (f.map(Followed::version), inner)
        });
        assert_eq!(outer, (Some(3), Some(3)));
    }
}
