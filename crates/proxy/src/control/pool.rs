//! A pool as both planes see it: its name, its current server set (config,
//! servers, ring; see `servers`), its counters and its listener's
//! connection counts. The control plane publishes new sets (a reload) and
//! changes health; the data path loads the set per batch of requests. The
//! decisions that touch several parts — a failure that ejects a server and
//! so rebuilds the ring — are made here.

use crate::control::hotkeys::HotKeys;
use crate::control::publish::PoolError;
use crate::control::resolve::Resolver;
use crate::control::servers::{Server, ServerSet};
use crate::control::stats::{self, PoolStats};
use arc_swap::ArcSwap;
use memshard_config::PoolConfig;
use memshard_net::ServeStats;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most names of removed servers a pool remembers.
const MAX_REMOVED: usize = 10_000;

/// A pool: its current server set, its counters.
pub(crate) struct Pool {
    pub(crate) name: String,
    /// How names are looked up (shared by every pool).
    pub(crate) resolver: Arc<Resolver>,
    /// Lock-free on the request path: readers load, a reload swaps.
    set: ArcSwap<ServerSet>,
    /// The generation of the last set prepared (every set gets its own).
    generations: AtomicU64,
    /// Ring names of servers removed from the pool since it started: one
    /// that comes back (a reload, a discovery) may hold values older than
    /// those written elsewhere meanwhile.
    removed: Mutex<HashSet<String>>,
    /// Pool counters (stats port).
    pub(crate) stats: PoolStats,
    /// Client connection counters of this pool's listener.
    pub(crate) conns: Arc<ServeStats>,
    /// The most requested keys, when the admin port is on (see `hotkeys`).
    pub(crate) hot_keys: Option<HotKeys>,
}

impl Pool {
    pub(crate) fn new(name: &str, cfg: &PoolConfig, resolver: Arc<Resolver>) -> Result<Pool, PoolError> {
        let set = ServerSet::build(name, cfg, None, 1, |_| false)?;
        Ok(Pool {
            name: name.to_string(),
            resolver,
            set: ArcSwap::from_pointee(set),
            generations: AtomicU64::new(1),
            removed: Mutex::default(),
            stats: PoolStats::default(),
            conns: Arc::new(ServeStats::default()),
            hot_keys: None,
        })
    }

    /// The server set `cfg` describes, as the next generation after the one
    /// in force (its servers that stay carried over); nothing changes until
    /// it is [published](Pool::publish).
    /// The pool, tracking its hot keys when `on`.
    pub(crate) fn with_hot_keys(mut self, on: bool) -> Pool {
        self.hot_keys = on.then(HotKeys::default);
        self
    }

    pub(crate) fn prepare(&self, cfg: &PoolConfig) -> Result<ServerSet, PoolError> {
        let now = self.set.load();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let removed = self.removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let returning = |name: &str| removed.contains(name);
        // A discovering pool (whose file lists no server) keeps the servers
        // it has now — found earlier, or listed before the file turned to
        // discovery — until its next answer replaces them: a reload never
        // leaves it without servers in between.
        let keeping;
        let cfg = match cfg.servers.is_empty() && cfg.extensions.discovery.is_some() {
            true => {
                keeping = PoolConfig { servers: now.cfg.servers.clone(), ..cfg.clone() };
                &keeping
            }
            false => cfg,
        };
        ServerSet::build(&self.name, cfg, Some(&now), generation, returning)
    }

    /// Puts `set` in force: requests routed from the next batch on use it.
    /// The ring is rebuilt from the servers' health as it is now (an
    /// ejection or a return since `set` was prepared counts).
    pub(crate) fn publish(&self, mut set: ServerSet) {
        // The ring in force until now settles the change: a moved key is
        // also read from and written to its owner there for a while, which
        // may be a server this change removes (kept after the ring's ones).
        let current = self.set.load_full();
        if let (Some(previous), true) = (current.ring(), set.settles()) {
            if !current.places_like(&set) {
                // Every server a key may still be read from or written to
                // during the settle: the ring's, and those of a settle under way.
                let now = tokio::time::Instant::now();
                let earlier = current.settling_rings(now);
                let mut referenced: Vec<Arc<Server>> = current.servers[..current.ring_len].to_vec();
                for (_, map) in &earlier {
                    for &i in map {
                        if let Some(s) = current.servers.get(i) {
                            if !referenced.iter().any(|r| r.id == s.id) {
                                referenced.push(s.clone());
                            }
                        }
                    }
                }
                let leaving: Vec<Arc<Server>> =
                    referenced.into_iter().filter(|s| !set.servers.iter().any(|n| n.id == s.id)).collect();
                set.keep_leaving(leaving);
                // An index of the current set as one of the new set.
                let to_new =
                    |i: usize| current.servers.get(i).and_then(|s| set.servers.iter().position(|n| n.id == s.id));
                let map_of = |m: &[usize]| m.iter().map(|&i| to_new(i).unwrap_or(usize::MAX)).collect::<Vec<_>>();
                let map = map_of(&(0..current.ring_len).collect::<Vec<_>>());
                let earlier = earlier.iter().map(|(r, m)| (r.clone(), map_of(m))).collect();
                set.start_settle(previous, map, earlier);
            }
        }
        drop(current);
        let old = self.set.swap(Arc::new(set));
        let new = self.set.load();
        if !new.ring_follows_health() {
            // Part of this change: its settle (from the ring before) stands.
            if let Err(e) = new.rebuild() {
                tracing::warn!(pool = %self.name, error = %e, "no live servers; keeping the last ring");
            }
        }
        // The ring's servers (those kept for the settle come after them).
        let (old_ring, new_ring) = (&old.servers[..old.ring_len], &new.servers[..new.ring_len]);
        let kept = new_ring.iter().filter(|s| old_ring.iter().any(|o| o.id == s.id)).count();
        {
            let mut removed = self.removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for s in old_ring.iter().filter(|s| !new_ring.iter().any(|n| n.id == s.id)) {
                removed.insert(s.name.clone());
            }
            // Bounded: past it, a server removed long ago returns unheld.
            if removed.len() > MAX_REMOVED {
                removed.clear();
            }
            for s in new_ring.iter() {
                removed.remove(&s.name);
            }
        }
        tracing::info!(
            pool = %self.name, generation = new.generation, servers = new_ring.len(), kept,
            added = new_ring.len() - kept, removed = old_ring.len() - kept, "server set published"
        );
    }

