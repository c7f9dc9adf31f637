//! What the accept loop knows of its workers: how many connections each
//! holds, how many it is asked to hand back, and how much CPU each thread
//! and the whole machine used (read from `/proc`, so no system call is
//! added to a worker's request path).

use crate::balance::Window;
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One worker thread as the accept loop sees it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Connections handed to the worker and not finished or moved yet.
    pub(crate) conns: AtomicUsize,
    /// Connections the worker is asked to hand back, at their next pause
    /// between requests.
    pub(crate) shed: AtomicUsize,
    /// `/proc/<pid>/task/<tid>/schedstat` of the worker thread.
    stat: OnceLock<PathBuf>,
    /// Rung by the worker once per [`PARK_TICK`]: connections idle for
    /// two rings in a row park (see `parking`).
    pub(crate) park_tick: tokio::sync::Notify,
}

/// How often a worker asks its idle connections to park.
pub const PARK_TICK: Duration = Duration::from_secs(1);

impl Slot {
    /// Called on the worker thread once it runs: remembers where its CPU
    /// time can be read.
    pub(crate) fn register_thread(&self) {
        if let Ok(link) = std::fs::read_link("/proc/thread-self") {
            let _ = self.stat.set(PathBuf::from("/proc").join(link).join("schedstat"));
        }
    }

    /// Nanoseconds the thread has run, when known.
    fn cpu_ns(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.stat.get()?).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

/// A connection's seat on its worker: asks whether the connection should
/// move to another worker. Call it only between requests, when the
/// connection holds nothing a move would lose.
#[derive(Debug, Clone)]
pub struct Seat {
    slots: Arc<[Slot]>,
    worker: usize,
    /// Set by [`Seat::park`]: the stream handed back is to be parked here,
    /// not moved.
    parking: Rc<Cell<bool>>,
    /// The connection comes back from the parking lot (it was counted as
    /// open when it first came).
    resumed: bool,
    /// Just accepted: no handler served it before.
    fresh: bool,
    /// Stays on this worker for good: never asked to move or park.
    pinned: bool,
}

impl Seat {
    pub(crate) fn new(slots: Arc<[Slot]>, worker: usize, resumed: bool) -> Seat {
        Seat { slots, worker, parking: Rc::default(), resumed, fresh: false, pinned: false }
    }

    pub(crate) fn with_fresh(mut self, fresh: bool) -> Seat {
        self.fresh = fresh;
        self
    }

    /// Whether the connection was just accepted: no handler served it
    /// before (not moved from another worker, not back from parking). A
    /// handler that opens a connection with something (a TLS handshake)
    /// does it only then.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// This seat, for a connection that cannot leave its worker (a TLS
    /// session lives in the handler, not in the socket): it is never asked
    /// to move and never parks.
    pub fn pinned(mut self) -> Seat {
        self.pinned = true;
        self
    }

    /// Whether the client comes back from the parking lot rather than
    /// connecting (or moving) now: a handler that counts open connections
    /// counted it already, and does not count it out when it parks.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Completes at the worker's next park tick (every [`PARK_TICK`]). A
    /// handler waiting for its client's next request waits for this too;
    /// after two ticks with nothing read it may [`park`](Seat::park).
    pub fn park_tick(&self) -> impl std::future::Future<Output = ()> + '_ {
        let slot = self.slots.get(self.worker).filter(|_| !self.pinned);
        async move {
            match slot {
                Some(s) => s.park_tick.notified().await,
                None => std::future::pending().await,
            }
        }
    }

    /// Says the stream the handler is about to hand back is idle: the worker
    /// parks it (a bare socket, off the runtime) and serves it with a new
    /// handler when the client sends again. Call it only between requests,
    /// as [`should_move`](Seat::should_move), and return the stream at once.
    pub fn park(&self) {
        self.parking.set(true);
    }

    /// Whether [`park`](Seat::park) was called.
    pub(crate) fn parked(&self) -> bool {
        self.parking.get()
    }

    /// Whether this connection should leave its worker now (a `true` is
    /// a promise to go: the handler returns its stream).
    pub fn should_move(&self) -> bool {
        if self.pinned {
            return false;
        }
        let Some(slot) = self.slots.get(self.worker) else { return false };
        // The usual answer costs one load of a line nobody writes.
        slot.shed.load(Ordering::Relaxed) > 0
            && slot.shed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }

