//! Giving the heap back after a crowd of connections leaves.
//!
//! Each connection's allocations (its task, its queues) come from the
//! worker thread's glibc arena. When thousands of clients disconnect, that
//! memory is free but glibc keeps it: it returns only the top of a heap, and
//! the freed chunks sit among live ones. So a proxy that once held ten
//! thousand clients would keep their memory for good (twemproxy's users
//! report the same of nutcracker, its issue #665). `malloc_trim(0)` hands
//! every free page of every arena back to the kernel; it is called here once
//! the number of open connections, or of those served by tasks (open and not
//! parked), has fallen well below its recent peak — a crowd left, or went idle
//! and parked — so it costs nothing while clients come and go in small
//! numbers. Both counts are watched: a crowd of parked clients that leaves at
//! once is served again (each to read its end of stream) and gone within one
//! look, so the served count alone would never show it.

use crate::shutdown::Shutdown;
use std::time::Duration;

/// How far below its peak the connection count must fall before a trim.
pub const TRIM_AFTER_CLOSES: u64 = 256;

/// How often the connection count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Watches the connection counts `counts` reports (open, served) until
/// `shutdown`; after either falls [`TRIM_AFTER_CLOSES`] below its peak since
/// the last trim, trims the heap.
pub async fn trim_after_closes(counts: impl Fn() -> [u64; 2], mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    let mut peaks = Peaks::default();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let now = counts();
        if peaks.fell(now) {
            let freed = trim();
            tracing::debug!(open = now[0], served = now[1], freed, "heap trimmed after connections closed");
        }
    }
}

/// The peaks of the connection counts since the last trim.
#[derive(Debug, Default)]
struct Peaks([u64; 2]);

impl Peaks {
    /// Takes the counts of one look; whether one fell far enough below its
    /// peak to trim (the peaks then start again from `now`).
    fn fell(&mut self, now: [u64; 2]) -> bool {
        for (peak, n) in self.0.iter_mut().zip(now) {
            *peak = (*peak).max(n);
        }
        let fell = self.0.iter().zip(now).any(|(peak, n)| peak - n >= TRIM_AFTER_CLOSES);
        if fell {
            self.0 = now;
        }
        fell
    }
}

/// Returns free heap pages to the kernel; whether any were.
#[allow(unsafe_code)]
pub fn trim() -> bool {
    // SAFETY: malloc_trim has no preconditions; it takes the allocator's own
    // locks and only releases memory that is free.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients coming and going in small numbers never trim; a crowd that
    /// leaves does, whether it was served or parked, and the peak starts
    /// again after a trim.
    #[test]
    fn a_crowd_leaving_trims_once() {
        let mut p = Peaks::default();
        for n in [10, 200, 50, 250, 100] {
            assert!(!p.fell([n, n]), "{n}");
        }
        // 9,000 parked connections (open, not served) close between looks.
        assert!(!p.fell([9_000, 3]));
        assert!(p.fell([2, 2]));
        assert!(!p.fell([2, 2]));
        // 1,000 served clients that park: open stays, served falls.
        assert!(!p.fell([1_000, 1_000]));
        assert!(p.fell([1_000, 0]));
        // Short of the threshold: no trim.
        assert!(!p.fell([1_000 + TRIM_AFTER_CLOSES - 1, 0]));
        assert!(!p.fell([1_000, 0]));
    }
}
