//! memshard-server: a memcached-compatible cache shard.
//!
//! [`run`] serves memcached's text and meta protocols on a listener (TCP, or a
//! unix socket as with memcached's `-s`), backed by a memory-bounded
//! [`memshard_store::Store`], until the shutdown signal fires; it then stops
//! accepting, lets every connection finish the batch it is working on, and
//! returns. With a memory file (`-e`, [`snapshot`]) it loads the file before
//! the first accept and writes it back after the last connection ended. With an
//! admin listener ([`run_with_admin`], `memshard server --admin ADDR`) it also
//! serves the admin HTTP port (`memshard_admin`): its `stats` as the
//! `memcached_exporter`'s metrics, probes, settings and the dashboard. It is a
//! drop-in for the `memcached` image: same replies, same error strings, same
//! stats names (see `docs/architecture.md` for the few documented
//! differences). It is not a proxy and holds no routing logic.
//!
//! ```text
//!   listener ─► memshard_net::serve_pinned (conn limit) ─► worker thread i (of -t)
//!                 round-robin                               └─ connection task: read ─► decode ─► exec ─► write
//!   sweeper task: reclaims expired items every second ─────────► Store (sharded, LRU)
//!   admin task (--admin): GET /metrics, /healthz, … ─► the `stats` lines, read
//! ```

mod admin_exec;
mod admin_port;
mod binary_exec;
mod conn_table;
mod connection;
mod detail;
mod exec;
mod exporter;
mod meta_exec;
mod reply;
mod settings;
pub mod snapshot;
mod stats;
mod stats_report;
mod watch;

pub use stats::Counters;

use memshard_net::{Accept, Listener, ServeConfig, ServeStats, Shutdown, ShutdownTrigger, serve_pinned};
use memshard_proto::Decoder;
use memshard_store::{Store, StoreConfig};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// Settings of one server; field names follow memcached's flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `-m`: bytes of item memory (default 64 MiB).
    pub memory_limit: usize,
    /// `-c`: most simultaneous connections (default 1024).
    pub max_connections: usize,
    /// `-I`: largest item (default 1 MiB).
    pub max_item_size: usize,
    /// `-t`: worker threads; each connection lives on one of them.
    pub threads: usize,
    /// How long shutdown waits for busy connections.
    pub drain_timeout: Duration,
    /// How often expired items are swept.
    pub sweep_interval: Duration,
    /// `-A`: the `shutdown` command stops the server (off: it is refused).
    pub shutdown_command: bool,
    /// `-D`: the delimiter between a key's prefix and the rest for `stats
    /// detail`; setting it turns the per-prefix counting on at start.
    pub prefix_delimiter: Option<u8>,
    /// `-e`: the snapshot file a graceful stop writes and the next start
    /// loads (memcached's memory file); see [`snapshot`].
    pub memory_file: Option<std::path::PathBuf>,
    /// `-Z` with its `-o ssl_*` files: every connection speaks TLS. The
    /// caller keeps a handle to reload it (SIGHUP); `refresh_certs` does too.
    pub tls: Option<Arc<memshard_tls::ServerTls>>,
    /// `-o ssl_verify_mode` as given (0–3), for `stats settings`.
    pub ssl_verify_mode: u8,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            memory_limit: 64 * 1024 * 1024,
            max_connections: 1024,
            max_item_size: 1024 * 1024,
            threads: 4,
            drain_timeout: Duration::from_secs(10),
            sweep_interval: Duration::from_secs(1),
            shutdown_command: false,
            prefix_delimiter: None,
            memory_file: None,
            tls: None,
            ssl_verify_mode: 0,
        }
    }
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store settings are invalid.
    #[error("invalid store settings: {0}")]
    Config(String),
    /// The snapshot file could not be read or removed; the server does not
    /// start, since a file it cannot remove could bring old values back.
    #[error("memory file {path}: {source}")]
    Snapshot {
        /// The `-e` path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The listener has no local address.
    #[error("listener error: {0}")]
    Io(#[from] std::io::Error),
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) decoder: Decoder,
    pub(crate) stats: Counters,
    pub(crate) conns: Arc<ServeStats>,
    pub(crate) cfg: ServerConfig,
    pub(crate) started: Instant,
    pub(crate) verbosity: AtomicU32,
    /// Settings changed at run time, shown by `stats settings`.
    pub(crate) settings: settings::Settings,
    /// `watch` streams.
    pub(crate) logger: watch::Logger,
    /// `stats detail` counts.
    pub(crate) detail: detail::PrefixStats,
    /// Open connections, for `stats conns`.
    pub(crate) clients: conn_table::ConnTable,
    /// Stops the server from inside (the `shutdown` command).
    pub(crate) stop: ShutdownTrigger,
}

