//! The pools as they run: each one's listener, its serving tasks (the data
//! path, on its worker threads) and its control tasks (prober, name
//! refresh), under a shutdown of its own. A reload is applied here, pool by
//! pool, in two steps: first everything that can fail — every new server
//! set is built, every new listen address bound — with no effect on what
//! runs; then, only if all of it succeeded, the new sets are published, new
//! pools start, pools whose `listen` changed start on the new address and
//! drain the old one, and removed pools stop accepting and drain.

use crate::control::pool::Pool;
use crate::control::publish::PoolError;
use crate::control::resolve::Resolver;
use crate::control::servers::ServerSet;
use crate::control::{discover, prober, purge, refresh, tls_watch};
use crate::data::client::frontend::{self, Route};
use crate::{ProxyConfig, Workers};
use arc_swap::ArcSwap;
use memshard_config::{Config, Listen, PoolConfig};
use memshard_net::{Accept, Listener, ServeConfig, ServeStats, Shutdown, ShutdownTrigger, serve_balanced_local};
use memshard_proto::Decoder;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;

/// The tasks of every pool: a serving task's error stops the proxy.
pub(crate) type Tasks = JoinSet<std::io::Result<()>>;

/// The pools the stats port shows, in config order.
pub(crate) type Registry = Arc<ArcSwap<Vec<Arc<Pool>>>>;

/// One pool serving on one listener.
struct Served {
    pool: Arc<Pool>,
    /// The listener-level settings it was started with, and its `listen`
    /// as the configuration in force writes it.
    cfg: PoolConfig,
    stop: ShutdownTrigger,
}

/// Every running pool.
pub(crate) struct Pools {
    running: Vec<Served>,
    /// The key of each worker's connection table (see `conns`): a new one
    /// per listener ever started.
    next_id: usize,
    pub(crate) registry: Registry,
    resolver: Arc<Resolver>,
    proxy: ProxyConfig,
    shutdown: Shutdown,
}

/// Binds a pool's `listen` address as twemproxy does: TCP with the pool's
/// `backlog` and `reuseport`, or a unix socket (a stale socket file is
/// replaced, the new one chmod-ed).
pub async fn bind(cfg: &PoolConfig) -> Result<Listener, memshard_net::NetError> {
    match &cfg.listen {
        Listen::Tcp { host, port } => {
            let opts = memshard_net::BindOptions { backlog: cfg.backlog, reuseport: cfg.reuseport };
            memshard_net::bind_with(&format!("{host}:{port}"), opts).await.map(Listener::from)
        }
        Listen::Unix { path, perm } => memshard_net::bind_unix(path, *perm, cfg.backlog).await.map(Listener::from),
    }
}

/// What a reload does to one pool, prepared.
enum Step {
    /// A running pool (by index) takes `set`, and moves to `listener` when
    /// its `listen` changed.
    /// `from` is the generation in force when `set` was prepared.
    Keep { i: usize, set: Box<ServerSet>, from: u64, cfg: Box<PoolConfig>, listener: Option<Listener> },
    /// A new pool on its listener.
    Start { pool: Arc<Pool>, listener: Listener },
}

impl Pools {
    pub(crate) fn new(proxy: ProxyConfig, resolver: Arc<Resolver>, shutdown: Shutdown) -> Pools {
        Pools {
            running: Vec::new(),
            next_id: 0,
            registry: Arc::new(ArcSwap::from_pointee(Vec::new())),
            resolver,
            proxy,
            shutdown,
        }
    }