    /// The server set in force now.
    pub(crate) fn servers(&self) -> Arc<ServerSet> {
        self.set.load_full()
    }

    /// A request to `server` succeeded.
    pub(crate) fn record_success(&self, server: &Server) {
        server.health.succeeded();
    }

    /// `server` said goodbye (`memshard server -e` stopping: a planned
    /// restart, it returns with its items): for `server_restart_timeout` it
    /// keeps its keys and its failures do not count, so nothing meant for it
    /// is written elsewhere and its items are still the latest when it is
    /// back. A replicated pool, or a timeout of 0, treats it as a crash.
    pub(crate) fn record_goodbye(&self, server: &Server) {
        let set = self.set.load();
        let hold = set.cfg.extensions.server_restart_timeout;
        if set.cfg.extensions.replicas > 1 || hold.is_zero() {
            return;
        }
        if server.health.hold_restart(hold) {
            tracing::info!(pool = %self.name, server = %server.addr, wait_ms = hold.as_millis() as u64,
                "server restarting: its keys wait for it (failing fast) instead of moving");
        }
    }

    /// A request to `server` failed; with `auto_eject_hosts`, the
    /// `server_failure_limit`-th consecutive failure takes it out of the ring.
    pub(crate) fn record_failure(&self, server: &Server) {
        let set = self.set.load();
        let eject_at = set.cfg.auto_eject_hosts.then(|| set.cfg.effective_server_failure_limit());
        let Some(n) = server.health.failed(eject_at, set.cfg.server_retry_timeout) else { return };
        tracing::warn!(pool = %self.name, server = %server.addr, failures = n, "ejecting server");
        stats::add(&self.stats.server_ejects, 1);
        stats::add(&server.stats.ejections, 1);
        server.stats.server_ejected_at.store(stats::now_usec(), Ordering::Relaxed);
        drop(set);
        // The set in force now: a reload may have published one meanwhile.
        self.rebuild(&self.set.load());
    }

    /// A replicated pool's owner missed a write another owner took (or may
    /// hold a value the others do not): out of the ring at once, whatever
    /// `auto_eject_hosts` and the failure limit say, until the prober has
    /// probed it — and flushed it, with `flush_on_return` — so it never
    /// serves the value it kept.
    pub(crate) fn eject_stale(&self, server: &Server) {
        let set = self.set.load();
        if !server.health.eject_now(set.cfg.server_retry_timeout) {
            return;
        }
        tracing::warn!(pool = %self.name, server = %server.addr, "ejecting an owner that missed a replicated write");
        stats::add(&self.stats.server_ejects, 1);
        stats::add(&self.stats.replica_ejects, 1);
        server.stats.server_ejected_at.store(stats::now_usec(), Ordering::Relaxed);
        drop(set);
        self.rebuild(&self.set.load());
    }

    /// Rebuilds `set`'s ring from its servers not ejected and swaps it in.
    /// With every server ejected the last ring stays (requests then fail on it).
    fn rebuild(&self, set: &ServerSet) {
        let previous = set.ring();
        match set.rebuild() {
            Ok(()) => {
                // A change that moved keys settles; one that did not (a
                // removed server's health) leaves a settle under way alone.
                let now = set.ring();
                if let (Some(previous), Some(now)) = (previous, now) {
                    if previous.live_servers() != now.live_servers() {
                        let earlier = set.settling_rings(tokio::time::Instant::now());
                        set.start_settle(previous, (0..set.ring_len).collect(), earlier);
                    }
                }
            }
            Err(e) => tracing::warn!(pool = %self.name, error = %e, "no live servers; keeping the last ring"),
        }
    }

    /// Puts `server` back in the ring (after a successful probe, or at once
    /// when probes are disabled, as twemproxy does).
    pub(crate) fn restore(&self, server: &Server) {
        if server.health.restore() {
            tracing::info!(pool = %self.name, server = %server.addr, "server back in the ring");
            self.rebuild(&self.set.load());
        }
    }

    /// The probe failed: stay out for another `server_retry_timeout`.
    pub(crate) fn postpone(&self, server: &Server) {
        server.health.postpone(self.set.load().cfg.server_retry_timeout);
    }
}
