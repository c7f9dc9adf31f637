//! One pool's routing state: its servers, their health, where their names
//! resolve to, and the ring built from the live ones, swapped atomically
//! when a server leaves or returns.

use arc_swap::ArcSwap;
use memshard_config::{PoolConfig, ServerAddr};
use memshard_ring::server::name_order;
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::resolve::{Resolver, Target};
use crate::stats::{self, PoolStats, ServerStats};
use memshard_net::ServeStats;

/// Health of one backend server, shared by every worker.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Consecutive failures (timeouts, refused or broken connections).
    failures: AtomicU32,
    /// Out of the ring.
    ejected: AtomicBool,
    /// When an ejected server may be probed again, in ms since the pool started.
    retry_at_ms: AtomicU64,
}

/// A pool: config, servers and the current ring.
pub(crate) struct Pool {
    pub(crate) name: String,
    pub(crate) cfg: PoolConfig,
    /// `host:port` as configured (the name, not an address), or the unix
    /// socket path, by server index (config order); for logs.
    pub(crate) addrs: Vec<String>,
    /// Where each server's name resolves to now (or its unix socket path),
    /// by server index.
    pub(crate) targets: Vec<Target>,
    /// How names are looked up (shared by every pool).
    pub(crate) resolver: Arc<Resolver>,
    specs: Vec<ServerSpec>,
    health: Vec<Health>,
    /// Lock-free on the request path: readers load, ejection/return swaps.
    ring: ArcSwap<Ring>,
    hash: HashKind,
    dist: Distribution,
    started: Instant,
    /// Pool counters (stats port).
    pub(crate) stats: PoolStats,
    /// Per-server counters, by server index.
    pub(crate) server_stats: Vec<ServerStats>,
    /// Stats names (twemproxy's server names) by server index.
    pub(crate) stats_names: Vec<String>,
    /// Server indices in twemproxy's order (name length, then bytes).
    pub(crate) stats_order: Vec<usize>,
    /// Client connection counters of this pool's listener.
    pub(crate) conns: Arc<ServeStats>,
}

/// Why a pool could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The ring could not be built (no servers, bad weights, unknown names).
    #[error("pool {pool}: {source}")]
    Ring {
        /// Pool name.
        pool: String,
        /// Ring error.
        #[source]
        source: memshard_ring::RingError,
    },
}

/// Where a pool puts keys: its servers as the ring names them, and the ring
/// built from all of them (what `memshard ring` prints and the proxy starts
/// from).
#[derive(Debug, Clone)]
pub struct Placement {
    /// The servers in config order.
    pub specs: Vec<ServerSpec>,
    /// The ring over every server.
    pub ring: Ring,
    /// The pool's key hash.
    pub hash: HashKind,
    /// The pool's distribution.
    pub dist: Distribution,
}

/// Builds a pool's placement from its config (unix-socket servers named
/// `/path:`, as twemproxy names them).
pub fn placement(name: &str, cfg: &PoolConfig) -> Result<Placement, PoolError> {
    let ring_err = |source| PoolError::Ring { pool: name.to_string(), source };
    let (hash, dist) = (cfg.hash, cfg.distribution);
    let specs: Vec<ServerSpec> = cfg
        .servers
        .iter()
        .map(|s| {
            let spec = match s.addr() {
                ServerAddr::Tcp { host, port } => ServerSpec::tcp(host.clone(), *port, s.weight()),
                ServerAddr::Unix { path } => ServerSpec::unix(path.to_string_lossy().into_owned(), s.weight()),
            };
            match s.name() {
                Some(n) => spec.named(n),
                None => spec,
            }
        })
        .collect();
    let ring = Ring::build(&specs, hash, dist, cfg.hash_tag).map_err(ring_err)?;
    Ok(Placement { specs, ring, hash, dist })
}

impl Pool {
    pub(crate) fn new(name: &str, cfg: &PoolConfig, resolver: Arc<Resolver>) -> Result<Pool, PoolError> {
        let Placement { specs, ring, hash, dist } = placement(name, cfg)?;
        let mut addrs = Vec::with_capacity(cfg.servers.len());
        let mut targets = Vec::with_capacity(cfg.servers.len());
        for s in &cfg.servers {
            match s.addr() {
                ServerAddr::Tcp { host, port } => {
                    addrs.push(format!("{host}:{port}"));
                    targets.push(Target::new(host, *port));
                }
                ServerAddr::Unix { path } => {
                    addrs.push(path.display().to_string());
                    targets.push(Target::unix(path));
                }
            }
        }
        let health = (0..specs.len()).map(|_| Health::default()).collect();
        let stats_names: Vec<String> = specs.iter().map(ServerSpec::ring_name).collect();
        let mut stats_order: Vec<usize> = (0..specs.len()).collect();
        stats_order.sort_by(|&a, &b| name_order(stats_names[a].as_bytes(), stats_names[b].as_bytes()));
        Ok(Pool {
            stats: PoolStats::default(),
            server_stats: (0..specs.len()).map(|_| ServerStats::default()).collect(),
            stats_names,
            stats_order,
            conns: Arc::new(ServeStats::default()),
            name: name.to_string(),
            cfg: cfg.clone(),
            addrs,
            targets,
            resolver,
            specs,
            health,
            ring: ArcSwap::from_pointee(ring),
            hash,
            dist,
            started: Instant::now(),
        })
    }

