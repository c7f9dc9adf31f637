//! Thread-per-core serving: one acceptor hands each connection to one of N
//! worker threads, each running its own single-threaded runtime, and the
//! connection stays on that thread (memcached's model) — for its whole life
//! with [`Spread::All`], or until the acceptor asks its worker to hand it
//! back, between two requests, to another one ([`Spread::Adaptive`]: as
//! few workers active as the load needs, see `balance`).
//!
//! Pinning matters twice: no cross-thread task migration on the request path,
//! and every allocation a connection makes comes from its thread's allocator
//! arena, so memory freed by evictions is reused instead of fragmenting across
//! arenas. A move is a rare, whole hand-over (the stream leaves one reactor
//! and joins another), never a task hopping threads mid-request.

use crate::balance::Policy;
use crate::limit::{Open, ServeConfig, ServeStats, admit};
use crate::load::{Meter, PARK_TICK, Seat, Slot};
use crate::{Accept, Shutdown};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

/// How often an adaptive loop measures its workers and decides.
const WINDOW: Duration = Duration::from_millis(250);

/// How a pinned accept loop spreads connections over its worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Every worker takes connections, in turn, and keeps them for their
    /// whole life (memcached's model).
    All,
    /// As few workers as the load needs (see the policy in `balance`): a new
    /// connection goes to the active worker holding the fewest, and when the
    /// active set grows or shrinks, connections move between workers at
    /// their next pause between requests.
    Adaptive,
    /// The active set alternates between one worker and all of them every
    /// period, moving connections each time: for exercising moves in tests.
    #[doc(hidden)]
    Alternate(Duration),
    /// [`Spread::Adaptive`] judging by the workers' CPU alone, as if the
    /// machine always had idle cores: for tests that must not depend on
    /// what else the machine runs.
    #[doc(hidden)]
    AdaptiveOnCpu,
}

/// One accepted connection on its way to a worker, with the guards that keep
/// the connection counters and the limit right however it ends.
struct Job<D> {
    stream: D,
    permit: OwnedSemaphorePermit,
    open: Open,
    /// Just accepted (not moved from another worker): see [`Seat::fresh`].
    fresh: bool,
}

/// A connection a worker handed back, and which worker it left.
type Moved<D> = (Job<D>, usize);

/// Like [`serve`](crate::serve), but runs connection handlers on `threads`
/// dedicated worker threads (each a current-thread runtime), assigning
/// connections round-robin. Returns after shutdown, once every worker drained
/// (bounded by `drain_timeout`).
pub async fn serve_pinned<L, F, Fut>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    shutdown: Shutdown,
    threads: usize,
    handler: F,
) -> std::io::Result<()>
where
    L: Accept,
    F: Fn(L::Stream, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // A `Send` future runs as a local task just as well: one worker loop
    // serves both kinds of handler.
    serve_pinned_local(listener, cfg, stats, shutdown, threads, handler).await
}

/// Like [`serve_pinned`], for handlers whose futures are not `Send`: each
/// worker runs its connections as local tasks (a `LocalSet`), so a handler
/// and the tasks it spawns with `tokio::task::spawn_local` may share
/// `Rc`/`RefCell` state with each other — no locks or atomics between tasks
/// that never leave their thread.
pub async fn serve_pinned_local<L, F, Fut>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    shutdown: Shutdown,
    threads: usize,
    handler: F,
) -> std::io::Result<()>
where
    L: Accept,
    F: Fn(L::Stream, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let handler = move |stream: L::Stream, sd: Shutdown, _seat: Seat| {
        let fut = handler(stream, sd);
        async move {
            fut.await;
            None
        }
    };
    serve_balanced_local(listener, cfg, stats, shutdown, threads, Spread::All, handler).await
}

