//! memshard-proxy: a twemproxy-compatible memcached sharding proxy.
//!
//! [`run`] serves every pool of a twemproxy YAML configuration on its own
//! listener. A key goes to the server twemproxy would pick (same hash, same
//! ketama/modula/random placement, from `memshard-ring`); multi-key gets are
//! split per server, sent in parallel and merged back in the client's key
//! order; meta commands are routed by key; keyless `flush_all`/`verbosity` are
//! fanned out to every server, `version` and `mn` answered locally, `stats`
//! refused with a clear error. A backend failure becomes a `SERVER_ERROR`
//! reply and counts against the server; with `auto_eject_hosts` a server that
//! fails `server_failure_limit` times in a row leaves the ring (rebuilt
//! without it, as twemproxy does) for `server_retry_timeout`, and returns only
//! after a probe (connect + `version`) succeeds.
//!
//! Names, never pinned IPs: a server configured by host name is placed on
//! the ring by that name, and only its connections follow the address. A
//! per-pool task re-resolves every name each `dns_refresh_interval` (memshard
//! extension key, default 5 s, 0 = off) and keeps each server's last good
//! address; reconnects after a failure and the prober look the name up again
//! too. When an address changes, the worker threads drop their connections
//! to the old one on their next request to that server (requests already on
//! them finish) and connect to the new one; no key moves. A failed or empty
//! lookup keeps the last good address. Lookups use the system resolver
//! (getaddrinfo: `/etc/hosts`, `/etc/resolv.conf`), or, when
//! [`ProxyConfig::dns_servers`] is set (`memshard proxy --dns-server`), ask
//! those DNS servers directly (hickory-resolver; A, then AAAA).
//!
//! Unix sockets, both ends, as in twemproxy 0.5.0. A pool may listen on
//! `listen: /path [perm]` (bound with [`memshard_net::bind_unix`]: a stale
//! socket file is removed first and the file chmod-ed to `perm`); its
//! clients are served by the same frontend, under the same connection limit
//! and drain as TCP clients, without the TCP-only socket options. Unlike
//! twemproxy, which leaves the file behind, the socket file is removed when
//! the pool stops. A server may be a unix socket (`/path:weight [name]`): it
//! sits on the ring under twemproxy's name for it (`/path:`, or its given
//! name), and its connections, timeouts, failure accounting, ejection,
//! probes and stats are a TCP server's; there is no name to re-resolve.
//!
//! Each worker thread runs its client connections and its backend
//! connections as tasks of its own (no locks between them): a client task
//! queues each request on its backend connection without waiting, the
//! connection's task writes everything queued in one go, and copies each
//! answer it reads into its client's output, in that client's request
//! order. Requests and answers are forwarded as the bytes they are, and
//! single-key gets queued together on one connection travel as one
//! multi-key get (see `upstream`). By default a pool keeps only as many of
//! its workers active as the load needs, and clients move between workers
//! at their pauses between requests ([`memshard_net::Spread`]; a client
//! moves only once every noreply request it sent is known to be executed).
//!
//! ```text
//!   pool listener ─► serve_balanced_local ─► worker thread i: client connection tasks
//!                                     └─► thread-local backend connections (server_connections per server,
//!                                         pipelined, shared by the worker's clients, one task each)
//!   ring: Arc<Ring> in an ArcSwap per pool — loaded per request, swapped on eject/return
//!   prober: per pool, retries ejected servers when their retry time comes
//!   resolver: per pool, re-resolves server names; an address change retires
//!             the old address's connections (per-server generation)
//! ```
//!
//! The crate is in two planes: `data` (the request path: client side,
//! answer slots, backend connections) reads `control` (pools, name
//! resolution, health, the ring publisher, the prober, stats), which never
//! imports it.
//!
//! It is not a cache and holds no items.

#[cfg(test)]
mod consistency;
mod control;
mod data;

pub use control::publish::{Placement, PoolError, placement};
pub use control::stats::describe_stats;

use control::pool::Pool;
use control::{prober, refresh, resolve, stats_server};
use data::client::frontend::{self, Route};
use memshard_config::Config;
use memshard_net::{Accept, Listener, ServeConfig, ServeStats, Shutdown, Spread, serve_balanced_local};
use memshard_proto::Decoder;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Proxy-wide settings beyond the pool file.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Worker threads per pool listener (default: number of cores).
    pub workers: usize,
    /// How clients are spread over the workers (default: adaptive, as few
    /// workers as the load needs; `memshard proxy --all-workers` for all).
    pub spread: Spread,
    /// Largest item a client may send (memcached's `-I`, default 1 MiB).
    pub max_item_size: usize,
    /// DNS servers to resolve server names with, asked directly. Empty (the
    /// default) means the system resolver: `/etc/hosts`, `/etc/resolv.conf`.
    pub dns_servers: Vec<SocketAddr>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            spread: Spread::Adaptive,
            max_item_size: memshard_proto::DEFAULT_MAX_ITEM_SIZE,
            dns_servers: Vec::new(),
        }
    }
}

