//! [`Ring`]: an immutable key → server table built from one server set.

use std::fmt;
use std::str::FromStr;

use crate::ketama::{self, Member};
use crate::modula::Modula;
use crate::server::name_order;
use crate::{HashKind, HashTag, RingError, ServerSpec, random};

pub use crate::ketama::Point;

/// twemproxy's `distribution:` algorithms. [`Distribution::default`] is twemproxy's default,
/// ketama.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Distribution {
    /// Consistent hashing on a continuum of MD5 points (libmemcached/libketama compatible).
    #[default]
    Ketama,
    /// `hash % total_weight` over the servers repeated by weight. Changing the live set moves
    /// almost every key.
    Modula,
    /// A uniformly random live server per request; the key and the weights are ignored.
    Random,
}

impl Distribution {
    /// The three distributions.
    pub const ALL: [Distribution; 3] = [Distribution::Ketama, Distribution::Modula, Distribution::Random];

    /// The name used in twemproxy's YAML (`distribution: ketama`).
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }
}

impl FromStr for Distribution {
    type Err = RingError;

    /// Parses a twemproxy `distribution:` value; exact and case-sensitive, like twemproxy.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Distribution::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| RingError::UnknownDistribution(s.to_owned()))
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The lookup table of one distribution.
#[derive(Clone)]
enum Table {
    /// Sorted continuum.
    Ketama(Vec<Point>),
    /// Weighted runs of live servers.
    Modula(Modula),
    /// Live servers (caller indices) in server order.
    Random(Vec<u32>),
}

/// Where a pool's keys go: an immutable table built from one server set, as twemproxy builds it
/// after every change of the live set.
///
/// Build a new `Ring` whenever the set changes (ejection, return, reload, DNS change) and swap it
/// in atomically, e.g. behind an `Arc`. Lookups take `&self`, allocate nothing and lock nothing.
///
/// Server indices, in and out, are always positions in the slice given to the constructor; the
/// ring sorts the servers into twemproxy's order internally and maps back.
#[derive(Clone)]
pub struct Ring {
    hash: HashKind,
    distribution: Distribution,
    tag: Option<HashTag>,
    /// Live servers (caller indices) in twemproxy's server order.
    live: Vec<usize>,
    table: Table,
}

impl Ring {
    /// Builds the ring of a pool whose servers are all live, in config order.
    ///
    /// # Errors
    ///
    /// [`RingError::NoServers`] for an empty list, and the configuration errors twemproxy
    /// rejects: a zero weight, two servers with the same identity ([`ServerSpec::ring_name`]),
    /// weights adding up past `u32::MAX`.
    pub fn build(
        servers: &[ServerSpec],
        hash: HashKind,
        distribution: Distribution,
        hash_tag: Option<[u8; 2]>,
    ) -> Result<Ring, RingError> {
        Ring::build_live(servers, |_| true, hash, distribution, hash_tag)
    }

    /// Builds the ring of a pool in which only the servers for which `is_live(index)` is true
    /// take keys, as twemproxy does with `auto_eject_hosts: true` after ejecting a server: the
    /// table is rebuilt from the live servers alone, so ketama recomputes every point count from
    /// the live count and live total weight, modula recomputes `hash % live_total_weight`, and
    /// random draws among the live servers. Returned indices stay positions in `servers`.
    ///
    /// # Errors
    ///
    /// As [`Ring::build`], with [`RingError::NoServers`] also when no server is live (twemproxy
    /// then answers `SERVER_ERROR Connection refused`). Zero weights and duplicate identities are
    /// errors even among ejected servers, since they make the configuration invalid.
    pub fn build_live(
        servers: &[ServerSpec],
        is_live: impl Fn(usize) -> bool,
        hash: HashKind,
        distribution: Distribution,
        hash_tag: Option<[u8; 2]>,
    ) -> Result<Ring, RingError> {
        if u32::try_from(servers.len()).is_err() {
            return Err(RingError::TooManyServers(servers.len()));
        }
        let names: Vec<String> = servers.iter().map(ServerSpec::ring_name).collect();
        if let Some(index) = servers.iter().position(|s| s.weight == 0) {
            return Err(RingError::ZeroWeight { index, name: names[index].clone() });
        }

        // twemproxy sorts its servers by identity once, at configuration time, and indexes them
        // in that order; everything below iterates in it.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        order.sort_by(|&a, &b| name_order(names[a].as_bytes(), names[b].as_bytes()));
        if let Some(pair) = order.windows(2).find(|pair| names[pair[0]] == names[pair[1]]) {
            let (first, second) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
            return Err(RingError::DuplicateName { first, second, name: names[first].clone() });
        }

        let live: Vec<usize> = order.into_iter().filter(|&i| is_live(i)).collect();
        if live.is_empty() {
            return Err(RingError::NoServers);
        }
        let total_weight = live
            .iter()
            .try_fold(0u32, |sum, &i| sum.checked_add(servers[i].weight))
            .ok_or(RingError::WeightOverflow)?;

        // `as u32` cannot truncate: the list length was checked against u32 above.
        let table = match distribution {
            Distribution::Ketama => {
                let members: Vec<Member<'_>> = live
                    .iter()
                    .map(|&i| Member { server: i as u32, name: &names[i], weight: servers[i].weight })
                    .collect();
                Table::Ketama(ketama::build(&members, total_weight))
            }
            Distribution::Modula => Table::Modula(Modula::build(live.iter().map(|&i| (i as u32, servers[i].weight)))),
            Distribution::Random => Table::Random(live.iter().map(|&i| i as u32).collect()),
        };
        Ok(Ring { hash, distribution, tag: hash_tag.map(|[open, close]| HashTag::new(open, close)), live, table })
    }