/// Like [`serve_pinned_local`], with connections spread as `spread` says.
/// The handler gets a [`Seat`]; when [`Seat::should_move`] says so at a
/// pause between requests, it returns its stream (`Some`), and the
/// connection goes on, as a new handler, on another worker. A handler that
/// ends the connection returns `None`.
pub async fn serve_balanced_local<L, F, Fut>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    shutdown: Shutdown,
    threads: usize,
    spread: Spread,
    handler: F,
) -> std::io::Result<()>
where
    L: Accept,
    F: Fn(L::Stream, Shutdown, Seat) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<L::Stream>> + 'static,
{
    let threads = threads.max(1);
    let handler = Arc::new(handler);
    let slots: Arc<[Slot]> = (0..threads).map(|_| Slot::default()).collect();
    let (moves_tx, moves_rx) = mpsc::unbounded_channel::<Moved<L::Detached>>();
    let mut senders = Vec::with_capacity(threads);
    let mut joins = Vec::with_capacity(threads);
    for i in 0..threads {
        let (tx, rx) = mpsc::unbounded_channel::<Job<L::Detached>>();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let w = Worker { idx: i, slots: slots.clone(), moves: moves_tx.clone(), handler: handler.clone() };
        let (sd, drain) = (shutdown.clone(), cfg.drain_timeout);
        let body = move || {
            w.slots[i].register_thread();
            let local = tokio::task::LocalSet::new();
            rt.block_on(local.run_until(w.run::<L, Fut>(rx, sd, drain)));
        };
        let join = std::thread::Builder::new().name(format!("memshard-worker-{i}")).spawn(body)?;
        senders.push(tx);
        joins.push(join);
    }
    drop(moves_tx);
    let set = WorkerSet::new(senders, slots.clone(), spread, stats.clone());
    // After a crowd of clients leaves, the memory their connections held
    // goes back to the kernel (see `memory`).
    let counts = {
        let (slots, stats) = (slots.clone(), stats.clone());
        move || {
            let served = slots.iter().map(|s| s.conns.load(Ordering::Relaxed) as u64).sum::<u64>();
            [stats.curr_connections.load(Ordering::Relaxed), served]
        }
    };
    let trimmer = tokio::spawn(crate::memory::trim_after_closes(counts, shutdown.clone()));
    accept_loop(listener, cfg, stats, shutdown, set, moves_rx).await;
    trimmer.abort();
    let waited = tokio::task::spawn_blocking(move || {
        for j in joins {
            let _ = j.join();
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!("a worker thread panicked");
    }
    Ok(())
}

/// A worker's parking lot, watched by the worker's reactor.
type Parking<D> = Rc<AsyncFd<crate::parking::ParkingLot<Job<D>>>>;

/// A parking lot registered with this thread's reactor.
#[allow(unsafe_code)]
fn parking<D>() -> std::io::Result<Parking<D>> {
    let lot = crate::parking::ParkingLot::new()?;
    // SAFETY: the descriptor is the lot's own epoll descriptor, opened by
    // `ParkingLot::new` and closed only when the lot drops; the `AsyncFd`
    // owns the lot, so it stays open and the same for the AsyncFd's life.
    let watch = unsafe { AsyncFd::register_with_interest(lot, Interest::READABLE) };
    watch.map(Rc::new).map_err(std::io::Error::from)
}

/// Completes when some parked connection may be readable (never without a
/// parking lot).
async fn parked_ready<D>(parking: Option<&Parking<D>>) {
    let Some(p) = parking else { return std::future::pending().await };
    // Cleared before the lot is drained: an event after the drain raises
    // the descriptor again.
    if let Ok(mut guard) = p.readable().await {
        guard.clear_ready();
    }
}

/// The workers as the accept loop drives them: where each connection goes,
/// and which workers are active.
struct WorkerSet<D> {
    senders: Vec<mpsc::UnboundedSender<Job<D>>>,
    slots: Arc<[Slot]>,
    spread: Spread,
    policy: Policy,
    meter: Meter,
    stats: Arc<ServeStats>,
    /// Round-robin cursor (and tie-breaker among equally loaded workers).
    next: usize,
}

impl<D> WorkerSet<D> {
    fn new(
        senders: Vec<mpsc::UnboundedSender<Job<D>>>,
        slots: Arc<[Slot]>,
        spread: Spread,
        stats: Arc<ServeStats>,
    ) -> Self {
        let mut policy = Policy::new(senders.len());
        if spread == Spread::All {
            policy.force(senders.len());
        }
        stats.active_workers.store(policy.active() as u64, Ordering::Relaxed);
        let meter = Meter::new(spread != Spread::AdaptiveOnCpu);
        WorkerSet { senders, slots, spread, policy, meter, stats, next: 0 }
    }

    /// The worker for a connection: in turn over all of them, or the active
    /// one holding the fewest connections (not `leaving`, the worker a
    /// moving connection comes from, unless it is the only active one).
    fn place(&mut self, leaving: Option<usize>) -> usize {
        let n = self.senders.len();
        let turn = self.next;
        self.next = turn.wrapping_add(1);
        if self.spread == Spread::All {
            return turn % n;
        }
        let active = self.policy.active();
        let start = turn % active;
        let candidates = (0..active).map(|j| (start + j) % active);
        let best = |skip: Option<usize>| {
            candidates.clone().filter(|&i| Some(i) != skip).min_by_key(|&i| self.slots[i].conns.load(Ordering::Relaxed))
        };
        best(leaving).or_else(|| best(None)).unwrap_or(0)
    }

    /// Hands a connection to a worker.
    fn hand(&mut self, job: Job<D>, leaving: Option<usize>) {
        let i = self.place(leaving);
        self.slots[i].conns.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(job)) = self.senders[i].send(job) {
            self.slots[i].conns.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("worker thread {i} is gone");
            drop(job);
        }
    }

    /// One window passed: measure, decide, and ask workers to hand back the
    /// connections that must move.
    fn tick(&mut self) {
        let want = match self.spread {
            Spread::All => return,
            Spread::Alternate(_) => {
                let n = self.senders.len();
                let want = if self.policy.active() == 1 { n } else { 1 };
                self.policy.force(want);
                want
            }
            Spread::Adaptive | Spread::AdaptiveOnCpu => match self.meter.window(&self.slots) {
                Some(window) => {
                    let before = self.policy.active();
                    let Some(want) = self.policy.observe(&window) else { return };
                    tracing::info!(
                        cpu = ?window.cpu.iter().map(|c| (c * 100.0).round() / 100.0).collect::<Vec<_>>(),
                        idle_cores = ?window.idle.map(|i| (i * 100.0).round() / 100.0),
                        "active workers: {before} -> {want}"
                    );
                    want
                }
                // Without the workers' CPU time nothing can be judged: use
                // every worker, as `Spread::All` does.
                None if self.meter.blind() => {
                    tracing::warn!(
                        "cannot read the worker threads' CPU time (/proc/thread-self): every worker stays active"
                    );
                    let n = self.senders.len();
                    self.spread = Spread::All;
                    self.policy.force(n);
                    n
                }
                None => return,
            },
        };
        self.stats.active_workers.store(want as u64, Ordering::Relaxed);
        self.rebalance(want);
    }

    /// Sets what each worker hands back for `active` workers to carry the
    /// connections: a worker no longer active, every connection (those still
    /// on their way to it too); an active one, what it holds beyond an even
    /// share. Connections that stay idle do not move until they are used.
    fn rebalance(&self, active: usize) {
        let total: usize = self.slots.iter().map(|s| s.conns.load(Ordering::Relaxed)).sum();
        let share = total.div_ceil(active.max(1));
        for (i, slot) in self.slots.iter().enumerate() {
            let shed = if i >= active { usize::MAX } else { slot.conns.load(Ordering::Relaxed).saturating_sub(share) };
            slot.shed.store(shed, Ordering::Relaxed);
        }
    }
}

/// Accepts and hands connections out until shutdown, moves connections
/// workers hand back, and (when adaptive) decides each window how many
/// workers are active; then closes the job queues, which tells the workers
/// to drain and stop.
async fn accept_loop<L: Accept>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    mut shutdown: Shutdown,
    mut set: WorkerSet<L::Detached>,
    mut moves: mpsc::UnboundedReceiver<Moved<L::Detached>>,
) {
    let period = match set.spread {
        Spread::Alternate(every) => every,
        _ => WINDOW,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let mut rejects = JoinSet::new();
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept_stream() => r,
            Some((job, from)) = moves.recv() => {
                stats.moved_connections.fetch_add(1, Ordering::Relaxed);
                set.hand(job, Some(from));
                continue;
            }
            _ = ticks.tick(), if set.spread != Spread::All && set.senders.len() > 1 => {
                set.tick();
                continue;
            }
            Some(_) = rejects.join_next(), if !rejects.is_empty() => continue,
        };
        let Some((stream, permit, open)) =
            admit::<L>(accepted, &mut backoff, &cfg, &permits, &stats, &mut rejects).await
        else {
            continue;
        };
        // Leave this runtime's reactor; the worker registers it with its own.
        let Ok(std_stream) = L::detach(stream) else { continue };
        set.hand(Job { stream: std_stream, permit, open, fresh: true }, None);
    }
    drop(listener);
    // Closing the channels tells the workers to drain and stop; connections
    // on their way from one worker to another are closed with `moves`.
    drop(set);
}

