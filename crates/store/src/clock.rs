//! Time sources for the store.
//!
//! The store never reads the wall clock directly: every operation asks a
//! [`Clock`] for "now" exactly once, so expiry, flush and last-access logic
//! can be driven deterministically from tests with [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole unix seconds.
///
/// Implementations must be cheap: the store calls [`Clock::now`] once per
/// operation. The value should be a realistic unix time (well above 30 days
/// worth of seconds), because memcached's exptime rules treat values above
/// 2 592 000 as absolute timestamps and "0" as "never".
pub trait Clock: Send + Sync {
    /// Current unix time in seconds.
    fn now(&self) -> u64;
}

/// The real clock, backed by [`SystemTime`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock set before 1970 is a broken host; report the epoch rather
        // than panicking inside a cache operation.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// A clock that only moves when told to; meant for tests.
///
/// Share it with the store as `Arc<ManualClock>` and keep a second handle to
/// drive it:
///
/// ```
/// use std::sync::Arc;
/// use memshard_store::{Clock, ManualClock};
///
/// let clock = Arc::new(ManualClock::new(1_700_000_000));
/// clock.advance(5);
/// assert_eq!(clock.now(), 1_700_000_005);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A realistic default start time (2023-11-14), used by [`Default`].
    pub const DEFAULT_START: u64 = 1_700_000_000;

    /// Creates a clock frozen at `start` unix seconds.
    pub fn new(start: u64) -> Self {
        Self { now: AtomicU64::new(start) }
    }

    /// Sets the current time.
    pub fn set(&self, now: u64) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(Self::DEFAULT_START)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100);
        assert_eq!(c.now(), 100);
        c.advance(7);
        assert_eq!(c.now(), 107);
        c.set(5);
        assert_eq!(c.now(), 5);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