impl Shared {
    /// A server's shared state over `store`, with nothing counted yet; `stop`
    /// is what its `shutdown` command triggers.
    pub(crate) fn new(store: Store, cfg: ServerConfig, stop: ShutdownTrigger) -> Shared {
        let settings = settings::Settings::default();
        settings.detail_enabled.store(cfg.prefix_delimiter.is_some(), std::sync::atomic::Ordering::Relaxed);
        Shared {
            store,
            // Binary clients are told apart by their first byte (connection.rs).
            decoder: Decoder { refuse_binary: false, ..Decoder::new(cfg.max_item_size) },
            stats: Counters::default(),
            conns: Arc::new(ServeStats::default()),
            started: Instant::now(),
            verbosity: AtomicU32::new(0),
            settings,
            logger: watch::Logger::default(),
            detail: detail::PrefixStats::default(),
            clients: conn_table::ConnTable::default(),
            stop,
            cfg,
        }
    }

    /// The `stats detail` delimiter while counting is on.
    pub(crate) fn detail_delimiter(&self) -> Option<u8> {
        self.settings
            .detail_enabled
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| self.cfg.prefix_delimiter.unwrap_or(b':'))
    }
}

/// Serves on `listener` (a TCP listener, or a unix socket one as memcached's
/// `-s`, whose file is removed on return) until `shutdown` fires, then
/// drains and returns.
pub async fn run(listener: impl Into<Listener>, cfg: ServerConfig, shutdown: Shutdown) -> Result<(), ServerError> {
    run_with_admin(listener, cfg, None, shutdown).await
}

/// [`run`], and with `admin` the admin HTTP port on it (`memshard_admin`):
/// `/metrics` in the `memcached_exporter`'s names, `/readyz` ready while the
/// server accepts, `/config`, `/summary.json` and the dashboard. The admin
/// task runs on the runtime that runs this future (the server's control
/// runtime, never a connection worker) and ends when this returns.
pub async fn run_with_admin(
    listener: impl Into<Listener>,
    cfg: ServerConfig,
    admin: Option<tokio::net::TcpListener>,
    shutdown: Shutdown,
) -> Result<(), ServerError> {
    let listener: Listener = listener.into();
    let store_cfg = StoreConfig {
        memory_limit: cfg.memory_limit,
        max_item_size: cfg.max_item_size,
        shards: (cfg.threads * 4).next_power_of_two(),
        ..StoreConfig::default()
    };
    let store = Store::new(store_cfg).map_err(|e| ServerError::Config(e.to_string()))?;
    if let Some(path) = &cfg.memory_file {
        load_snapshot(&store, path)?;
    }
    let addr = listener.local_addr()?;
    // The server stops on the caller's signal or on its own `shutdown`
    // command, whichever comes first.
    let (stop, shutdown) = {
        let (own, own_shutdown) = ShutdownTrigger::new();
        let (relay, mut outer) = (own.clone(), shutdown);
        tokio::spawn(async move {
            outer.wait().await;
            relay.trigger();
        });
        (own, own_shutdown)
    };
    let shared = Shared::new(store, cfg, stop);
    shared.clients.set_listener(listener_fd(&listener), listener_text(&listener));
    let shared = Arc::new(shared);
    tracing::info!(role = "server", "listening on {addr}");
    // Held until this returns: dropping it stops the admin port.
    let _admin = admin.map(|l| admin_port::start(l, &shared, shutdown.clone(), addr.to_string()));
    let sweeper = tokio::spawn(sweep(shared.clone(), shutdown.clone()));
    let serve_cfg = ServeConfig {
        max_connections: shared.cfg.max_connections,
        drain_timeout: shared.cfg.drain_timeout,
        ..ServeConfig::default()
    };
    match listener {
        Listener::Tcp(l) => serve(l, serve_cfg, shared.clone(), shutdown).await?,
        Listener::Unix(l) => serve(l, serve_cfg, shared.clone(), shutdown).await?,
    }
    sweeper.abort();
    if let Some(path) = &shared.cfg.memory_file {
        // Every connection has ended: nothing writes the store any more.
        match snapshot::save(&shared.store, path, shared.cfg.memory_limit as u64) {
            Ok(r) => tracing::info!(
                role = "server",
                "memory file {}: saved {} items ({} bytes) in {} ms",
                path.display(),
                r.items,
                r.bytes,
                r.elapsed.as_millis()
            ),
            Err(e) => {
                tracing::error!(role = "server", "memory file {}: cannot save: {e}", path.display());
                return Err(ServerError::Snapshot { path: path.display().to_string(), source: e });
            }
        }
    }
    tracing::info!(role = "server", "stopped");
    // Giving a large store's memory back item by item takes a while; the
    // caller (a process about to exit, a restart waiting for it) need not
    // wait for it.
    std::thread::spawn(move || drop(shared));
    Ok(())
}