    /// Starts `pool` on `listener`: its accept loop and clients, its prober,
    /// its name refresh (and, with `preconnect`, a reachability check).
    pub(crate) fn start(&mut self, pool: Arc<Pool>, listener: Listener, tasks: &mut Tasks) {
        let set = pool.servers();
        match listener.local_addr() {
            Ok(addr) => tracing::info!(role = "proxy", pool = %pool.name, "listening on {addr}"),
            Err(e) => tracing::warn!(role = "proxy", pool = %pool.name, error = %e, "listening; address unknown"),
        }
        // The pool's own shutdown: the proxy's, or its removal.
        let (stop, sd) = ShutdownTrigger::new();
        let (mut global, mut own, t) = (self.shutdown.clone(), sd.clone(), stop.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = global.wait() => t.trigger(),
                _ = own.wait() => {}
            }
            Ok(())
        });
        let serve_cfg = ServeConfig {
            max_connections: set.cfg.client_connection_limit().map_or(1 << 20, |n| n as usize),
            reject_reply: b"SERVER_ERROR too many open connections\r\n",
            // twemproxy sets SO_KEEPALIVE on accepted client sockets only.
            keepalive: set.cfg.tcpkeepalive,
            ..ServeConfig::default()
        };
        let route = Route { pool_id: self.next_id, pool: pool.clone() };
        self.next_id += 1;
        let conns = pool.conns.clone();
        let workers = Workers { threads: self.proxy.workers.max(1), spread: self.proxy.spread };
        let decoder = Decoder::new(self.proxy.max_item_size);
        match listener {
            Listener::Tcp(l) => tasks.spawn(serve_pool(l, serve_cfg, conns, sd.clone(), workers, route, decoder)),
            Listener::Unix(l) => tasks.spawn(serve_pool(l, serve_cfg, conns, sd.clone(), workers, route, decoder)),
        };
        tasks.spawn(prober::run(pool.clone(), sd.clone()));
        tasks.spawn(purge::sweeper(pool.clone(), sd.clone()));
        tasks.spawn(refresh::run(pool.clone(), sd.clone()));
        tasks.spawn(discover::run(pool.clone(), sd.clone()));
        tasks.spawn(tls_watch::watch(pool.clone(), sd.clone()));
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
        self.running.push(Served { pool, cfg: set.cfg.clone(), stop });
    }

    /// Publishes the pools for the stats port.
    pub(crate) fn publish(&self) {
        self.registry.store(Arc::new(self.running.iter().map(|s| s.pool.clone()).collect()));
    }

    /// Applies `config` (see the module docs); on an error nothing changed.
    pub(crate) async fn apply(&mut self, config: &Config, tasks: &mut Tasks) -> Result<(), String> {
        let mut steps = Vec::with_capacity(config.pools.len());
        for (name, cfg) in &config.pools {
            let bind = |cfg: &PoolConfig| {
                let cfg = cfg.clone();
                async move { bind(&cfg).await.map_err(|e| format!("pool {name}: {e}")) }
            };
            match self.running.iter().position(|s| s.pool.name == *name) {
                Some(i) => {
                    let from = self.running[i].pool.servers().generation;
                    let set = self.running[i].pool.prepare(cfg).map_err(|e: PoolError| e.to_string())?;
                    let listener = match same_address(&self.running[i].cfg.listen, &cfg.listen) {
                        true => None,
                        false => Some(bind(cfg).await?),
                    };
                    steps.push(Step::Keep { i, set: Box::new(set), from, cfg: Box::new(cfg.clone()), listener });
                }
                None => {
                    let pool = Pool::new(name, cfg, self.resolver.clone())
                        .map_err(|e| e.to_string())?
                        .with_hot_keys(self.proxy.hot_keys);
                    steps.push(Step::Start { pool: Arc::new(pool), listener: bind(cfg).await? });
                }
            }
        }
        // Everything prepared: now it takes effect.
        let old = std::mem::take(&mut self.running);
        let mut kept = vec![false; old.len()];
        let mut moved = Vec::new();
        for step in steps {
            match step {
                Step::Keep { i, set, from, cfg, listener } => {
                    kept[i] = true;
                    let served = &old[i];
                    // A discovery published a set while the binds were awaited:
                    // prepare again from it, so its servers are not undone.
                    let set = match served.pool.servers().generation == from {
                        true => *set,
                        false => served.pool.prepare(&cfg).unwrap_or(*set),
                    };
                    // Keys the change moves are cleared where they arrive
                    // first; a discovery that published meanwhile is not
                    // undone (prepared again from it, and cleared again).
                    let mut set = set;
                    for _ in 0..3 {
                        let before = served.pool.servers();
                        purge::moving_in(&served.pool, &before, &set).await;
                        if served.pool.servers().generation == before.generation {
                            break;
                        }
                        set = served.pool.prepare(&cfg).unwrap_or(set);
                    }
                    served.pool.publish(set);
                    match listener {
                        Some(l) => {
                            tracing::info!(pool = %served.pool.name, from = %served.cfg.listen, to = %cfg.listen,
                                "listen changed: draining the old address");
                            self.start(served.pool.clone(), l, tasks);
                            moved.push(i);
                        }
                        None => {
                            // A unix socket's new permissions apply to the
                            // socket in place: its clients stay.
                            if let (Listen::Unix { path, perm: Some(perm) }, true) =
                                (&cfg.listen, served.cfg.listen != cfg.listen)
                            {
                                use std::os::unix::fs::PermissionsExt;
                                let set = std::fs::set_permissions(path, std::fs::Permissions::from_mode(*perm));
                                if let Err(e) = set {
                                    tracing::warn!(pool = %served.pool.name, error = %e, "cannot change the socket's permissions");
                                }
                            }
                            if listener_settings(&served.cfg) != listener_settings(&cfg) {
                                tracing::warn!(pool = %served.pool.name,
                                    "backlog, reuseport, client_connections and tcpkeepalive change with the listen address or a restart");
                            }
                            self.running.push(Served {
                                pool: served.pool.clone(),
                                cfg: PoolConfig { listen: cfg.listen.clone(), ..served.cfg.clone() },
                                stop: served.stop.clone(),
                            });
                        }
                    }
                }
                Step::Start { pool, listener } => self.start(pool, listener, tasks),
            }
        }
        for (i, served) in old.iter().enumerate() {
            if !kept[i] {
                tracing::info!(pool = %served.pool.name, "pool removed: draining its clients");
                served.stop.trigger();
            } else if moved.contains(&i) {
                served.stop.trigger();
            }
        }
        self.publish();
        Ok(())
    }
}

