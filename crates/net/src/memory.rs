//! Giving the heap back after a crowd of connections leaves.
//!
//! Each connection's allocations (its task, its queues) come from the
//! worker thread's glibc arena. When thousands of clients disconnect, that
//! memory is free but glibc keeps it: it returns only the top of a heap, and
//! the freed chunks sit among live ones. So a proxy that once held ten
//! thousand clients would keep their memory for good (twemproxy's users
//! report the same of nutcracker, its issue #665). `malloc_trim(0)` hands
//! every free page of every arena back to the kernel; it is called here once
//! the number of connections served by tasks (open and not parked) has fallen
//! well below its recent peak — a crowd left, or went idle and parked — so it
//! costs nothing while clients come and go in small numbers.

use crate::shutdown::Shutdown;
use std::time::Duration;

/// How far below its peak the connection count must fall before a trim.
pub const TRIM_AFTER_CLOSES: u64 = 256;

/// How often the connection count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Watches the number `active` reports until `shutdown`; after a fall of
/// [`TRIM_AFTER_CLOSES`] from the peak since the last trim, trims the heap.
pub async fn trim_after_closes(active: impl Fn() -> u64, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    let mut peak = 0;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let now = active();
        peak = peak.max(now);
        if peak - now >= TRIM_AFTER_CLOSES {
            let freed = trim();
            tracing::debug!(connections = now, was = peak, freed, "heap trimmed after connections closed");
            peak = now;
        }
    }
}

/// Returns free heap pages to the kernel; whether any were.
#[allow(unsafe_code)]
pub fn trim() -> bool {
    // SAFETY: malloc_trim has no preconditions; it takes the allocator's own
    // locks and only releases memory that is free.
    unsafe { libc::malloc_trim(0) == 1 }
}