    /// The ring in force now.
    pub(crate) fn ring(&self) -> Arc<Ring> {
        self.ring.load_full()
    }

    /// Per-request backend timeout (`timeout`; none = wait "forever", bounded
    /// here at a day so nothing waits unboundedly).
    pub(crate) fn timeout(&self) -> Duration {
        self.cfg.timeout.unwrap_or(Duration::from_secs(86_400))
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A request to server `i` succeeded.
    pub(crate) fn record_success(&self, i: usize) {
        if let Some(h) = self.health.get(i) {
            if h.failures.load(Ordering::Relaxed) != 0 {
                h.failures.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A request to server `i` failed; with `auto_eject_hosts`, the
    /// `server_failure_limit`-th consecutive failure takes it out of the ring.
    pub(crate) fn record_failure(&self, i: usize) {
        let Some(h) = self.health.get(i) else { return };
        let n = h.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.cfg.auto_eject_hosts || n < self.cfg.effective_server_failure_limit() {
            return;
        }
        if h.ejected.swap(true, Ordering::AcqRel) {
            return;
        }
        let retry = self.now_ms() + self.cfg.server_retry_timeout.as_millis() as u64;
        h.retry_at_ms.store(retry, Ordering::Relaxed);
        tracing::warn!(pool = %self.name, server = %self.addrs[i], failures = n, "ejecting server");
        stats::add(&self.stats.server_ejects, 1);
        self.server_stats[i].server_ejected_at.store(stats::now_usec(), Ordering::Relaxed);
        self.rebuild();
    }

    /// Rebuilds the ring from the servers not ejected and swaps it in. With
    /// every server ejected the last ring stays (requests then fail on it).
    fn rebuild(&self) {
        let live = |i: usize| !self.health[i].ejected.load(Ordering::Acquire);
        match Ring::build_live(&self.specs, live, self.hash, self.dist, self.cfg.hash_tag) {
            Ok(r) => self.ring.store(Arc::new(r)),
            Err(e) => tracing::warn!(pool = %self.name, error = %e, "no live servers; keeping the last ring"),
        }
    }

    /// Ejected servers whose retry time has come.
    pub(crate) fn due_for_retry(&self) -> Vec<usize> {
        let now = self.now_ms();
        (0..self.health.len())
            .filter(|&i| {
                let h = &self.health[i];
                h.ejected.load(Ordering::Acquire) && h.retry_at_ms.load(Ordering::Relaxed) <= now
            })
            .collect()
    }

    /// Puts server `i` back in the ring (after a successful probe, or at once
    /// when probes are disabled, as twemproxy does).
    pub(crate) fn restore(&self, i: usize) {
        let h = &self.health[i];
        h.failures.store(0, Ordering::Relaxed);
        if h.ejected.swap(false, Ordering::AcqRel) {
            tracing::info!(pool = %self.name, server = %self.addrs[i], "server back in the ring");
            self.rebuild();
        }
    }

    /// Is server `i` out of the ring now?
    pub(crate) fn is_ejected(&self, i: usize) -> bool {
        self.health.get(i).is_some_and(|h| h.ejected.load(Ordering::Acquire))
    }

    /// Has server `i` failed since its last success (or is it ejected)? A
    /// connection made now is then a reconnect, which looks the name up again.
    pub(crate) fn is_failing(&self, i: usize) -> bool {
        self.health.get(i).is_some_and(|h| h.failures.load(Ordering::Relaxed) != 0 || h.ejected.load(Ordering::Acquire))
    }

    /// Server `i`'s address changed: if it is ejected, probe it at the
    /// prober's next tick instead of waiting out `server_retry_timeout` — it
    /// may only have been dead at its old address.
    pub(crate) fn retry_soon(&self, i: usize) {
        if let Some(h) = self.health.get(i) {
            if h.ejected.load(Ordering::Acquire) {
                h.retry_at_ms.store(self.now_ms(), Ordering::Relaxed);
            }
        }
    }

    /// The probe failed: stay out for another `server_retry_timeout`.
    pub(crate) fn postpone(&self, i: usize) {
        let retry = self.now_ms() + self.cfg.server_retry_timeout.as_millis() as u64;
        self.health[i].retry_at_ms.store(retry, Ordering::Relaxed);
    }
}
