//! The open loop's clock: one OS thread that hands each scheduled request to
//! a connection at its scheduled time.
//!
//! Why a thread and not tokio timers: tokio's timer wheel has 1 ms ticks and
//! rounds deadlines up, so a request due at t fires 1–2 ms late, and since
//! open-loop latency runs from the scheduled time, that lateness would be
//! reported as server latency (a loopback `get` takes ~50 µs). The pacer
//! sleeps with `std::thread::sleep` (nanosleep, tens of µs of slack), then
//! sends every arrival that is due on the connections' channels, which wakes
//! the connection tasks. Lateness that remains shows in the report's send lag.

use crate::config::Arrivals;
use crate::open_loop::Arrival;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// The schedule to produce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Total arrivals per second.
    pub(crate) rate: f64,
    pub(crate) arrivals: Arrivals,
    /// First arrival (start of the warmup).
    pub(crate) start: Instant,
    /// Arrivals from here on are measured.
    pub(crate) measure_from: Instant,
    /// No arrival at or after this.
    pub(crate) end: Instant,
    /// Stop after this many measured arrivals.
    pub(crate) quota: Option<u64>,
    pub(crate) seed: u64,
}

impl Plan {
    /// The arrival times, in seconds after `start`, in order.
    fn offsets(&self) -> impl Iterator<Item = f64> {
        let (rate, poisson) = (self.rate, self.arrivals == Arrivals::Poisson);
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let (mut n, mut t) = (0u64, 0.0f64);
        std::iter::from_fn(move || {
            let at = t;
            n += 1;
            t = if poisson {
                // Exponential gap by inversion; 1 - u is in (0, 1], so ln is finite.
                t - (1.0 - rng.random::<f64>()).ln() / rate
            } else {
                // From n, not by summing gaps, so rounding does not drift.
                n as f64 / rate
            };
            Some(at)
        })
    }
}

/// Starts the pacer. It returns after the last arrival of the plan, or as
/// soon as every connection has gone away.
pub(crate) fn spawn(plan: Plan, conns: Vec<UnboundedSender<Arrival>>) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("memshard-pacer".to_owned()).spawn(move || pace(plan, &conns))
}

fn pace(plan: Plan, conns: &[UnboundedSender<Arrival>]) {
    let mut measured = 0u64;
    let mut next_conn = 0usize;
    let mut clock = Sleeper::default();
    for offset in plan.offsets() {
        let Some(intended) = plan.start.checked_add(Duration::from_secs_f64(offset)) else { return };
        if intended >= plan.end || plan.quota.is_some_and(|q| measured >= q) {
            return;
        }
        clock.wait_until(intended);
        let record = intended >= plan.measure_from;
        let arrival = Arrival { intended: tokio::time::Instant::from_std(intended), record };
        // Round-robin, skipping connections that died, so the offered rate
        // holds as long as one connection is alive.
        let mut delivered = false;
        for _ in 0..conns.len() {
            let tx = &conns[next_conn];
            next_conn = (next_conn + 1) % conns.len();
            if tx.send(arrival).is_ok() {
                delivered = true;
                break;
            }
        }
        if !delivered {
            return;
        }
        measured += u64::from(record);
    }
}

/// Due times closer than this are busy-waited for rather than slept for: a
/// sleep this short would still cost a full oversleep.
const MAX_SPIN: Duration = Duration::from_micros(5);

/// Cap on one observed oversleep when updating the lead, so that one
/// preemption (hundreds of µs, on a busy machine) does not inflate it.
const MAX_OVERSLEEP: Duration = Duration::from_micros(200);

/// Waits until an instant, never before it, with better precision than a
/// plain sleep and without spinning away a core.
///
/// Linux wakes a sleeping thread tens of µs late (the default timer slack is
/// 50 µs, plus the wake-up itself: ~75 µs measured on a 2-vCPU VM, steady
/// to within ~5 µs). So when the due time is further than `lead` away, this
/// sleeps until `lead` before it (`lead` tracks the observed oversleep) and
/// spins the few µs left. When it is closer than `lead`, spinning would burn
/// up to a whole gap between arrivals, so it sleeps and wakes late: at such
/// rates (above ~12 k/s) several arrivals fall due during each oversleep and
/// go out together, and their lateness shows as send lag.
#[derive(Debug)]
struct Sleeper {
    lead: Duration,
}

impl Default for Sleeper {
    fn default() -> Self {
        Sleeper { lead: Duration::from_micros(80) }
    }
}

impl Sleeper {
    fn wait_until(&mut self, due: Instant) {
        let start = Instant::now();
        let Some(left) = due.checked_duration_since(start) else { return };
        if left > MAX_SPIN {
            let asked = if left > self.lead { left - self.lead } else { left };
            thread::sleep(asked);
            let over = start.elapsed().saturating_sub(asked).min(MAX_OVERSLEEP);
            // Moving average over ~8 sleeps, plus a margin so that most
            // wake-ups land just before the due time rather than after it.
            self.lead = (self.lead * 7 + over + Duration::from_micros(5)) / 8;
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(arrivals: Arrivals) -> Plan {
        let start = Instant::now();
        Plan {
            rate: 1000.0,
            arrivals,
            start,
            measure_from: start,
            end: start + Duration::from_secs(10),
            quota: None,
            seed: 1,
        }
    }

    #[test]
    fn sleeper_never_wakes_early() {
        // Early would make a request go out before its scheduled time and
        // shave that off its latency; late is measured (send lag).
        let mut s = Sleeper::default();
        for us in [0, 1, 10, 30, 100, 500, 2000] {
            let due = Instant::now() + Duration::from_micros(us);
            s.wait_until(due);
            assert!(Instant::now() >= due, "{us} us");
        }
        assert!(s.lead <= MAX_OVERSLEEP + Duration::from_micros(80), "{:?}", s.lead);
    }

    #[test]
    fn uniform_offsets_are_exact() {
        let o: Vec<f64> = plan(Arrivals::Uniform).offsets().take(10_001).collect();
        assert_eq!(o[0], 0.0);
        assert!((o[10_000] - 10.0).abs() < 1e-9, "{}", o[10_000]);
    }

    #[test]
    fn poisson_offsets_have_the_mean_rate() {
        let o: Vec<f64> = plan(Arrivals::Poisson).offsets().take(100_001).collect();
        assert!(o.windows(2).all(|w| w[1] >= w[0]));
        // 100 000 gaps of mean 1 ms: the sum's standard deviation is 0.3 %.
        assert!((o[100_000] - 100.0).abs() < 2.0, "{}", o[100_000]);
    }

    #[test]
    fn delivers_round_robin_and_honours_the_quota() {
        let mut p = plan(Arrivals::Uniform);
        (p.rate, p.quota) = (100_000.0, Some(10));
        let (a, mut ra) = tokio::sync::mpsc::unbounded_channel();
        let (b, mut rb) = tokio::sync::mpsc::unbounded_channel();
        spawn(p, vec![a, b]).unwrap().join().unwrap();
        let (mut na, mut nb) = (0, 0);
        while ra.try_recv().is_ok() {
            na += 1;
        }
        while rb.try_recv().is_ok() {
            nb += 1;
        }
        assert_eq!((na, nb), (5, 5));
        // With every connection gone the pacer stops at once.
        let (c, rc) = tokio::sync::mpsc::unbounded_channel();
        drop(rc);
        p.quota = None;
        spawn(p, vec![c]).unwrap().join().unwrap();
    }
}