    /// The server that owns `key`: an index into the slice the ring was built from.
    ///
    /// For [`Distribution::Random`] the key is ignored and a per-thread generator picks; use
    /// [`Ring::server_for_with`] to inject the random numbers.
    #[inline]
    pub fn server_for(&self, key: &[u8]) -> usize {
        self.server_for_with(key, &mut random::next_u32)
    }

    /// [`Ring::server_for`] with the random numbers of [`Distribution::Random`] drawn from `rng`
    /// (called once per lookup, and only for that distribution).
    #[inline]
    pub fn server_for_with(&self, key: &[u8], rng: &mut impl FnMut() -> u32) -> usize {
        if let [only] = self.live[..] {
            // twemproxy skips hashing for one-server pools; with one live server every path
            // below would pick it anyway.
            return only;
        }
        match &self.table {
            Table::Ketama(points) => points[ketama::position(points, self.key_hash(key))].server as usize,
            Table::Modula(modula) => modula.servers()[modula.position(self.key_hash(key))] as usize,
            Table::Random(servers) => servers[random::position(rng(), servers.len())] as usize,
        }
    }

    /// Up to `n` distinct servers for `key`, the owner first, for replication:
    ///
    /// - ketama: the owners of the points met walking the continuum clockwise from the key;
    /// - modula: the owner, then the following live servers in server order, wrapping;
    /// - random: a random live server, then the following ones in server order, wrapping.
    ///
    /// Fewer than `n` come out when fewer servers are live. It never allocates for `n ≤ 8`.
    pub fn servers_for(&self, key: &[u8], n: usize) -> ServersFor<'_> {
        self.servers_for_with(key, n, &mut random::next_u32)
    }