/// Loads the `-e` file, if there is one, and says in one line what it kept.
fn load_snapshot(store: &Store, path: &std::path::Path) -> Result<(), ServerError> {
    let err = |source| ServerError::Snapshot { path: path.display().to_string(), source };
    // A file the stop could not write would lose the cache then: find out now.
    snapshot::check_writable(path).map_err(err)?;
    let Some(r) = snapshot::load(store, path).map_err(err)? else {
        tracing::info!(role = "server", "memory file {}: none, starting empty", path.display());
        return Ok(());
    };
    let age = r.saved_at.map_or(String::new(), |t| format!(", saved {} s ago", unix_now().saturating_sub(t)));
    let dropped = format!(
        "{} expired, {} above -I, {} evicted to fit -m, {} in damaged blocks",
        r.expired, r.too_large, r.evicted, r.damaged
    );
    match &r.problem {
        None => tracing::info!(
            role = "server",
            "memory file {}: loaded {} items in {} ms{age} ({dropped})",
            path.display(),
            r.loaded,
            r.elapsed.as_millis()
        ),
        Some(why) => tracing::warn!(
            role = "server",
            "memory file {}: {why}; kept {} items ({dropped})",
            path.display(),
            r.loaded
        ),
    }
    Ok(())
}

/// The accept loop and connections on one kind of listener: one monomorphic
/// copy of the connection loop per kind, so reads and writes are direct
/// calls on the stream.
async fn serve<L: Accept>(
    listener: L,
    serve_cfg: ServeConfig,
    shared: Arc<Shared>,
    shutdown: Shutdown,
) -> std::io::Result<()>
where
    L::Stream: conn_table::Peer,
{
    use conn_table::Peer;
    let threads = shared.cfg.threads;
    let conns = shared.conns.clone();
    match shared.cfg.tls.clone() {
        None => {
            serve_pinned(listener, serve_cfg, conns, shutdown, threads, move |stream, sd| {
                connection::handle(stream, shared.clone(), sd)
            })
            .await
        }
        // The handshake runs in the connection's own task on its worker, so
        // a slow or hostile one delays nobody else; it is bounded in time,
        // and a failure closes the connection without a word (memcached's
        // OpenSSL resets it).
        Some(tls) => {
            serve_pinned(listener, serve_cfg, conns, shutdown, threads, move |stream: L::Stream, sd| {
                let (shared, tls) = (shared.clone(), tls.clone());
                async move {
                    let peer = stream.describe_peer();
                    if let Some(stream) = tls.accept(stream, || peer).await {
                        connection::handle(stream, shared, sd).await;
                    }
                }
            })
            .await
        }
    }
}

/// Reclaims expired items in small steps so memory of dead items comes back
/// without a long pause.
async fn sweep(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(shared.cfg.sweep_interval);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        // Bounded work per tick; the store walks its shards incrementally.
        // `lru_crawler disable` pauses it, as it pauses memcached's crawler.
        // memcached's LRU maintainer frees dead items at its LRU tails in
        // the background and counts them `reclaimed`; this sweep plays its
        // part. `lru_crawler disable` pauses it.
        if shared.settings.lru_crawler.load(std::sync::atomic::Ordering::Relaxed) {
            shared.store.reclaim_expired(10_000);
        }
    }
}

/// The listener's descriptor, for `stats conns`.
fn listener_fd(l: &Listener) -> i32 {
    use std::os::fd::AsRawFd;
    match l {
        Listener::Tcp(l) => l.as_raw_fd(),
        Listener::Unix(l) => l.as_raw_fd(),
    }
}

/// memcached's text for a listening address (`tcp:IP:PORT`, `unix:PATH`).
fn listener_text(l: &Listener) -> String {
    match l {
        Listener::Tcp(l) => match l.local_addr() {
            Ok(std::net::SocketAddr::V6(a)) => format!("tcp6:{a}"),
            Ok(a) => format!("tcp:{a}"),
            Err(_) => "tcp:unknown".into(),
        },
        Listener::Unix(l) => format!("unix:{}", l.path().display()),
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
