//! How many worker threads a pinned accept loop keeps busy: the policy.
//!
//! A worker thread that is woken for a few requests at a time costs more
//! per request than one that finds many waiting: each wake-up is a sleep in
//! `epoll_wait`, a context switch, and a wake-up paid by whoever sent the
//! bytes; and each worker has its own backend connections, so spreading
//! clients over more workers also halves the batches every backend sees.
//! On a machine whose cores are busy with other work (the case of a proxy
//! beside its clients or its servers, or of a pod without a CPU limit on a
//! shared node) the extra threads gain no CPU, only that cost. So the loop
//! uses as few workers as the load needs: it starts with one, adds workers
//! when a worker is close to saturated *and* the machine has idle cores to
//! run another, and gives them back when the load would fit on fewer — at a
//! higher load per worker when the machine is contended, since fewer threads
//! then do the same work for less CPU.
//!
//! [`Policy::observe`] is pure: it sees one window of measurements and says
//! how many workers should be active. Thresholds leave a wide band between
//! adding and removing a worker, so a steady load never makes it flap.

/// CPU a worker uses (in cores, over a window) from which it needs help.
pub(crate) const BUSY: f64 = 0.85;
/// Idle cores the machine must have for another worker to be worth it.
pub(crate) const SPARE: f64 = 0.5;
/// Load per worker to aim for when spreading.
pub(crate) const TARGET: f64 = 0.7;
/// Load per worker under which fewer workers will do, when cores are idle.
pub(crate) const LIGHT: f64 = 0.6;
/// The machine counts as contended below this many idle cores...
pub(crate) const CONTENDED_IDLE: f64 = 0.25;
/// ...and then fewer workers will do up to this load per worker.
pub(crate) const CONTENDED_LOAD: f64 = 0.9;
/// Windows in a row the load must fit on fewer workers before they go.
pub(crate) const CALM_WINDOWS: u32 = 4;
/// Windows to let pass after a change before judging again (connections
/// move at their next pause between requests; the first window after a
/// change mixes both arrangements).
pub(crate) const SETTLE_WINDOWS: u32 = 2;

/// What one window measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    /// CPU each worker used over the window, in cores, by worker index.
    pub(crate) cpu: Vec<f64>,
    /// Idle cores of the machine over the window; `None` when unknown.
    pub(crate) idle: Option<f64>,
}

/// The active-worker count and the memory it needs to avoid flapping.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    workers: usize,
    active: usize,
    calm: u32,
    settle: u32,
}

impl Policy {
    /// `workers` threads, one of them active.
    pub(crate) fn new(workers: usize) -> Policy {
        Policy { workers: workers.max(1), active: 1, calm: 0, settle: 0 }
    }

    /// Workers that take connections now.
    pub(crate) fn active(&self) -> usize {
        self.active
    }

    /// Sets the active count from outside the policy (a fixed spread, or
    /// a test), and lets the next windows settle.
    pub(crate) fn force(&mut self, active: usize) {
        self.active = active.clamp(1, self.workers);
        self.calm = 0;
        self.settle = SETTLE_WINDOWS;
    }

