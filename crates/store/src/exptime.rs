//! memcached's exptime and flush_all time rules, in absolute unix seconds.
//!
//! memcached keeps times relative to process start (`rel_time_t`); we keep
//! absolute unix seconds in a `u32` (good until 2106) and translate the
//! client's `exptime` with the same rules as `realtime()`:
//!
//! * `0` — never expires (stored as 0);
//! * negative — already expired (memcached maps it to `REALTIME_MAXDELTA + 1`,
//!   an absolute time before the process started); stored as 1;
//! * `1..=2_592_000` — relative to now;
//! * larger — an absolute unix time; if it is not in the future the item is
//!   stored but immediately invisible, exactly like memcached.
//!
//! An item is expired when `exptime != 0 && exptime <= now`.

use crate::compat::REALTIME_MAXDELTA;

/// Stored exptime meaning "already expired" (any non-zero time in the past).
const ALREADY_EXPIRED: u32 = 1;

/// Clamps a unix time into the `u32` header field.
pub(crate) fn clamp_u32(t: u64) -> u32 {
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// Converts a client-supplied exptime into the stored absolute form.
pub(crate) fn absolute_exptime(exptime: i64, now: u32) -> u32 {
    match exptime {
        0 => 0,
        e if e < 0 => ALREADY_EXPIRED,
        e if e <= REALTIME_MAXDELTA => clamp_u32(u64::from(now) + e.unsigned_abs()),
        e => clamp_u32(e.unsigned_abs()),
    }
}

/// True when a stored exptime has passed.
pub(crate) fn is_expired(exptime: u32, now: u32) -> bool {
    exptime != 0 && exptime <= now
}

/// Remaining lifetime as memcached's meta `t` flag reports it: `-1` for
/// "never", otherwise seconds until expiry (negative only if the caller made
/// the item expire within the current operation).
pub(crate) fn remaining_ttl(exptime: u32, now: u32) -> i64 {
    if exptime == 0 { -1 } else { i64::from(exptime) - i64::from(now) }
}

/// Where `flush_all` leaves memcached's `settings.oldest_live`/`oldest_cas`,
/// translated to absolute time. `oldest_live == 0` means "no flush".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlushPlan {
    /// Items last accessed at or before this second become invisible once
    /// `now >= oldest_live`.
    pub(crate) oldest_live: u64,
    /// Whether to also record a fresh CAS floor (items with a lower CAS are
    /// flushed); memcached does this when the flush time is not in the future.
    pub(crate) take_cas_floor: bool,
}

/// Computes memcached's `process_flush_all_command` effect.
///
/// `started` is our stand-in for memcached's `process_started` (store
/// creation time minus 62 s). Note the `- 1`: `flush_all 10` takes effect 9
/// seconds later and hides items touched in that second too, as memcached
/// does. An absolute flush time at or before `started` cancels any pending
/// flush, again like memcached (its `realtime()` returns 1, minus one is 0).
pub(crate) fn plan_flush(delay: i64, now: u64, started: u64) -> FlushPlan {
    let new_oldest = if delay <= 0 {
        now
    } else if delay <= REALTIME_MAXDELTA {
        now + delay.unsigned_abs()
    } else if delay.unsigned_abs() <= started {
        return FlushPlan { oldest_live: 0, take_cas_floor: true };
    } else {
        delay.unsigned_abs()
    };
    let oldest_live = new_oldest.saturating_sub(1);
    FlushPlan { oldest_live, take_cas_floor: oldest_live <= now }
}

/// memcached's `item_is_flushed()`.
pub(crate) fn is_flushed(item_time: u32, item_cas: u64, now: u32, oldest_live: u64, oldest_cas: u64) -> bool {
    if oldest_live == 0 || oldest_live > u64::from(now) {
        return false;
    }
    u64::from(item_time) <= oldest_live || (oldest_cas != 0 && item_cas != 0 && item_cas < oldest_cas)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u32 = 1_700_000_000;

    #[test]
    fn exptime_rules() {
        assert_eq!(absolute_exptime(0, NOW), 0);
        assert_eq!(absolute_exptime(-1, NOW), 1);
        assert!(is_expired(absolute_exptime(-1, NOW), NOW));
        assert_eq!(absolute_exptime(10, NOW), NOW + 10);
        assert_eq!(absolute_exptime(2_592_000, NOW), NOW + 2_592_000);
        // One past the relative window is an absolute time in 1970.
        assert_eq!(absolute_exptime(2_592_001, NOW), 2_592_001);
        assert!(is_expired(2_592_001, NOW));
        assert_eq!(absolute_exptime(i64::MAX, NOW), u32::MAX);
        assert!(!is_expired(0, NOW));
        assert!(is_expired(NOW, NOW));
        assert!(!is_expired(NOW + 1, NOW));
    }

    #[test]
    fn ttl_reporting() {
        assert_eq!(remaining_ttl(0, NOW), -1);
        assert_eq!(remaining_ttl(NOW + 30, NOW), 30);
    }

    #[test]
    fn flush_plans() {
        let now = u64::from(NOW);
        let started = now - 1000;
        assert_eq!(plan_flush(0, now, started), FlushPlan { oldest_live: now - 1, take_cas_floor: true });
        assert_eq!(plan_flush(-5, now, started), plan_flush(0, now, started));
        assert_eq!(plan_flush(10, now, started), FlushPlan { oldest_live: now + 9, take_cas_floor: false });
        // A one second delay lands on "now" and so also takes a CAS floor.
        assert_eq!(plan_flush(1, now, started), FlushPlan { oldest_live: now, take_cas_floor: true });
        assert_eq!(
            plan_flush(i64::from(NOW) + 100, now, started),
            FlushPlan { oldest_live: now + 99, take_cas_floor: false }
        );
        assert_eq!(plan_flush(3_000_000, now, started).oldest_live, 0);
    }

    #[test]
    fn flushed_predicate() {
        // No flush scheduled.
        assert!(!is_flushed(NOW, 5, NOW, 0, 0));
        // Scheduled in the future: nothing hidden yet.
        assert!(!is_flushed(NOW, 5, NOW, u64::from(NOW) + 9, 0));
        // Fired: older access times are hidden, newer ones are not.
        assert!(is_flushed(NOW - 1, 5, NOW, u64::from(NOW) - 1, 0));
        assert!(!is_flushed(NOW, 5, NOW, u64::from(NOW) - 1, 0));
        // Same second but an older CAS than the floor: hidden.
        assert!(is_flushed(NOW, 5, NOW, u64::from(NOW) - 1, 6));
        assert!(!is_flushed(NOW, 6, NOW, u64::from(NOW) - 1, 6));
    }
}
