//! Health of a backend server, shared by every worker: consecutive
//! failures, whether it is out of the ring, and when an ejected server may
//! be probed again. Plain atomics, written by whichever worker saw the
//! success or failure; the pool turns an ejection or a return into a new
//! ring (`publish`). A server kept across a reload keeps its health.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Health of one backend server.
#[derive(Debug)]
pub(crate) struct Health {
    /// Consecutive failures (timeouts, refused or broken connections).
    failures: AtomicU32,
    /// Out of the ring.
    ejected: AtomicBool,
    /// When an ejected server may be probed again, in ms since `started`.
    retry_at_ms: AtomicU64,
    /// Until when (ms since `started`) a server that said goodbye is waited
    /// for: its failures do not count. 0: not restarting.
    restart_until_ms: AtomicU64,
    started: Instant,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            failures: AtomicU32::new(0),
            ejected: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            restart_until_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Health {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A request succeeded (a restarting server is back).
    pub(crate) fn succeeded(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.restart_until_ms.load(Ordering::Relaxed) != 0 {
            self.restart_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// The server said goodbye (a planned restart): for `hold` its failures
    /// do not count, so it is not ejected and its keys stay on it. Whether
    /// this call started the wait (false: already waiting, or ejected).
    pub(crate) fn hold_restart(&self, hold: Duration) -> bool {
        if self.is_ejected() {
            return false;
        }
        let until = self.now_ms() + hold.as_millis() as u64;
        self.failures.store(0, Ordering::Relaxed);
        self.restart_until_ms.swap(until, Ordering::Relaxed) == 0
    }

    /// Waiting for a server that said goodbye?
    pub(crate) fn is_restarting(&self) -> bool {
        let until = self.restart_until_ms.load(Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    /// A request failed. With `eject_at` (auto-ejection on), the failure
    /// that makes `eject_at` in a row takes the server out, to be probed
    /// after `retry_after`: then the count of failures is returned (once, by
    /// the call that ejected it).
    pub(crate) fn failed(&self, eject_at: Option<u32>, retry_after: Duration) -> Option<u32> {
        if self.is_restarting() {
            return None;
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < eject_at? || self.ejected.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.retry_at_ms.store(self.now_ms() + retry_after.as_millis() as u64, Ordering::Relaxed);
        Some(n)
    }

    /// Out of the ring at once, whatever the count of failures, to be
    /// probed after `retry_after`; whether this call took it out.
    pub(crate) fn eject_now(&self, retry_after: Duration) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.ejected.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.retry_at_ms.store(self.now_ms() + retry_after.as_millis() as u64, Ordering::Relaxed);
        true
    }

    /// Out of the ring until a probe, due now: a server that returns to
    /// its pool after it was removed, which may hold values older than
    /// those written elsewhere meanwhile, joins through the prober (and its
    /// flush, with `flush_on_return`), as an ejected server returns.
    pub(crate) fn hold_for_probe(&self) {
        self.ejected.store(true, Ordering::Release);
        self.retry_at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// In the ring?
    pub(crate) fn is_live(&self) -> bool {
        !self.is_ejected()
    }

    /// Out of the ring now?
    pub(crate) fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Acquire)
    }

    /// Did its last request succeed? (An ejected server can: with every
    /// server out, the last ring stays and still routes to it.)
    pub(crate) fn last_succeeded(&self) -> bool {
        self.failures.load(Ordering::Relaxed) == 0
    }

    /// Failed since the last success (or ejected, or restarting)?
    pub(crate) fn is_failing(&self) -> bool {
        self.failures.load(Ordering::Relaxed) != 0 || self.is_ejected() || self.is_restarting()
    }

    /// Ejected, and its retry time has come?
    pub(crate) fn due_for_retry(&self) -> bool {
        self.is_ejected() && self.retry_at_ms.load(Ordering::Relaxed) <= self.now_ms()
    }

    /// Healthy again; whether it was ejected (and so returns to the ring).
    pub(crate) fn restore(&self) -> bool {
        self.failures.store(0, Ordering::Relaxed);
        self.ejected.swap(false, Ordering::AcqRel)
    }

    /// If ejected, due for a probe now.
    pub(crate) fn retry_soon(&self) {
        if self.is_ejected() {
            self.retry_at_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// The probe failed: the next one after `retry_after`.
    pub(crate) fn postpone(&self, retry_after: Duration) {
        self.retry_at_ms.store(self.now_ms() + retry_after.as_millis() as u64, Ordering::Relaxed);
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
        let (h, other) = (Health::default(), Health::default());
        let wait = Duration::from_secs(30);
        assert_eq!(h.failed(Some(2), wait), None);
        h.succeeded();
        assert_eq!(h.failed(Some(2), wait), None);
        assert_eq!(h.failed(Some(2), wait), Some(2));
        assert_eq!(h.failed(Some(2), wait), None, "already out");
        assert!(h.is_ejected() && !h.is_live() && h.is_failing());
        assert!(!h.due_for_retry(), "retry time not yet come");
        h.retry_soon();
        assert!(h.due_for_retry());
        h.postpone(wait);
        assert!(!h.due_for_retry());
        for _ in 0..5 {
            assert_eq!(other.failed(None, wait), None);
        }
        assert!(other.is_live() && other.is_failing());
        other.retry_soon();
        assert!(!other.due_for_retry(), "only an ejected server is probed");
        assert!(h.restore());
        assert!(!h.restore());
        assert!(h.is_live() && !h.is_failing());
        // Taken out at once (an owner that missed a write), once.
        assert!(h.eject_now(wait) && !h.eject_now(wait));
        assert!(h.is_ejected() && !h.due_for_retry());
    }

    /// A goodbye keeps failures from counting until the first success or
    /// the end of the wait; an ejected server is not held.
    #[test]
    fn a_goodbye_holds_off_ejection_until_success_or_timeout() {
        let h = Health::default();
        let wait = Duration::from_secs(30);
        assert!(h.hold_restart(Duration::from_secs(60)));
        assert!(!h.hold_restart(Duration::from_secs(60)), "once");
        for _ in 0..10 {
            assert_eq!(h.failed(Some(1), wait), None);
        }
        assert!(h.is_live() && h.is_restarting() && h.is_failing());
        h.succeeded();
        assert!(!h.is_restarting() && !h.is_failing());
        // Control: without the wait the same failure ejects.
        assert_eq!(h.failed(Some(1), wait), Some(1));
        assert!(!h.hold_restart(Duration::from_secs(60)), "an ejected server is not held");
        let short = Health::default();
        assert!(short.hold_restart(Duration::ZERO));
        assert_eq!(short.failed(Some(1), wait), Some(1), "past the wait failures count");
    }
}
