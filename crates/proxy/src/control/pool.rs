//! A pool as both planes see it: its config, its servers (names, where they
//! resolve to, their stats names), their health, its published ring and
//! its counters. The control plane writes it (`control`), the data path
//! reads it per request (`data`); the decisions that touch several parts —
//! a failure that ejects a server and so rebuilds the ring — are made here.

use crate::control::health::Healths;
use crate::control::publish::{Placement, PoolError, Publisher, placement};
use crate::control::resolve::{Resolver, Target};
use crate::control::stats::{self, PoolStats, ServerStats};
use memshard_config::{PoolConfig, ServerAddr};
use memshard_net::ServeStats;
use memshard_ring::server::name_order;
use memshard_ring::{Ring, ServerSpec};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
    health: Healths,
    ring: Publisher,
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

impl Pool {
    pub(crate) fn new(name: &str, cfg: &PoolConfig, resolver: Arc<Resolver>) -> Result<Pool, PoolError> {
        let placed: Placement = placement(name, cfg)?;
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
        let n = placed.specs.len();
        let stats_names: Vec<String> = placed.specs.iter().map(ServerSpec::ring_name).collect();
        let mut stats_order: Vec<usize> = (0..n).collect();
        stats_order.sort_by(|&a, &b| name_order(stats_names[a].as_bytes(), stats_names[b].as_bytes()));
        Ok(Pool {
            stats: PoolStats::default(),
            server_stats: (0..n).map(|_| ServerStats::default()).collect(),
            stats_names,
            stats_order,
            conns: Arc::new(ServeStats::default()),
            name: name.to_string(),
            cfg: cfg.clone(),
            addrs,
            targets,
            resolver,
            health: Healths::new(n),
            ring: Publisher::new(placed, cfg.hash_tag),
        })
    }

    /// The ring in force now.
    pub(crate) fn ring(&self) -> Arc<Ring> {
        self.ring.current()
    }

    /// Per-request backend timeout (`timeout`; none = wait "forever", bounded
    /// here at a day so nothing waits unboundedly).
    pub(crate) fn timeout(&self) -> Duration {
        self.cfg.timeout.unwrap_or(Duration::from_secs(86_400))
    }

    /// A request to server `i` succeeded.
    pub(crate) fn record_success(&self, i: usize) {
        self.health.succeeded(i);
    }

    /// A request to server `i` failed; with `auto_eject_hosts`, the
    /// `server_failure_limit`-th consecutive failure takes it out of the ring.
    pub(crate) fn record_failure(&self, i: usize) {
        let eject_at = self.cfg.auto_eject_hosts.then(|| self.cfg.effective_server_failure_limit());
        let Some(n) = self.health.failed(i, eject_at, self.cfg.server_retry_timeout) else { return };
        tracing::warn!(pool = %self.name, server = %self.addrs[i], failures = n, "ejecting server");
        stats::add(&self.stats.server_ejects, 1);
        self.server_stats[i].server_ejected_at.store(stats::now_usec(), Ordering::Relaxed);
        self.rebuild();
    }

    /// Rebuilds the ring from the servers not ejected and swaps it in. With
    /// every server ejected the last ring stays (requests then fail on it).
    fn rebuild(&self) {
        if let Err(e) = self.ring.rebuild(|i| self.health.is_live(i)) {
            tracing::warn!(pool = %self.name, error = %e, "no live servers; keeping the last ring");
        }
    }

    /// Ejected servers whose retry time has come.
    pub(crate) fn due_for_retry(&self) -> Vec<usize> {
        self.health.due_for_retry()
    }

    /// Puts server `i` back in the ring (after a successful probe, or at once
    /// when probes are disabled, as twemproxy does).
    pub(crate) fn restore(&self, i: usize) {
        if self.health.restore(i) {
            tracing::info!(pool = %self.name, server = %self.addrs[i], "server back in the ring");
            self.rebuild();
        }
    }

    /// Is server `i` out of the ring now?
    pub(crate) fn is_ejected(&self, i: usize) -> bool {
        self.health.is_ejected(i)
    }

    /// Has server `i` failed since its last success (or is it ejected)? A
    /// connection made now is then a reconnect, which looks the name up again.
    pub(crate) fn is_failing(&self, i: usize) -> bool {
        self.health.is_failing(i)
    }

    /// Server `i`'s address changed: if it is ejected, probe it at the
    /// prober's next tick instead of waiting out `server_retry_timeout` — it
    /// may only have been dead at its old address.
    pub(crate) fn retry_soon(&self, i: usize) {
        self.health.retry_soon(i);
    }

    /// The probe failed: stay out for another `server_retry_timeout`.
    pub(crate) fn postpone(&self, i: usize) {
        self.health.postpone(i, self.cfg.server_retry_timeout);
    }
}
