//! Health of a pool's servers, shared by every worker: consecutive
//! failures, whether a server is out of the ring, and when an ejected
//! server may be probed again. Plain atomics, written by whichever worker
//! saw the success or failure; the pool turns an ejection or a return into
//! a new ring (`publish`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Health of one backend server.
#[derive(Debug, Default)]
struct Health {
    /// Consecutive failures (timeouts, refused or broken connections).
    failures: AtomicU32,
    /// Out of the ring.
    ejected: AtomicBool,
    /// When an ejected server may be probed again, in ms since `started`.
    retry_at_ms: AtomicU64,
}

/// The health of every server of a pool, by server index.
#[derive(Debug)]
pub(crate) struct Healths {
    servers: Vec<Health>,
    started: Instant,
}

impl Healths {
    /// `n` healthy servers.
    pub(crate) fn new(n: usize) -> Healths {
        Healths { servers: (0..n).map(|_| Health::default()).collect(), started: Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A request to server `i` succeeded.
    pub(crate) fn succeeded(&self, i: usize) {
        if let Some(h) = self.servers.get(i) {
            if h.failures.load(Ordering::Relaxed) != 0 {
                h.failures.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A request to server `i` failed. With `eject_at` (auto-ejection on),
    /// the failure that makes `eject_at` in a row takes the server out, to
    /// be probed after `retry_after`: then the count of failures is
    /// returned (once, by the call that ejected it).
    pub(crate) fn failed(&self, i: usize, eject_at: Option<u32>, retry_after: Duration) -> Option<u32> {
        let h = self.servers.get(i)?;
        let n = h.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < eject_at? || h.ejected.swap(true, Ordering::AcqRel) {
            return None;
        }
        h.retry_at_ms.store(self.now_ms() + retry_after.as_millis() as u64, Ordering::Relaxed);
        Some(n)
    }

    /// Is server `i` in the ring?
    pub(crate) fn is_live(&self, i: usize) -> bool {
        !self.is_ejected(i)
    }

    /// Is server `i` out of the ring now?
    pub(crate) fn is_ejected(&self, i: usize) -> bool {
        self.servers.get(i).is_some_and(|h| h.ejected.load(Ordering::Acquire))
    }

    /// Has server `i` failed since its last success (or is it ejected)?
    pub(crate) fn is_failing(&self, i: usize) -> bool {
        self.servers
            .get(i)
            .is_some_and(|h| h.failures.load(Ordering::Relaxed) != 0 || h.ejected.load(Ordering::Acquire))
    }

    /// Ejected servers whose retry time has come.
    pub(crate) fn due_for_retry(&self) -> Vec<usize> {
        let now = self.now_ms();
        (0..self.servers.len())
            .filter(|&i| {
                let h = &self.servers[i];
                h.ejected.load(Ordering::Acquire) && h.retry_at_ms.load(Ordering::Relaxed) <= now
            })
            .collect()
    }

    /// Server `i` is healthy again; whether it was ejected (and so returns
    /// to the ring).
    pub(crate) fn restore(&self, i: usize) -> bool {
        let Some(h) = self.servers.get(i) else { return false };
        h.failures.store(0, Ordering::Relaxed);
        h.ejected.swap(false, Ordering::AcqRel)
    }

    /// If server `i` is ejected, makes it due for a probe now.
    pub(crate) fn retry_soon(&self, i: usize) {
        if let Some(h) = self.servers.get(i) {
            if h.ejected.load(Ordering::Acquire) {
                h.retry_at_ms.store(self.now_ms(), Ordering::Relaxed);
            }
        }
    }

    /// Server `i`'s probe failed: the next one after `retry_after`.
    pub(crate) fn postpone(&self, i: usize, retry_after: Duration) {
        if let Some(h) = self.servers.get(i) {
            h.retry_at_ms.store(self.now_ms() + retry_after.as_millis() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limit-th failure in a row ejects, once; a success in between
    /// starts the count again; without a limit nothing is ejected; a
    /// restore brings it back and says so once.
    #[test]
    fn failures_in_a_row_eject_once() {
        let h = Healths::new(2);
        let wait = Duration::from_secs(30);
        assert_eq!(h.failed(0, Some(2), wait), None);
        h.succeeded(0);
        assert_eq!(h.failed(0, Some(2), wait), None);
        assert_eq!(h.failed(0, Some(2), wait), Some(2));
        assert_eq!(h.failed(0, Some(2), wait), None, "already out");
        assert!(h.is_ejected(0) && !h.is_live(0) && h.is_failing(0));
        assert!(h.due_for_retry().is_empty(), "retry time not yet come");
        h.retry_soon(0);
        assert_eq!(h.due_for_retry(), vec![0]);
        h.postpone(0, wait);
        assert!(h.due_for_retry().is_empty());
        for _ in 0..5 {
            assert_eq!(h.failed(1, None, wait), None);
        }
        assert!(h.is_live(1) && h.is_failing(1));
        assert!(h.restore(0));
        assert!(!h.restore(0));
        assert!(h.is_live(0) && !h.is_failing(0));
        assert_eq!(h.failed(7, Some(1), wait), None, "no such server");
    }
}