/// Whether two `listen` values are the same address: a unix socket's
/// permissions are not part of it (they change in place).
fn same_address(a: &Listen, b: &Listen) -> bool {
    match (a, b) {
        (Listen::Unix { path: p, .. }, Listen::Unix { path: q, .. }) => p == q,
        _ => a == b,
    }
}

/// A pool's settings that belong to its running listener.
fn listener_settings(cfg: &PoolConfig) -> (u32, bool, Option<u32>, bool) {
    (cfg.backlog, cfg.reuseport, cfg.client_connection_limit(), cfg.tcpkeepalive)
}

/// One pool's accept loop and client connections, on the same frontend for
/// every kind of listener (one monomorphic copy per kind, so a TCP client's
/// reads and writes are direct calls on its `TcpStream`).
///
/// With `tls_cert_file`, a new client's handshake runs first, in its own
/// task on its worker (bounded in time: a stalled or hostile handshake
/// delays nobody else), with the certificates in force when it connected.
/// A TLS client then stays on its worker for good: its session cannot
/// leave the thread's reactor as a bare socket can, so it is neither moved
/// nor parked. A connection that comes back from a move or the parking lot
/// was a plaintext one: it goes on as such, even if a reload turned TLS on
/// meanwhile.
fn serve_pool<L: Accept>(
    listener: L,
    cfg: ServeConfig,
    conns: Arc<ServeStats>,
    shutdown: Shutdown,
    workers: Workers,
    route: Route,
    decoder: Decoder,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static
where
    L::Stream: PeerAddr,
{
    serve_balanced_local(listener, cfg, conns, shutdown, workers.threads, workers.spread, move |stream, sd, seat| {
        let route = route.clone();
        async move {
            let tls = match seat.fresh() {
                true => route.pool.servers().tls.listen.clone(),
                false => None,
            };
            match tls {
                None => frontend::handle(stream, route, decoder, sd, seat).await,
                Some(tls) => {
                    let peer = stream.peer_text();
                    let stream = tls.accept(stream, || peer).await?;
                    frontend::handle(stream, route, decoder, sd, seat.pinned()).await.and(None)
                }
            }
        }
    })
}

/// A client's address, for the log line of a failed handshake.
pub(crate) trait PeerAddr {
    fn peer_text(&self) -> String;
}

impl PeerAddr for tokio::net::TcpStream {
    fn peer_text(&self) -> String {
        self.peer_addr().map_or_else(|_| "unknown".into(), |a| a.to_string())
    }
}

impl PeerAddr for tokio::net::UnixStream {
    fn peer_text(&self) -> String {
        self.local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
            .unwrap_or_default()
    }
}
