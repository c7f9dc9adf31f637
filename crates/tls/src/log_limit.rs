//! At most a few log lines per second for events a peer can cause at will
//! (failed handshakes): a flood of bad clients must not become a flood of
//! log lines. What is not logged is counted and said with the next line.

use std::sync::atomic::{AtomicU64, Ordering};

/// Lines allowed per second.
const PER_SECOND: u64 = 10;

/// A per-second budget of log lines.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    /// The current second (unix) in the high 32 bits, lines used in it below.
    window: AtomicU64,
    /// Lines dropped since the last one logged.
    dropped: AtomicU64,
}

impl LogLimit {
    /// `Some(dropped before this one)` when a line may be logged now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut cur = self.window.load(Ordering::Relaxed);
        loop {
            let (sec, used) = (cur >> 32, cur & 0xffff_ffff);
            let next =
                if sec != now & 0xffff_ffff { ((now & 0xffff_ffff) << 32) | 1 } else { (sec << 32) | (used + 1) };
            if sec == now & 0xffff_ffff && used >= PER_SECOND {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            match self.window.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(self.dropped.swap(0, Ordering::Relaxed)),
                Err(seen) => cur = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_to_the_budget_and_the_rest_counted() {
        let l = LogLimit::default();
        let allowed = (0..100).filter(|_| l.allow().is_some()).count() as u64;
        // The burst may straddle a second boundary: at most two budgets.
        assert!((PER_SECOND..=2 * PER_SECOND).contains(&allowed), "{allowed}");
        assert!(l.dropped.load(Ordering::Relaxed) > 0 || allowed == 100);
    }
}
