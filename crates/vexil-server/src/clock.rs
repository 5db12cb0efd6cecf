//! The wall clock, injected.
//!
//! Wall-clock time (audit timestamps, `$flagd.timestamp`, the flag file's
//! change times) comes from a [`Clock`] given to [`crate::run`] through the
//! configuration, so a test can set it. Durations, deadlines and intervals
//! use `tokio::time`, which a test can pause and advance.

use std::fmt::Debug;

/// Where the server reads the wall-clock time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn unix_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch.
    fn unix_seconds(&self) -> i64 {
        self.unix_ms().div_euclid(1000)
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
