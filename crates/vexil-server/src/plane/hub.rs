//! The change hub: each environment's change events, serialised once,
//! fanned out to every stream subscriber, and the most recent ones kept in
//! a ring so that a reconnect with `Last-Event-ID` resumes from memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::broadcast;

/// One environment version's SSE frame, or (`keys`) the frame saying who
/// may read the environment now, which belongs to no version.
#[derive(Debug)]
pub(crate) struct StreamEvent {
    pub(crate) version: i64,
    pub(crate) frame: Bytes,
    /// A `keys` event: sent to the rules stream only, never kept in the
    /// ring.
    pub(crate) keys: bool,
}

/// One environment's subscribers and recent events.
struct Channel {
    sender: broadcast::Sender<Arc<StreamEvent>>,
    /// The most recent events in version order, at most `capacity`.
    recent: VecDeque<Arc<StreamEvent>>,
}

/// Change events of every environment.
pub(crate) struct Hub {
    channels: Mutex<HashMap<i64, Channel>>,
    /// Events kept per environment, for subscribers that fall behind (the
    /// broadcast buffer) and for resumes (the ring).
    capacity: usize,
}

impl Hub {
    pub(crate) fn new(capacity: usize) -> Self {
        Hub {
            channels: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Channel>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn channel<'a>(&self, map: &'a mut HashMap<i64, Channel>, env_id: i64) -> &'a mut Channel {
        map.entry(env_id).or_insert_with(|| Channel {
            sender: broadcast::channel(self.capacity).0,
            recent: VecDeque::new(),
        })
    }

    /// Subscribes to an environment's events.
    pub(crate) fn subscribe(&self, env_id: i64) -> broadcast::Receiver<Arc<StreamEvent>> {
        let mut map = self.channels();
        self.channel(&mut map, env_id).sender.subscribe()
    }

    /// Records and sends an environment's event; returns whether anyone
    /// was subscribed. Events older than the newest recorded are dropped:
    /// versions only go up.
    pub(crate) fn publish(&self, env_id: i64, event: StreamEvent) -> bool {
        let mut map = self.channels();
        let channel = self.channel(&mut map, env_id);
        if channel
            .recent
            .back()
            .is_some_and(|last| last.version >= event.version)
        {
            return false;
        }
        let event = Arc::new(event);
        if channel.recent.len() == self.capacity {
            channel.recent.pop_front();
        }
        channel.recent.push_back(event.clone());
        channel.sender.send(event).is_ok()
    }

    /// Sends a `keys` frame to an environment's current subscribers.
    pub(crate) fn announce_keys(&self, env_id: i64, frame: Bytes) {
        let map = self.channels();
        if let Some(channel) = map.get(&env_id) {
            let _ = channel.sender.send(Arc::new(StreamEvent {
                version: 0,
                frame,
                keys: true,
            }));
        }
    }

    /// The frames of versions `after + 1 ..= upto`, when the ring holds
    /// every one of them; `None` when it does not reach back that far.
    pub(crate) fn since(&self, env_id: i64, after: i64, upto: i64) -> Option<Vec<Bytes>> {
        let map = self.channels();
        let recent = &map.get(&env_id)?.recent;
        let frames: Vec<&Arc<StreamEvent>> = recent
            .iter()
            .filter(|e| e.version > after && e.version <= upto)
            .collect();
        let contiguous = frames.iter().zip(after + 1..).all(|(e, v)| e.version == v);
        (contiguous && frames.len() as i64 == upto - after)
            .then(|| frames.iter().map(|e| e.frame.clone()).collect())
    }

    /// Open subscriptions, for metrics.
    pub(crate) fn subscribers(&self) -> usize {
        self.channels()
            .values()
            .map(|c| c.sender.receiver_count())
            .sum()
    }
}

#[cfg(test)]
mod tests;
