//! A pool as both planes see it: its name, its current server set (config,
//! servers, ring; see `servers`), its counters and its listener's
//! connection counts. The control plane publishes new sets (a reload) and
//! changes health; the data path loads the set per batch of requests. The
//! decisions that touch several parts — a failure that ejects a server and
//! so rebuilds the ring — are made here.

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
        })
    }

    /// The server set `cfg` describes, as the next generation after the one
    /// in force (its servers that stay carried over); nothing changes until
    /// it is [published](Pool::publish).
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
    pub(crate) fn publish(&self, set: ServerSet) {
        let old = self.set.swap(Arc::new(set));
        let new = self.set.load();
        if !new.ring_follows_health() {
            self.rebuild(&new);
        }
        let kept = new.servers.iter().filter(|s| old.servers.iter().any(|o| o.id == s.id)).count();
        {
            let mut removed = self.removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for s in old.servers.iter().filter(|s| !new.servers.iter().any(|n| n.id == s.id)) {
                removed.insert(s.name.clone());
            }
            // Bounded: past it, a server removed long ago returns unheld.
            if removed.len() > MAX_REMOVED {
                removed.clear();
            }
            for s in new.servers.iter() {
                removed.remove(&s.name);
            }
        }
        tracing::info!(
            pool = %self.name, generation = new.generation, servers = new.servers.len(), kept,
            added = new.servers.len() - kept, removed = old.servers.len() - kept, "server set published"
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

    /// A request to `server` failed; with `auto_eject_hosts`, the
    /// `server_failure_limit`-th consecutive failure takes it out of the ring.
    pub(crate) fn record_failure(&self, server: &Server) {
        let set = self.set.load();
        let eject_at = set.cfg.auto_eject_hosts.then(|| set.cfg.effective_server_failure_limit());
        let Some(n) = server.health.failed(eject_at, set.cfg.server_retry_timeout) else { return };
        tracing::warn!(pool = %self.name, server = %server.addr, failures = n, "ejecting server");
        stats::add(&self.stats.server_ejects, 1);
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
        if let Err(e) = set.rebuild() {
            tracing::warn!(pool = %self.name, error = %e, "no live servers; keeping the last ring");
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