    /// [`Ring::servers_for`] with the random numbers of [`Distribution::Random`] drawn from `rng`.
    pub fn servers_for_with(&self, key: &[u8], n: usize, rng: &mut impl FnMut() -> u32) -> ServersFor<'_> {
        let wanted = n.min(self.live.len());
        let walk = match &self.table {
            Table::Ketama(points) => {
                let start = ketama::position(points, self.key_hash(key));
                Walk::Points { points, next: start, steps_left: points.len() }
            }
            Table::Modula(modula) => {
                let servers = modula.servers();
                let start = if servers.len() == 1 { 0 } else { modula.position(self.key_hash(key)) };
                Walk::Servers { servers, next: start }
            }
            Table::Random(servers) => {
                let start = if servers.len() == 1 { 0 } else { random::position(rng(), servers.len()) };
                Walk::Servers { servers, next: start }
            }
        };
        ServersFor { walk, remaining: wanted, seen: Seen::default() }
    }

    /// The bytes of `key` that are hashed: the hash-tag span if the pool has a tag and the key a
    /// non-empty tagged span, else the whole key.
    pub fn hashed_bytes<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        match self.tag {
            Some(tag) => tag.apply(key),
            None => key,
        }
    }

    /// The 32-bit position of `key` (`server_pool_hash`): the pool's hash of
    /// [`Ring::hashed_bytes`], or 0 when those are empty (twemproxy never hashes an empty key).
    /// Useful to explain a placement; [`Distribution::Random`] does not use it.
    pub fn key_hash(&self, key: &[u8]) -> u32 {
        let bytes = self.hashed_bytes(key);
        if bytes.is_empty() { 0 } else { self.hash.hash(bytes) }
    }

    /// The live servers (indices into the constructor's slice) in twemproxy's server order: by
    /// identity length, then bytewise. Modula's slots and ketama's tie-breaks follow this order.
    pub fn live_servers(&self) -> &[usize] {
        &self.live
    }

    /// The sorted ketama continuum; empty for modula and random.
    pub fn continuum(&self) -> &[Point] {
        match &self.table {
            Table::Ketama(points) => points,
            Table::Modula(_) | Table::Random(_) => &[],
        }
    }

    /// Each live server's share of the key space, as `(index, fraction)` in
    /// [`Ring::live_servers`] order; the fractions add up to 1. Ketama: the
    /// arcs of the continuum its points end (a point owns the hashes after
    /// the previous point, up to and including its own); modula: its weight
    /// over the total; random: an equal share.
    pub fn shares(&self) -> Vec<(usize, f64)> {
        let mut share = vec![0.0_f64; self.live.iter().max().map_or(0, |m| m + 1)];
        match &self.table {
            Table::Ketama(points) => {
                let span = 4_294_967_296.0_f64;
                let mut before = points.last().map_or(0, |p| p.value);
                for p in points {
                    // The first point's arc wraps past 2^32 − 1.
                    let arc = f64::from(p.value.wrapping_sub(before));
                    let arc = if arc == 0.0 && points.len() == 1 { span } else { arc };
                    share[p.server as usize] += arc / span;
                    before = p.value;
                }
            }
            Table::Modula(modula) => {
                let total = f64::from(modula.total_weight().max(1));
                for (server, weight) in modula.weights() {
                    share[server as usize] += f64::from(weight) / total;
                }
            }
            Table::Random(servers) => {
                for &s in servers {
                    share[s as usize] += 1.0 / servers.len() as f64;
                }
            }
        }
        self.live.iter().map(|&i| (i, share[i])).collect()
    }

    /// The hash function keys are positioned with.
    pub fn hash_kind(&self) -> HashKind {
        self.hash
    }

    /// The distribution algorithm.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The pool's hash tag, if any.
    pub fn hash_tag(&self) -> Option<HashTag> {
        self.tag
    }
}

impl fmt::Debug for Ring {
    /// A summary: the continuum has thousands of points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("hash", &self.hash)
            .field("distribution", &self.distribution)
            .field("tag", &self.tag)
            .field("live", &self.live)
            .field("points", &self.continuum().len())
            .finish()
    }
}

/// Iterator over the distinct servers of [`Ring::servers_for`], owner first.
#[derive(Debug, Clone)]
pub struct ServersFor<'r> {
    walk: Walk<'r>,
    remaining: usize,
    seen: Seen,
}

#[derive(Debug, Clone)]
enum Walk<'r> {
    /// Clockwise over the continuum; `steps_left` bounds the walk to one full turn.
    Points { points: &'r [Point], next: usize, steps_left: usize },
    /// Over distinct servers in server order, wrapping; `remaining` bounds it.
    Servers { servers: &'r [u32], next: usize },
}

impl Iterator for ServersFor<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        match &mut self.walk {
            Walk::Servers { servers, next } => {
                let server = *servers.get(*next)?;
                *next = (*next + 1) % servers.len();
                self.remaining -= 1;
                Some(server as usize)
            }
            Walk::Points { points, next, steps_left } => {
                while *steps_left > 0 {
                    *steps_left -= 1;
                    let server = points.get(*next)?.server;
                    *next = (*next + 1) % points.len();
                    if self.seen.insert(server) {
                        self.remaining -= 1;
                        return Some(server as usize);
                    }
                }
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.walk {
            Walk::Servers { .. } => (self.remaining, Some(self.remaining)),
            Walk::Points { .. } => (0, Some(self.remaining)),
        }
    }
}

/// Servers already returned by a continuum walk: inline for the first few (replication factors
/// are small), spilling to the heap beyond.
#[derive(Debug, Clone, Default)]
struct Seen {
    inline: [u32; Seen::INLINE],
    len: usize,
    spill: Vec<u32>,
}

impl Seen {
    const INLINE: usize = 8;

    /// Records `server`; false if it was already there.
    fn insert(&mut self, server: u32) -> bool {
        if self.inline[..self.len].contains(&server) || self.spill.contains(&server) {
            return false;
        }
        if self.len < Seen::INLINE {
            self.inline[self.len] = server;
            self.len += 1;
        } else {
            self.spill.push(server);
        }
        true
    }
}