    /// The worker this connection runs on.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

/// Turns successive readings of the workers' and the machine's CPU time
/// into windows for the policy.
pub(crate) struct Meter {
    last: Option<Reading>,
    /// Whether to read the machine's idle time too.
    machine: bool,
    /// Readings in a row that missed a worker's CPU time.
    misses: u32,
}

struct Reading {
    at: Instant,
    threads: Vec<Option<u64>>,
    idle: Option<u64>,
}

impl Meter {
    pub(crate) fn new(machine: bool) -> Meter {
        Meter { last: None, machine, misses: 0 }
    }

    /// Whether the workers' CPU time cannot be read here (no
    /// `/proc/thread-self`): then nothing can be judged.
    pub(crate) fn blind(&self) -> bool {
        self.misses >= 2
    }

    /// The window since the previous call; `None` on the first call, or
    /// when a worker's CPU time cannot be read (then nothing is judged).
    pub(crate) fn window(&mut self, slots: &[Slot]) -> Option<Window> {
        let idle = if self.machine { idle_ticks() } else { None };
        let now = Reading { at: Instant::now(), threads: slots.iter().map(Slot::cpu_ns).collect(), idle };
        self.misses = if now.threads.iter().any(Option::is_none) { self.misses.saturating_add(1) } else { 0 };
        let last = self.last.replace(now);
        let (last, now) = (last?, self.last.as_ref()?);
        let secs = now.at.duration_since(last.at).as_secs_f64();
        if secs < Duration::from_millis(10).as_secs_f64() {
            return None;
        }
        let mut cpu = Vec::with_capacity(slots.len());
        for (a, b) in last.threads.iter().zip(&now.threads) {
            cpu.push(b.zip(*a).map(|(b, a)| b.saturating_sub(a) as f64 / 1e9 / secs)?);
        }
        let idle = now.idle.zip(last.idle).map(|(b, a)| b.saturating_sub(a) as f64 / USER_HZ / secs);
        Some(Window { cpu, idle })
    }
}

/// Idle + iowait time of every CPU so far, in clock ticks (first line of
/// `/proc/stat`).
fn idle_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let nums: Vec<u64> = fields.take(5).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    Some(nums.get(3)? + nums.get(4)?)
}

/// `USER_HZ`: the unit of `/proc/stat`, 100 on every Linux architecture
/// the kernel exports it for (the ABI fixed it regardless of `HZ`).
const USER_HZ: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_hands_back_exactly_what_was_asked() {
        let slots: Arc<[Slot]> = (0..2).map(|_| Slot::default()).collect();
        let (a, b) = (Seat::new(slots.clone(), 0, false), Seat::new(slots.clone(), 1, false));
        assert!(!a.should_move());
        slots[0].shed.store(2, Ordering::Relaxed);
        assert!(a.should_move());
        assert!(a.should_move());
        assert!(!a.should_move(), "only two were asked for");
        assert!(!b.should_move(), "the other worker was asked for none");
    }

    #[test]
    fn a_meter_that_cannot_read_a_workers_cpu_says_so() {
        // A worker that never registered (no /proc/thread-self): no window,
        // and after two readings the meter owns up to being blind.
        let slots: Arc<[Slot]> = Arc::from(vec![Slot::default()]);
        let mut meter = Meter::new(false);
        assert!(meter.window(&slots).is_none());
        assert!(!meter.blind());
        assert!(meter.window(&slots).is_none());
        assert!(meter.blind());
    }

    #[test]
    fn the_meter_reads_this_threads_cpu_and_the_machines_idle_time() {
        if !std::path::Path::new("/proc/thread-self").exists() {
            eprintln!("SKIP: no /proc/thread-self (not Linux)");
            return;
        }
        let slots: Arc<[Slot]> = Arc::from(vec![Slot::default()]);
        slots[0].register_thread();
        let mut meter = Meter::new(true);
        assert!(meter.window(&slots).is_none(), "the first reading has nothing to compare with");
        // Burn about 60 ms of this thread's CPU.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let w = meter.window(&slots).expect("a window");
        assert_eq!(w.cpu.len(), 1);
        // Other tests share the cores: a spinning thread gets some of one.
        assert!(w.cpu[0] > 0.05 && w.cpu[0] <= 1.05, "a spinning thread used {} of a core", w.cpu[0]);
        let idle = w.idle.expect("/proc/stat readable");
        let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
        let cores = stat.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count() as f64;
        assert!((0.0..=cores + 0.5).contains(&idle), "idle {idle} of {cores} cores");
    }
}