/// Errors that stop the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A pool could not be set up.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// Listener or worker set-up failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The listeners do not match the pools.
    #[error("expected {expected} listeners (one per pool), got {got}")]
    Listeners {
        /// Pools in the config.
        expected: usize,
        /// Listeners given.
        got: usize,
    },
}

/// Serves each pool of `config` on its listener (same order as
/// `config.pools`; TCP or unix socket, see [`memshard_net::Listener`]), and
/// twemproxy's stats JSON on `stats` when given, until `shutdown`; then
/// drains and returns. A unix socket listener's file is removed when its
/// pool stops serving.
pub async fn run(
    config: Config,
    listeners: Vec<impl Into<Listener>>,
    stats: Option<TcpListener>,
    proxy: ProxyConfig,
    shutdown: Shutdown,
) -> Result<(), ProxyError> {
    if listeners.len() != config.pools.len() {
        return Err(ProxyError::Listeners { expected: config.pools.len(), got: listeners.len() });
    }
    let pools = pools(&config, &proxy)?;
    serve(pools, listeners, stats, proxy, shutdown).await
}

/// Every pool of `config`, ready to serve.
fn pools(config: &Config, proxy: &ProxyConfig) -> Result<Vec<Arc<Pool>>, PoolError> {
    let resolver = Arc::new(resolve::Resolver::new(&proxy.dns_servers));
    config.pools.iter().map(|(name, cfg)| Ok(Arc::new(Pool::new(name, cfg, resolver.clone())?))).collect()
}

/// [`run`] with the pools made: serves each on its listener (same order).
async fn serve(
    pools: Vec<Arc<Pool>>,
    listeners: Vec<impl Into<Listener>>,
    stats: Option<TcpListener>,
    proxy: ProxyConfig,
    shutdown: Shutdown,
) -> Result<(), ProxyError> {
    let decoder = Decoder::new(proxy.max_item_size);
    let mut serving = tokio::task::JoinSet::new();
    for (pool_id, (pool, listener)) in pools.iter().zip(listeners).enumerate() {
        let listener: Listener = listener.into();
        let addr = listener.local_addr()?;
        tracing::info!(role = "proxy", pool = %pool.name, "listening on {addr}");
        let set = pool.servers();
        let serve_cfg = ServeConfig {
            max_connections: set.cfg.client_connection_limit().map_or(1 << 20, |n| n as usize),
            reject_reply: b"SERVER_ERROR too many open connections\r\n",
            // twemproxy sets SO_KEEPALIVE on accepted client sockets only.
            keepalive: set.cfg.tcpkeepalive,
            ..ServeConfig::default()
        };
        let route = Route { pool_id, pool: pool.clone() };
        let (sd, conns) = (shutdown.clone(), pool.conns.clone());
        let workers = Workers { threads: proxy.workers.max(1), spread: proxy.spread };
        match listener {
            Listener::Tcp(l) => serving.spawn(serve_pool(l, serve_cfg, conns, sd, workers, route, decoder)),
            Listener::Unix(l) => serving.spawn(serve_pool(l, serve_cfg, conns, sd, workers, route, decoder)),
        };
        serving.spawn(prober::run(pool.clone(), shutdown.clone()));
        if set.cfg.preconnect {
            // twemproxy's preconnect connects at start and only logs failures.
            // Backend connections here belong to worker threads and open on
            // first use; at start we check every server is reachable and log.
            // The check only asks `version`: it never flushes a server.
            let (p, set) = (pool.clone(), set.clone());
            tokio::spawn(async move {
                for s in &set.servers {
                    if !prober::reachable(&p, s).await {
                        tracing::warn!(pool = %p.name, server = %s.addr, "preconnect: server not reachable");
                    }
                }
            });
        }
        serving.spawn(refresh::run(pool.clone(), shutdown.clone()));
    }
    if let Some(l) = stats {
        let addr = l.local_addr()?;
        tracing::info!(role = "proxy-stats", "listening on {addr}");
        serving.spawn(stats_server::run(l, pools.clone(), shutdown.clone()));
    }
    while let Some(res) = serving.join_next().await {
        if let Ok(Err(e)) = res {
            return Err(e.into());
        }
    }
    tracing::info!(role = "proxy", "stopped");
    Ok(())
}

/// A pool's worker threads and how clients are spread over them.
#[derive(Clone, Copy)]
struct Workers {
    threads: usize,
    spread: Spread,
}

/// One pool's accept loop and client connections, on the same frontend for
/// every kind of listener (one monomorphic copy per kind, so a TCP client's
/// reads and writes are direct calls on its `TcpStream`).
fn serve_pool<L: Accept>(
    listener: L,
    cfg: ServeConfig,
    conns: Arc<ServeStats>,
    shutdown: Shutdown,
    workers: Workers,
    route: Route,
    decoder: Decoder,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    serve_balanced_local(listener, cfg, conns, shutdown, workers.threads, workers.spread, move |stream, sd, seat| {
        frontend::handle(stream, route.clone(), decoder, sd, seat)
    })
}
