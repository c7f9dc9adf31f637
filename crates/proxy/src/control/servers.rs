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
use crate::control::tls::PoolTls;
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

/// Most earlier rings a settle keeps (changes in quick succession).
const MAX_SETTLING_RINGS: usize = 4;

/// A ring change being settled: the rings in force before it (newest
/// first: a change during a settle keeps the earlier ones), and until when a
/// moved key is also read from and written to its owners there.
pub(crate) struct Settle {
    /// Each earlier ring, with its server indices as indices of this set's
    /// servers.
    rings: Vec<(Arc<Ring>, Vec<usize>)>,
    until: tokio::time::Instant,
    /// Its end was followed by a sweep of the keys servers no longer own.
    swept: std::sync::atomic::AtomicBool,
}

impl Settle {
    /// `key`'s owners on the earlier rings, newest first, as indices of the
    /// set's servers (repeats possible).
    pub(crate) fn previous_owners<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        self.rings.iter().filter_map(move |(ring, map)| map.get(ring.server_for(key)).copied())
    }
}

/// One generation of a pool: its config, its servers, the ring over them.
pub(crate) struct ServerSet {
    /// Counts the sets a pool has published, from 1.
    pub(crate) generation: u64,
    pub(crate) cfg: PoolConfig,
    /// In config order: the ring's server indices index this. After the
    /// first `ring_len`, the servers a reload removed, kept while the change
    /// settles (a moved key's previous owner may be one of them).
    pub(crate) servers: Vec<Arc<Server>>,
    /// How many of `servers` the ring places keys on.
    pub(crate) ring_len: usize,
    /// The ring change being settled, if any (see [`Settle`]).
    settle: arc_swap::ArcSwapOption<Settle>,
    /// Server indices in twemproxy's stats order (name length, then bytes).
    pub(crate) stats_order: Vec<usize>,
    /// `None`: no servers (a discovering pool that has found none yet).
    ring: Option<Publisher>,
    /// TLS towards the pool's clients and servers (see `tls`).
    pub(crate) tls: PoolTls,
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
                // Only servers of the previous ring carry over: one it kept
                // only for its settle was removed, and returns as such.
                previous
                    .and_then(|p| p.servers[..p.ring_len].iter().find(|old| old.addr == addr && old.name == name))
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
        let tls = PoolTls::build(name, cfg, previous.map(|p| &p.tls))?;
        let ring_len = servers.len();
        let mut stats_order: Vec<usize> = (0..servers.len()).collect();
        stats_order.sort_by(|&a, &b| name_order(servers[a].name.as_bytes(), servers[b].name.as_bytes()));
        let set = ServerSet {
            generation,
            cfg: cfg.clone(),
            servers,
            ring_len,
            settle: arc_swap::ArcSwapOption::empty(),
            stats_order,
            ring: placed.map(|p| Publisher::new(p, cfg.hash_tag)),
            tls,
        };
        // A carried-over server that is out of the ring stays out.
        if set.servers.iter().any(|s| s.health.is_ejected()) {
            let _ = set.rebuild();
        }
        Ok(set)
    }

    /// What a connection to `server` speaks: the pool's TLS towards its
    /// servers and the name to check, or `None` (plaintext).
    pub(crate) fn tls_for(&self, server: &Server) -> Option<(Arc<memshard_tls::ClientTls>, String)> {
        self.tls.servers.as_ref().map(|tls| (tls.clone(), self.tls.name_for(server.target.host())))
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
        (self.cfg.extensions.replicas as usize).clamp(1, self.ring_len.max(1))
    }

    /// Whether the ring holds exactly the servers whose health says they
    /// are live (a set prepared before an ejection or a return does not).
    pub(crate) fn ring_follows_health(&self) -> bool {
        let Some(ring) = self.ring() else { return true };
        let live: Vec<usize> = (0..self.ring_len).filter(|&i| self.servers[i].health.is_live()).collect();
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

    /// The ring change being settled at `now`, if any.
    pub(crate) fn settling(&self, now: tokio::time::Instant) -> Option<Arc<Settle>> {
        self.settle.load_full().filter(|s| now < s.until)
    }

    /// Whether a settle ended by `now` and nobody swept after it yet; the
    /// caller that gets `true` sweeps.
    pub(crate) fn settle_ended(&self, now: tokio::time::Instant) -> bool {
        self.settle.load().as_ref().is_some_and(|s| now >= s.until && !s.swept.swap(true, Ordering::AcqRel))
    }

    /// From now on, for `ring_change_settle`, a key whose owner differs on
    /// `previous` (a ring whose server `i` is this set's server `map[i]`), or
    /// on the earlier rings of a settle still under way (`earlier`, mapped
    /// the same way), also goes to its owners there.
    pub(crate) fn start_settle(&self, previous: Arc<Ring>, map: Vec<usize>, earlier: Vec<(Arc<Ring>, Vec<usize>)>) {
        if !self.settles() {
            return;
        }
        let until = tokio::time::Instant::now() + self.cfg.extensions.ring_change_settle;
        let mut rings = vec![(previous, map)];
        rings.extend(earlier.into_iter().take(MAX_SETTLING_RINGS - 1));
        let swept = std::sync::atomic::AtomicBool::new(false);
        self.settle.store(Some(Arc::new(Settle { rings, until, swept })));
    }

    /// The earlier rings of the settle under way at `now`, for a change of
    /// this same set (a health change): its maps stay valid.
    pub(crate) fn settling_rings(&self, now: tokio::time::Instant) -> Vec<(Arc<Ring>, Vec<usize>)> {
        self.settling(now).map(|s| s.rings.clone()).unwrap_or_default()
    }

    /// Whether `other` places every key where this set does: the same
    /// servers in the same order, the same ones live, the same rules.
    pub(crate) fn places_like(&self, other: &ServerSet) -> bool {
        let ids = |s: &ServerSet| s.servers[..s.ring_len].iter().map(|x| x.id).collect::<Vec<_>>();
        let live = |s: &ServerSet| s.ring().map(|r| r.live_servers().to_vec());
        let rules = |s: &ServerSet| (s.cfg.hash, s.cfg.distribution, s.cfg.hash_tag);
        ids(self) == ids(other)
            && live(self) == live(other)
            && rules(self) == rules(other)
            && self.cfg.servers.iter().map(|x| x.as_written()).eq(other.cfg.servers.iter().map(|x| x.as_written()))
    }

    /// Whether a ring change of this set settles: `ring_change_settle` set,
    /// one owner per key, and a placement that names a key's owner (not
    /// `distribution: random`).
    pub(crate) fn settles(&self) -> bool {
        !self.cfg.extensions.ring_change_settle.is_zero()
            && self.replicas() == 1
            && self.cfg.distribution != memshard_config::Distribution::Random
    }

    /// Appends `leaving` (servers a reload removed) after the ring's
    /// servers, for the settle; returns where each landed.
    pub(crate) fn keep_leaving(&mut self, leaving: Vec<Arc<Server>>) -> Vec<usize> {
        let first = self.servers.len();
        self.servers.extend(leaving);
        (first..self.servers.len()).collect()
    }

    /// Per-request backend timeout (`timeout`; none = wait "forever", bounded
    /// here at a day so nothing waits unboundedly).
    pub(crate) fn timeout(&self) -> Duration {
        self.cfg.timeout.unwrap_or(Duration::from_secs(86_400))
    }
}
