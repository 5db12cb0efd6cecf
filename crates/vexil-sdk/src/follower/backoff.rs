//! Reconnection delays: exponential back-off with full jitter (a random
//! delay between zero and the attempt's cap), so that many followers cut
//! off at once do not come back at once.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// The delays of successive attempts; [`Backoff::reset`] after one that
/// worked.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The cap of the next attempt: `min(max, initial × 2^attempt)`.
    pub(crate) fn cap(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next delay: uniform in `[0, cap]`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let cap = self.cap();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random() % nanos.saturating_add(1))
    }

    /// The last attempt worked: start again from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Waits as long as the longest delay (a refused key is not retried
    /// quickly).
    pub(crate) fn exhaust(&mut self) {
        self.attempt = 31;
    }
}

/// A random number from the standard library's per-process random hash
/// keys (each `RandomState` differs): enough for jitter, no dependency.
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_it() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let caps: Vec<u64> = (0..6)
            .map(|_| {
                let cap = b.cap();
                let d = b.next_delay();
                assert!(d <= cap, "{d:?} > {cap:?}");
                cap.as_millis() as u64
            })
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.cap(), Duration::from_millis(100));
        b.exhaust();
        assert_eq!(b.cap(), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_spread() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 15, "{delays:?}");
    }
}
