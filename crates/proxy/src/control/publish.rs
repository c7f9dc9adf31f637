//! The ring publisher: builds a pool's ring from its server set and the
//! servers' health, and swaps it in for the data path, which loads it once
//! per request without a lock. Also the placement `memshard ring` prints:
//! the ring over every server, as the proxy starts.

use arc_swap::ArcSwap;
use memshard_config::{PoolConfig, ServerAddr};
use memshard_ring::{Distribution, HashKind, Ring, RingError, ServerSpec};
use std::sync::Arc;

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
        source: RingError,
    },
    /// A TLS file of the pool could not be loaded.
    #[error("pool {pool}: TLS: {reason}")]
    Tls {
        /// Pool name.
        pool: String,
        /// Which file and why.
        reason: String,
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
    /// How many servers own each key (`replicas:`, at most the servers).
    pub replicas: usize,
}

impl Placement {
    /// Every owner of `key` with every server live, the one twemproxy
    /// picks first (indices into [`Placement::specs`]).
    pub fn owners(&self, key: &[u8]) -> impl Iterator<Item = usize> + '_ {
        self.ring.servers_for(key, self.replicas)
    }
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
    let replicas = (cfg.extensions.replicas as usize).clamp(1, specs.len().max(1));
    Ok(Placement { specs, ring, hash, dist, replicas })
}

/// A pool's current ring, and what it is rebuilt from.
pub(crate) struct Publisher {
    /// The ring over every server, live or not: a replicated pool's owners
    /// (an ejection does not remap a key that has another live owner).
    all: Arc<Ring>,
    specs: Vec<ServerSpec>,
    hash: HashKind,
    dist: Distribution,
    hash_tag: Option<[u8; 2]>,
    /// Lock-free on the request path: readers load, a rebuild swaps.
    ring: ArcSwap<Ring>,
}

impl Publisher {
    /// Publishes `placement`'s ring (every server in it).
    pub(crate) fn new(placement: Placement, hash_tag: Option<[u8; 2]>) -> Publisher {
        let Placement { specs, ring, hash, dist, .. } = placement;
        let ring = Arc::new(ring);
        Publisher { all: ring.clone(), specs, hash, dist, hash_tag, ring: ArcSwap::new(ring) }
    }

    /// The ring over every server.
    pub(crate) fn all(&self) -> &Ring {
        &self.all
    }

    /// The ring in force now.
    pub(crate) fn current(&self) -> Arc<Ring> {
        self.ring.load_full()
    }

    /// Builds the ring from the servers `live` admits and swaps it in. With
    /// none admitted the last ring stays, and the error says why.
    pub(crate) fn rebuild(&self, live: impl Fn(usize) -> bool) -> Result<(), RingError> {
        let ring = Ring::build_live(&self.specs, live, self.hash, self.dist, self.hash_tag)?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }
}
