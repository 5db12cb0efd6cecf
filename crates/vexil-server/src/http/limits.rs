//! Protection: per-key rate limits (token buckets, configurable per scope,
//! answered with 429 and `Retry-After`) and a global limit on requests in
//! flight (answered with 503 at once instead of queueing without bound).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

use vexil_store::{ApiKey, Scope};

/// Requests per second allowed per key, by scope; 0 means unlimited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateLimits {
    pub(crate) admin: f64,
    pub(crate) server: f64,
    pub(crate) client: f64,
}

/// What a request does, which decides the rate it is held to: the same
/// admin key is limited at the admin rate on the admin API and at the
/// evaluation rate on the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Use {
    /// The admin API.
    Admin,
    /// Evaluation and delivery (OFREP, native evaluation, snapshot, streams).
    Evaluation,
}

impl RateLimits {
    fn of(&self, scope: Scope, use_: Use) -> f64 {
        match (use_, scope) {
            (Use::Admin, _) => self.admin,
            (Use::Evaluation, Scope::Client) => self.client,
            // Server keys, and admin keys evaluating like a server does.
            (Use::Evaluation, Scope::Server | Scope::Admin) => self.server,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

const SHARDS: usize = 16;

/// Token buckets per key, sharded to keep lock hold times and contention
/// small; each request takes one shard's lock briefly.
pub(crate) struct Limiter {
    limits: RateLimits,
    /// Buckets by key id and use: one key's admin calls and evaluations
    /// draw from separate buckets.
    shards: [Mutex<HashMap<(i64, Use), Bucket>>; SHARDS],
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// Refused: retry after this many whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryAfter(pub(crate) u64);

impl Limiter {
    pub(crate) fn new(limits: RateLimits, max_in_flight: usize) -> Self {
        Limiter {
            limits,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
        }
    }

    /// Takes one token from the key's bucket for this use (burst: one
    /// second's worth).
    pub(crate) fn admit(&self, key: &ApiKey, use_: Use) -> Result<(), RetryAfter> {
        let rate = self.limits.of(key.scope, use_);
        if rate <= 0.0 {
            return Ok(());
        }
        let shard = &self.shards[(key.id as usize) % SHARDS];
        let mut buckets = shard.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets.entry((key.id, use_)).or_insert(Bucket {
            tokens: rate.max(1.0),
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate.max(1.0));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / rate;
            Err(RetryAfter(wait.ceil().max(1.0) as u64))
        }
    }

    /// Counts a request in flight, or refuses it when too many are.
    pub(crate) fn enter(&self) -> Option<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlight(&self.in_flight))
    }
}

/// A request in flight; leaving the scope ends it.
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, scope: Scope) -> ApiKey {
        ApiKey {
            id,
            name: "k".into(),
            prefix: String::new(),
            scope,
            project_id: None,
            environment_id: None,
            created_at: 0,
            revoked_at: None,
        }
    }

    #[test]
    fn buckets_allow_a_burst_then_refuse_with_whole_seconds() {
        let l = Limiter::new(
            RateLimits {
                admin: 0.0,
                server: 5.0,
                client: 0.5,
            },
            10,
        );
        let s = key(1, Scope::Server);
        for _ in 0..5 {
            assert_eq!(l.admit(&s, Use::Evaluation), Ok(()));
        }
        assert_eq!(l.admit(&s, Use::Evaluation), Err(RetryAfter(1)));
        // Keys have buckets of their own; 0 is unlimited.
        assert_eq!(l.admit(&key(2, Scope::Server), Use::Evaluation), Ok(()));
        for _ in 0..100 {
            assert_eq!(l.admit(&key(3, Scope::Admin), Use::Admin), Ok(()));
        }
        let c = key(4, Scope::Client);
        assert_eq!(l.admit(&c, Use::Evaluation), Ok(()));
        assert_eq!(l.admit(&c, Use::Evaluation), Err(RetryAfter(2)));
    }

    // issue 12, item 1: the rate follows what the request does, not only
    // the key's scope.
    #[test]
    fn admin_keys_evaluate_at_the_server_rate_in_a_bucket_of_their_own() {
        let l = Limiter::new(
            RateLimits {
                admin: 2.0,
                server: 50.0,
                client: 0.0,
            },
            10,
        );
        let a = key(1, Scope::Admin);
        for _ in 0..2 {
            assert_eq!(l.admit(&a, Use::Admin), Ok(()));
        }
        assert_eq!(l.admit(&a, Use::Admin), Err(RetryAfter(1)));
        for _ in 0..50 {
            assert_eq!(l.admit(&a, Use::Evaluation), Ok(()));
        }
        assert_eq!(l.admit(&a, Use::Evaluation), Err(RetryAfter(1)));
        // Client keys evaluate at the client rate (here unlimited).
        for _ in 0..100 {
            assert_eq!(l.admit(&key(2, Scope::Client), Use::Evaluation), Ok(()));
        }
    }

    // Issue 7, item 2: time comes from tokio's clock, which a test pauses
    // and moves: the refill is checked without sleeping.
    #[tokio::test(start_paused = true)]
    async fn buckets_refill_with_time() {
        let l = Limiter::new(
            RateLimits {
                admin: 0.0,
                server: 2.0,
                client: 0.0,
            },
            10,
        );
        let s = key(1, Scope::Server);
        assert_eq!(l.admit(&s, Use::Evaluation), Ok(()));
        assert_eq!(l.admit(&s, Use::Evaluation), Ok(()));
        assert_eq!(l.admit(&s, Use::Evaluation), Err(RetryAfter(1)));
        tokio::time::advance(std::time::Duration::from_millis(499)).await;
        assert_eq!(l.admit(&s, Use::Evaluation), Err(RetryAfter(1)));
        tokio::time::advance(std::time::Duration::from_millis(2)).await;
        assert_eq!(l.admit(&s, Use::Evaluation), Ok(()));
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        // A full bucket holds one second's worth, not a minute's.
        assert_eq!(l.admit(&s, Use::Evaluation), Ok(()));
        assert_eq!(l.admit(&s, Use::Evaluation), Ok(()));
        assert_eq!(l.admit(&s, Use::Evaluation), Err(RetryAfter(1)));
    }

    #[test]
    fn in_flight_is_bounded() {
        let l = Limiter::new(
            RateLimits {
                admin: 0.0,
                server: 0.0,
                client: 0.0,
            },
            2,
        );
        let a = l.enter();
        let b = l.enter();
        assert!(a.is_some() && b.is_some());
        assert!(l.enter().is_none());
        drop(a);
        assert!(l.enter().is_some());
    }
}
