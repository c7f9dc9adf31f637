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
mod pools;

pub use control::publish::{Placement, PoolError, placement};
pub use control::reload::sha256 as sha256_hex;
pub use control::stats::describe_stats;
pub use pools::bind;

/// Loads every pool's TLS files (certificates, keys, CAs) as a start would,
/// without serving: what `memshard proxy -t` checks beyond the syntax.
pub fn check_tls(config: &memshard_config::Config) -> Result<(), PoolError> {
    for (name, cfg) in &config.pools {
        control::tls::PoolTls::build(name, cfg, None)?;
    }
    Ok(())
}

use control::pool::Pool;
use control::reload::{self, ConfigInfo};
use control::{resolve, stats_server};
use memshard_config::Config;
use memshard_net::{Listener, Shutdown, Spread};
use pools::{Pools, Tasks};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

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
    /// The file the configuration came from. When set, the proxy reloads it
    /// on each [`reload`](ProxyConfig::reload) notification (SIGHUP in
    /// `memshard proxy`) and when its content changes (see `control::reload`).
    pub config_file: Option<PathBuf>,
    /// How often the file is looked at for a change (default 2 s; `None`:
    /// only on request).
    pub watch_interval: Option<Duration>,
    /// Notified to reload the file now.
    pub reload: Arc<Notify>,
    /// Notified to read every pool's TLS certificate files again now
    /// (SIGHUP in `memshard proxy`; they are also watched for changes).
    pub reload_certs: Arc<Notify>,
    /// The sha256 ([`sha256_hex`]) of the bytes the starting configuration
    /// was parsed from; when `None`, the file is read again for it.
    pub config_sha256: Option<String>,
    /// Track each pool's most requested keys (on whenever the admin port
    /// is: nothing else shows them).
    pub hot_keys: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            spread: Spread::Adaptive,
            max_item_size: memshard_proto::DEFAULT_MAX_ITEM_SIZE,
            dns_servers: Vec::new(),
            config_file: None,
            watch_interval: Some(DEFAULT_WATCH_INTERVAL),
            reload: Arc::new(Notify::new()),
            reload_certs: Arc::new(Notify::new()),
            config_sha256: None,
            hot_keys: false,
        }
    }
}

/// How often the configuration file is looked at for a change, by default.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

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

/// The proxy's other ports: twemproxy's stats JSON, and the admin HTTP
/// surface (`memshard_admin`: metrics, probes, key lookup, hot keys,
/// dashboard).
#[derive(Debug, Default)]
pub struct Ports {
    /// twemproxy's stats port.
    pub stats: Option<TcpListener>,
    /// The admin port; hot keys are tracked when it is given.
    pub admin: Option<TcpListener>,
}

/// Serves each pool of `config` on its listener (same order as
/// `config.pools`; TCP or unix socket, see [`memshard_net::Listener`]), and
/// the [`Ports`] given, until `shutdown`; then drains and returns. A unix
/// socket listener's file is removed when its pool stops serving.
pub async fn run(
    config: Config,
    listeners: Vec<impl Into<Listener>>,
    ports: Ports,
    mut proxy: ProxyConfig,
    shutdown: Shutdown,
) -> Result<(), ProxyError> {
    if listeners.len() != config.pools.len() {
        return Err(ProxyError::Listeners { expected: config.pools.len(), got: listeners.len() });
    }
    proxy.hot_keys |= ports.admin.is_some();
    let pools = pools(&config, &proxy)?;
    serve(pools, listeners, ports, proxy, shutdown).await
}

/// Every pool of `config`, ready to serve.
fn pools(config: &Config, proxy: &ProxyConfig) -> Result<Vec<Arc<Pool>>, PoolError> {
    let resolver = Arc::new(resolve::Resolver::new(&proxy.dns_servers));
    config
        .pools
        .iter()
        .map(|(name, cfg)| Ok(Arc::new(Pool::new(name, cfg, resolver.clone())?.with_hot_keys(proxy.hot_keys))))
        .collect()
}

/// [`run`] with the pools made: serves each on its listener (same order),
/// and applies the reloads of the configuration file.
async fn serve(
    pools: Vec<Arc<Pool>>,
    listeners: Vec<impl Into<Listener>>,
    ports: Ports,
    proxy: ProxyConfig,
    shutdown: Shutdown,
) -> Result<(), ProxyError> {
    let started = std::time::Instant::now();
    let resolver =
        pools.first().map_or_else(|| Arc::new(resolve::Resolver::new(&proxy.dns_servers)), |p| p.resolver.clone());
    let mut running = Pools::new(proxy.clone(), resolver, shutdown.clone());
    let mut tasks = Tasks::new();
    for (pool, listener) in pools.into_iter().zip(listeners) {
        running.start(pool, listener.into(), &mut tasks);
    }
    running.publish();
    // The configuration in force: the file's hash as it is now.
    let file = proxy.config_file.clone();
    let bytes = file.as_ref().and_then(|f| std::fs::read(f).ok());
    let sha =
        proxy.config_sha256.clone().unwrap_or_else(|| bytes.as_ref().map(|b| reload::sha256(b)).unwrap_or_default());
    let text = bytes.map(|b| Arc::from(String::from_utf8_lossy(&b)));
    let info = ConfigInfo::started(sha.clone(), file.as_ref().map(|f| f.display().to_string()), text);
    let (apply, mut reloads) = tokio::sync::mpsc::channel(1);
    if let Some(file) = file {
        tokio::spawn(reload::watch(
            file,
            proxy.watch_interval,
            proxy.reload.clone(),
            sha,
            info.clone(),
            apply,
            shutdown.clone(),
        ));
    }
    if let Some(l) = ports.stats {
        let addr = l.local_addr()?;
        tracing::info!(role = "proxy-stats", "listening on {addr}");
        tasks.spawn(stats_server::run(l, running.registry.clone(), info.clone(), shutdown.clone()));
    }
    if let Some(l) = ports.admin {
        let source = control::admin::ProxyAdmin {
            registry: running.registry.clone(),
            info: info.clone(),
            started,
            workers: proxy.workers,
            shutdown: shutdown.clone(),
        };
        tasks.spawn(memshard_admin::run(l, Arc::new(source), memshard_admin::Limits::default(), shutdown.clone()));
    }
    loop {
        tokio::select! {
            res = tasks.join_next() => match res {
                None => break,
                Some(Ok(Err(e))) => return Err(e.into()),
                Some(_) => {}
            },
            () = proxy.reload_certs.notified() => control::tls_watch::reload_all(&running.registry.load()),
            Some(checked) = reloads.recv() => {
                let checked: reload::Checked = checked;
                match running.apply(&checked.config, &mut tasks).await {
                    Ok(()) => {
                        tracing::info!(sha256 = %checked.sha256, "reload applied");
                        ConfigInfo::record(&info, Ok((&checked.sha256, &checked.text)));
                    }
                    Err(why) => {
                        tracing::error!("reload refused, keeping the running configuration: {why}");
                        ConfigInfo::record(&info, Err(&why));
                    }
                }
            }
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