/// One worker thread's share of the loop.
struct Worker<F, D> {
    idx: usize,
    slots: Arc<[Slot]>,
    moves: mpsc::UnboundedSender<Moved<D>>,
    handler: Arc<F>,
}

impl<F, D: Send + AsRawFd + 'static> Worker<F, D> {
    /// Every connection is a local task; one that hands its stream back
    /// goes to the accept loop to move. On shutdown (the job channel
    /// closes) waits up to `drain` for the connections, then closes the
    /// rest. Must run inside a `LocalSet`.
    async fn run<L, Fut>(self, mut rx: mpsc::UnboundedReceiver<Job<D>>, shutdown: Shutdown, drain: Duration)
    where
        L: Accept<Detached = D>,
        F: Fn(L::Stream, Shutdown, Seat) -> Fut,
        Fut: Future<Output = Option<L::Stream>> + 'static,
    {
        let mut tasks = JoinSet::new();
        // Idle connections handed back to park (see `parking`); a worker
        // whose epoll set cannot be made serves without parking.
        let lot = parking::<D>().map_err(|e| tracing::warn!(error = %e, "idle connections will not be parked")).ok();
        let mut tick = tokio::time::interval(PARK_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = rx.recv() => {
                    let Some(job) = job else { break };
                    self.spawn::<L, Fut>(&mut tasks, job, &shutdown, lot.as_ref(), false);
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tick.tick(), if lot.is_some() => {
                    self.slots[self.idx].park_tick.notify_waiters();
                }
                () = parked_ready(lot.as_ref()) => {
                    let Some(parking) = &lot else { continue };
                    let woken = parking.get_ref().ready();
                    for job in woken {
                        self.slots[self.idx].conns.fetch_add(1, Ordering::Relaxed);
                        self.spawn::<L, Fut>(&mut tasks, job, &shutdown, Some(parking), true);
                    }
                }
            }
        }
        // Parked connections are idle: they close at once.
        if let Some(parking) = &lot {
            drop(parking.get_ref().drain());
        }
        let drained = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(remaining = tasks.len(), "drain timed out; closing remaining connections");
            tasks.shutdown().await;
        }
    }

    /// Serves `job` with a new handler task: until it ends, moves (its
    /// stream goes to the accept loop) or parks (into `lot`).
    fn spawn<L, Fut>(
        &self,
        tasks: &mut JoinSet<()>,
        job: Job<D>,
        shutdown: &Shutdown,
        lot: Option<&Parking<D>>,
        resumed: bool,
    ) where
        L: Accept<Detached = D>,
        F: Fn(L::Stream, Shutdown, Seat) -> Fut,
        Fut: Future<Output = Option<L::Stream>> + 'static,
    {
        let Ok(stream) = L::attach(job.stream) else {
            self.slots[self.idx].conns.fetch_sub(1, Ordering::Relaxed);
            return;
        };
        let seat = Seat::new(self.slots.clone(), self.idx, resumed).with_fresh(job.fresh && !resumed);
        let fut = (self.handler)(stream, shutdown.clone(), seat.clone());
        let (permit, open) = (job.permit, job.open);
        let (slots, idx, moves, sd) = (self.slots.clone(), self.idx, self.moves.clone(), shutdown.clone());
        let lot = lot.cloned();
        tasks.spawn_local(async move {
            let kept = fut.await;
            slots[idx].conns.fetch_sub(1, Ordering::Relaxed);
            let Some(stream) = kept.filter(|_| !sd.is_triggered()) else { return };
            // Off this thread's reactor: to the parking lot, or to the
            // accept loop and its next worker.
            let Ok(stream) = L::detach(stream) else { return };
            let job = Job { stream, permit, open, fresh: false };
            match lot {
                Some(lot) if seat.parked() => {
                    let fd = job.stream.as_raw_fd();
                    // A socket the epoll set refuses is closed (dropped).
                    let _ = lot.get_ref().park(fd, job);
                }
                _ => {
                    let _ = moves.send((job, idx));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShutdownTrigger;
    use std::cell::Cell;
    use std::rc::Rc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Handlers holding `Rc` state, shared with a local task they spawn,
    /// serve connections and drain on shutdown.
    #[tokio::test]
    async fn local_handlers_share_rc_state_with_their_tasks() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (trigger, sd) = ShutdownTrigger::new();
        let stats = Arc::new(ServeStats::default());
        let serving = tokio::spawn(serve_pinned_local(
            l,
            ServeConfig::default(),
            stats,
            sd,
            2,
            |mut s: TcpStream, _| async move {
                let seen = Rc::new(Cell::new(0u8));
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).await.is_ok() {
                    let (seen2, byte) = (seen.clone(), b[0]);
                    tokio::task::spawn_local(async move { seen2.set(byte) }).await.expect("local task");
                    if s.write_all(&[seen.get() + 1]).await.is_err() {
                        return;
                    }
                }
            },
        ));
        for i in 0..4u8 {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            c.write_all(&[i]).await.expect("write");
            let mut r = [0u8; 1];
            c.read_exact(&mut r).await.expect("read");
            assert_eq!(r[0], i + 1);
        }
        trigger.trigger();
        serving.await.expect("joined").expect("served");
    }
}
