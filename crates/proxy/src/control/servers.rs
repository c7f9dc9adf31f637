//! A pool's servers, one generation at a time.
//!
//! A [`Server`] is one backend as the proxy knows it: its configured
//! address, its ring name, where its name resolves to, its health and its
//! counters. A [`ServerSet`] is one generation of a pool: its config, its
//! servers in config order and the ring over them. The data path loads the
//! current set once per batch of requests; a reload publishes a new set.
//! A server that stays across a reload (same address, same ring name) is
//! the same `Server` in the new set, so its health, its counters and every
//! worker's connections to it carry over; only new servers start fresh.

use crate::control::health::Health;
use crate::control::publish::{PoolError, Publisher, placement};
use crate::control::resolve::Target;
use crate::control::stats::ServerStats;
use memshard_config::{PoolConfig, ServerAddr};
use memshard_ring::server::name_order;
use memshard_ring::{Ring, RingError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One backend server.
pub(crate) struct Server {
    /// Unique in the process: each worker's connection table is keyed by it.
    pub(crate) id: u64,
    /// `host:port` as configured (the name, not an address), or the unix
    /// socket path; for logs.
    pub(crate) addr: String,
    /// twemproxy's name for it: its ring identity and stats name.
    pub(crate) name: String,
    /// Where its name resolves to now (or its unix socket path).
    pub(crate) target: Target,
    pub(crate) health: Health,
    pub(crate) stats: ServerStats,
}

/// Server ids, never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Server {
    fn new(addr: &ServerAddr, name: String) -> Server {
        let target = match addr {
            ServerAddr::Tcp { host, port } => Target::new(host, *port),
            ServerAddr::Unix { path } => Target::unix(path),
        };
        Server {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            addr: addr.to_string(),
            name,
            target,
            health: Health::default(),
            stats: ServerStats::default(),
        }
    }
}

/// One generation of a pool: its config, its servers, the ring over them.
pub(crate) struct ServerSet {
    /// Counts the sets a pool has published, from 1.
    pub(crate) generation: u64,
    pub(crate) cfg: PoolConfig,
    /// In config order: the ring's server indices index this.
    pub(crate) servers: Vec<Arc<Server>>,
    /// Server indices in twemproxy's stats order (name length, then bytes).
    pub(crate) stats_order: Vec<usize>,
    /// `None`: no servers (a discovering pool that has found none yet).
    ring: Option<Publisher>,
}

impl ServerSet {
    /// The set `cfg` describes, generation `generation`. Servers of
    /// `previous` with the same address and ring name are carried over.
    ///
    /// A server new to the set whose name `returning` knows (it was in the
    /// pool before and was removed) is held out of the ring until the
    /// prober has probed it, and flushed it with `flush_on_return`.
    pub(crate) fn build(
        name: &str,
        cfg: &PoolConfig,
        previous: Option<&ServerSet>,
        generation: u64,
        returning: impl Fn(&str) -> bool,
    ) -> Result<ServerSet, PoolError> {
        // A pool that discovers its servers may have found none yet.
        let placed = match cfg.servers.is_empty() && cfg.extensions.discovery.is_some() {
            true => None,
            false => Some(placement(name, cfg)?),
        };
        let specs = placed.as_ref().map_or(&[][..], |p| &p.specs[..]);
        let servers: Vec<Arc<Server>> = cfg
            .servers
            .iter()
            .zip(specs)
            .map(|(s, spec)| {
                let (addr, name) = (s.addr().to_string(), spec.ring_name());
                previous
                    .and_then(|p| p.servers.iter().find(|old| old.addr == addr && old.name == name))
                    .cloned()
                    .unwrap_or_else(|| {
                        let held = cfg.extensions.flush_on_return && returning(&name);
                        let server = Server::new(s.addr(), name);
                        if held {
                            server.health.hold_for_probe();
                        }
                        Arc::new(server)
                    })
            })
            .collect();
        let mut stats_order: Vec<usize> = (0..servers.len()).collect();
        stats_order.sort_by(|&a, &b| name_order(servers[a].name.as_bytes(), servers[b].name.as_bytes()));
        let set = ServerSet {
            generation,
            cfg: cfg.clone(),
            servers,
            stats_order,
            ring: placed.map(|p| Publisher::new(p, cfg.hash_tag)),
        };
        // A carried-over server that is out of the ring stays out.
        if set.servers.iter().any(|s| s.health.is_ejected()) {
            let _ = set.rebuild();
        }
        Ok(set)
    }

    /// The ring in force now (`None`: no servers).
    pub(crate) fn ring(&self) -> Option<Arc<Ring>> {
        self.ring.as_ref().map(Publisher::current)
    }

    /// The ring over every server, live or not (`None`: no servers).
    pub(crate) fn full_ring(&self) -> Option<&Ring> {
        self.ring.as_ref().map(Publisher::all)
    }

    /// How many servers own each key: `replicas`, at most the servers.
    pub(crate) fn replicas(&self) -> usize {
        (self.cfg.extensions.replicas as usize).clamp(1, self.servers.len().max(1))
    }

    /// Whether the ring holds exactly the servers whose health says they
    /// are live (a set prepared before an ejection or a return does not).
    pub(crate) fn ring_follows_health(&self) -> bool {
        let Some(ring) = self.ring() else { return true };
        let live: Vec<usize> = (0..self.servers.len()).filter(|&i| self.servers[i].health.is_live()).collect();
        // With every server out, the ring keeps them all (see `rebuild`).
        live.is_empty() || ring.live_servers() == live.as_slice()
    }

    /// Rebuilds the ring from the servers in it that are not ejected.
    pub(crate) fn rebuild(&self) -> Result<(), RingError> {
        match &self.ring {
            Some(r) => r.rebuild(|i| self.servers[i].health.is_live()),
            None => Ok(()),
        }
    }

    /// Per-request backend timeout (`timeout`; none = wait "forever", bounded
    /// here at a day so nothing waits unboundedly).
    pub(crate) fn timeout(&self) -> Duration {
        self.cfg.timeout.unwrap_or(Duration::from_secs(86_400))
    }
}