    /// Takes one window's measurements; returns the new active count when
    /// it changes.
    pub(crate) fn observe(&mut self, w: &Window) -> Option<usize> {
        if self.settle > 0 {
            self.settle -= 1;
            return None;
        }
        let k = self.active;
        let total: f64 = w.cpu.iter().sum();
        let busiest = w.cpu.iter().take(k).copied().fold(0.0, f64::max);
        let want = if k < self.workers && busiest >= BUSY && w.idle.is_none_or(|i| i >= SPARE) {
            self.calm = 0;
            // Enough workers for the whole load at TARGET each, at least one
            // more, no more than the idle cores can run.
            let by_load = (total / TARGET).ceil() as usize;
            let by_idle = w.idle.map_or(self.workers, |i| k + (i.floor() as usize).max(1));
            by_load.max(k + 1).min(by_idle).min(self.workers)
        } else {
            let per_worker = if w.idle.is_some_and(|i| i < CONTENDED_IDLE) { CONTENDED_LOAD } else { LIGHT };
            let fits = ((total / per_worker).ceil() as usize).max(1);
            // A worker still near a full core (one heavy client, which no
            // spreading relieves) would only get busier: keep the others.
            if fits < k && busiest < BUSY {
                self.calm += 1;
                if self.calm < CALM_WINDOWS {
                    return None;
                }
                fits
            } else {
                self.calm = 0;
                return None;
            }
        };
        if want == k {
            return None;
        }
        self.calm = 0;
        self.settle = SETTLE_WINDOWS;
        self.active = want;
        Some(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(cpu: &[f64], idle: Option<f64>) -> Window {
        Window { cpu: cpu.to_vec(), idle }
    }

    /// Feeds the same window until the policy changes its mind (or gives up).
    fn settle_on(p: &mut Policy, w: &Window) -> Option<usize> {
        (0..20).find_map(|_| p.observe(w))
    }

    #[test]
    fn one_busy_worker_on_an_idle_machine_gets_help() {
        let mut p = Policy::new(2);
        assert_eq!(p.active(), 1);
        assert_eq!(p.observe(&window(&[0.95, 0.0], Some(1.0))), Some(2));
        assert_eq!(p.active(), 2);
    }

    #[test]
    fn a_busy_worker_on_a_contended_machine_stays_alone() {
        // The proxy beside its load generator and servers on two cores: the
        // worker is busy, but no core is idle for a second one.
        let mut p = Policy::new(2);
        assert_eq!(settle_on(&mut p, &window(&[0.9, 0.0], Some(0.05))), None);
        assert_eq!(p.active(), 1);
    }

    #[test]
    fn a_worker_with_room_to_spare_stays_alone() {
        let mut p = Policy::new(4);
        assert_eq!(settle_on(&mut p, &window(&[0.7, 0.0, 0.0, 0.0], Some(3.2))), None);
    }

    #[test]
    fn spreading_sizes_the_active_set_to_the_load_and_the_idle_cores() {
        // 2.5 cores of work queued on one saturated worker: four at 0.7
        // each would carry it, and the machine has the cores.
        let mut p = Policy::new(8);
        assert_eq!(p.observe(&window(&[1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0], None)), Some(4));
        // With only 1.6 idle cores, one more worker.
        let mut p = Policy::new(8);
        assert_eq!(p.observe(&window(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], Some(1.6))), Some(2));
        // Never more than there are.
        let mut p = Policy::new(2);
        assert_eq!(p.observe(&window(&[1.0, 1.0], None)), Some(2));
    }

    #[test]
    fn light_load_gives_workers_back_after_a_calm_spell() {
        let mut p = Policy::new(2);
        assert_eq!(p.observe(&window(&[0.95, 0.0], Some(1.0))), Some(2));
        let light = window(&[0.25, 0.25], Some(1.4));
        let mut seen = Vec::new();
        for _ in 0..(SETTLE_WINDOWS + CALM_WINDOWS) {
            seen.push(p.observe(&light));
        }
        assert_eq!(seen.iter().flatten().copied().collect::<Vec<_>>(), vec![1], "{seen:?}");
        assert_eq!(p.active(), 1);
    }

    #[test]
    fn a_contended_machine_consolidates_a_moderate_load() {
        // 0.8 cores over two workers with no idle core: one worker carries it
        // for less CPU.
        let mut p = Policy::new(2);
        p.active = 2;
        assert_eq!(settle_on(&mut p, &window(&[0.4, 0.4], Some(0.1))), Some(1));
        // The same load with idle cores keeps its two workers.
        let mut p = Policy::new(2);
        p.active = 2;
        assert_eq!(settle_on(&mut p, &window(&[0.4, 0.4], Some(1.1))), None);
    }

    #[test]
    fn a_steady_load_never_flaps() {
        // Just saturated on one worker, spread to two, and the same work then
        // costs a little more on two: it must stay at two.
        let mut p = Policy::new(2);
        assert_eq!(p.observe(&window(&[0.9, 0.0], Some(1.0))), Some(2));
        let after = window(&[0.5, 0.5], Some(0.9));
        assert_eq!(settle_on(&mut p, &after), None);
        // And a contended single worker below BUSY never spreads.
        let mut p = Policy::new(2);
        assert_eq!(settle_on(&mut p, &window(&[0.84, 0.0], Some(0.0))), None);
    }

    #[test]
    fn one_heavy_client_does_not_make_it_flap() {
        // One client keeps its worker at 0.95 of a core; spreading cannot
        // relieve it, and giving the other workers back would only bring the
        // spread back: once all are active it stays so.
        let mut p = Policy::new(4);
        let mut changes = Vec::new();
        for _ in 0..40 {
            let k = p.active();
            // Worker 0 holds the heavy client; the other active ones idle.
            let mut cpu = vec![0.0; 4];
            cpu[0] = 0.95;
            for c in cpu.iter_mut().take(k).skip(1) {
                *c = 0.03;
            }
            changes.extend(p.observe(&window(&cpu, Some(2.9))));
        }
        assert_eq!(changes, vec![2, 3, 4], "it spreads as far as it can, then stays");
    }

    #[test]
    fn a_brief_lull_does_not_give_workers_back() {
        let mut p = Policy::new(2);
        p.active = 2;
        let (light, busy) = (window(&[0.1, 0.1], Some(1.7)), window(&[0.5, 0.5], Some(0.9)));
        for _ in 0..5 {
            for _ in 0..CALM_WINDOWS - 1 {
                assert_eq!(p.observe(&light), None);
            }
            assert_eq!(p.observe(&busy), None);
        }
        assert_eq!(p.active(), 2);
    }

    #[test]
    fn unknown_idle_spreads_on_cpu_alone() {
        let mut p = Policy::new(2);
        assert_eq!(p.observe(&window(&[0.9, 0.0], None)), Some(2));
    }
}
