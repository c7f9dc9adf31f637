//! Server names, never pinned IPs.
//!
//! A unix-socket server has nothing to resolve: its path is its only
//! address, its generation never changes, and no lookup task runs for it.
//!
//! Each TCP server keeps the name it was configured with; the ring is keyed
//! by that name (twemproxy's server identity), so an address change moves no
//! key. What changes is where the server's connections go: every
//! [`Target`] holds the addresses the last good lookup gave for its name
//! (connecting tries them in order, as connecting to the name would) and a
//! *generation* bumped whenever that set of addresses changes. Backend
//! connections remember the generation they were made at and are dropped
//! (not interrupted: requests already on them finish) once it is stale.
//!
//! This file is the lookup and what a target remembers of it; when lookups
//! happen is `refresh`'s. They happen in three places, all through
//! `refresh::refresh` so they agree:
//!
//! - `refresh::run`: per pool, every `dns_refresh_interval`, each name (IP
//!   literals are never looked up);
//! - connecting, when no address is known yet, when the refresh is off
//!   (twemproxy's behaviour: resolve on each new connection), and on a
//!   reconnect after a failure — unless the name's last lookup failed, when
//!   the background task is the one retrying and the request path does not
//!   wait on a resolver known to be down;
//! - the prober, before probing an ejected server.
//!
//! A failed or empty lookup keeps the last good addresses (logged once at
//! warn, not on every attempt). The lookup itself is the system's
//! (getaddrinfo: `/etc/hosts`, then `/etc/resolv.conf`) unless the proxy was
//! given DNS servers (`--dns-server`), which are then asked directly.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use memshard_client::{Client, ClientConfig, ClientError};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Longest one lookup may take: a resolver that is down must not stall a
/// connect (or a refresh round) for getaddrinfo's own retries.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The addresses one name resolved to, in the order to try them.
pub(crate) type Addrs = Arc<[SocketAddr]>;

/// Where to connect one server now.
pub(crate) enum Dest {
    /// A TCP server's addresses, tried in order.
    Tcp(Addrs),
    /// A unix-socket server's path.
    Unix(Arc<Path>),
}

impl Dest {
    /// Opens one pipelined connection (the connect bounded by
    /// `cfg.connect_timeout`), over TLS with `tls` (its configuration and
    /// the name to check).
    pub(crate) async fn connect(
        &self,
        cfg: ClientConfig,
        tls: &Option<(Arc<memshard_tls::ClientTls>, String)>,
    ) -> Result<Client, ClientError> {
        match self {
            Dest::Tcp(addrs) => match tls {
                None => Client::connect_with(&addrs[..], cfg).await,
                Some((tls, name)) => Client::connect_tls_with(&addrs[..], tls, name, cfg).await,
            },
            Dest::Unix(path) => Client::connect_unix_with(path, cfg).await,
        }
    }
}

/// How names are turned into addresses.
pub(crate) enum Resolver {
    /// getaddrinfo through tokio: `/etc/hosts` and `/etc/resolv.conf` (and
    /// nsswitch) mean what they mean to every other program on the host.
    /// SRV records, which getaddrinfo cannot ask for, are asked of
    /// `/etc/resolv.conf`'s servers (with its search list), by a DNS client
    /// made on first use.
    System(OnceLock<Box<TokioResolver>>),
    /// The DNS servers given on the command line, asked directly (UDP, TCP
    /// on failure or truncation), A then AAAA. `/etc/hosts` is not read:
    /// naming servers means those servers answer.
    Dns(Box<TokioResolver>),
}

impl Resolver {
    /// The system resolver when `servers` is empty, else a DNS client
    /// asking `servers`.
    pub(crate) fn new(servers: &[SocketAddr]) -> Resolver {
        if servers.is_empty() {
            return Resolver::System(OnceLock::new());
        }
        let mut group = Vec::with_capacity(servers.len() * 2);
        for &addr in servers {
            group.push(NameServerConfig::new(addr, Protocol::Udp));
            group.push(NameServerConfig::new(addr, Protocol::Tcp));
        }
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let resolver = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(options(ResolverOpts::default()))
            .build();
        Resolver::Dns(Box::new(resolver))
    }

    /// The SRV records of `name` as (target, port), in the answer's order.
    /// A relative `name` goes through the search list of /etc/resolv.conf
    /// (system resolver; `--dns-server` has none).
    /// An answer with no record is an empty list; a failed lookup an error.
    pub(crate) async fn srv(&self, name: &str) -> io::Result<Vec<(String, u16)>> {
        let resolver = match self {
            Resolver::Dns(r) => r,
            Resolver::System(r) => match r.get() {
                Some(r) => r,
                None => {
                    let (config, opts) = hickory_resolver::system_conf::read_system_conf()
                        .map_err(|e| io::Error::other(format!("cannot read /etc/resolv.conf: {e}")))?;
                    let built = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                        .with_options(options(opts))
                        .build();
                    r.get_or_init(|| Box::new(built))
                }
            },
        };
        // As written: a final dot makes it absolute, a short relative name
        // goes through the search list (a pod's namespace).
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.srv_lookup(name))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "SRV lookup timed out"))?;
        match found {
            Ok(records) => Ok(records.iter().map(|r| (r.target().to_utf8(), r.port())).collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// Every address of `host`, with `port`; an error when there are none.
    async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, async {
            match self {
                Resolver::System(_) => Ok(tokio::net::lookup_host((host, port)).await?.collect::<Vec<_>>()),
                Resolver::Dns(r) => match r.lookup_ip(host).await {
                    Ok(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
                    Err(e) => Err(io::Error::other(e.to_string())),
                },
            }
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "lookup timed out"))??;
        if found.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
        }
        Ok(found)
    }
}

/// The lookup options of every DNS client the proxy makes: short timeouts,
/// TCP when UDP fails or is truncated (a large SRV answer), and no cache.
fn options(mut opts: ResolverOpts) -> ResolverOpts {
    // Two tries within the bound: one lost datagram is not a failed lookup.
    opts.timeout = LOOKUP_TIMEOUT / 2;
    opts.attempts = 2;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.try_tcp_on_error = true;
    // The proxy keeps its own last good answers; hickory's cache would only
    // hide a change for the record's TTL past `dns_refresh_interval`.
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    opts
}

/// Where one server is: its configured name and its last good addresses,
/// or its unix socket path.
pub(crate) struct Target {
    host: String,
    port: u16,
    /// An IP literal or a unix socket path: the address is fixed and never
    /// looked up.
    literal: bool,
    /// The socket path of a unix-socket server.
    path: Option<Arc<Path>>,
    /// Last good addresses (empty: none yet), with their generation. Read
    /// on connect only.
    current: Mutex<(Addrs, u64)>,
    /// Copy of the generation, read on every request (one atomic load).
    generation: AtomicU64,
    /// The last lookup failed (so the failure is logged once).
    failing: AtomicBool,
}

impl Target {
    /// A server configured as `host:port`.
    pub(crate) fn new(host: &str, port: u16) -> Target {
        let ip = host.parse::<IpAddr>().ok();
        Target {
            host: host.to_string(),
            port,
            literal: ip.is_some(),
            path: None,
            current: Mutex::new((ip.map(|ip| SocketAddr::new(ip, port)).into_iter().collect(), 0)),
            generation: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    /// A server configured as a unix socket path.
    pub(crate) fn unix(path: &Path) -> Target {
        Target {
            host: path.display().to_string(),
            port: 0,
            literal: true,
            path: Some(path.into()),
            current: Mutex::new((Arc::from([]), 0)),
            generation: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    /// Bumped each time the addresses change: connections made at an older
    /// generation go to an old address.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The last good addresses and their generation; `None` before the
    /// first good lookup.
    pub(crate) fn current(&self) -> Option<(Addrs, u64)> {
        let cur = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (!cur.0.is_empty()).then(|| (cur.0.clone(), cur.1))
    }

    /// Takes a successful lookup. The same addresses in another order are no
    /// change (round-robin DNS must not flap connections); a different set
    /// replaces the old one and bumps the generation. Returns `(old, new)`
    /// on a change.
    fn adopt(&self, found: &[SocketAddr]) -> Option<(Addrs, Addrs)> {
        let mut cur = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let same = cur.0.len() == found.len() && found.iter().all(|a| cur.0.contains(a));
        if same || found.is_empty() {
            return None;
        }
        let new: Addrs = found.into();
        let old = std::mem::replace(&mut cur.0, new.clone());
        cur.1 += 1;
        self.generation.store(cur.1, Ordering::Release);
        Some((old, new))
    }
    /// An IP literal or a unix socket path: never looked up.
    pub(crate) fn is_literal(&self) -> bool {
        self.literal
    }

    /// Did the last lookup fail?
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// The name as configured (a unix socket's path).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The socket path of a unix-socket server.
    pub(crate) fn unix_path(&self) -> Option<&Arc<Path>> {
        self.path.as_ref()
    }

    /// Looks the name up now through `resolver` and records the outcome: a
    /// different set of addresses bumps the generation; a failure keeps the
    /// last good addresses.
    pub(crate) async fn look_up(&self, resolver: &Resolver) -> Lookup {
        if self.literal {
            return Lookup::Fixed;
        }
        match resolver.lookup(&self.host, self.port).await {
            Ok(found) => {
                let recovered = self.failing.swap(false, Ordering::Relaxed);
                match self.adopt(&found) {
                    Some((old, new)) => Lookup::Changed { old, new, recovered },
                    None => Lookup::Same { recovered },
                }
            }
            Err(error) => {
                let first = !self.failing.swap(true, Ordering::Relaxed);
                Lookup::Failed { error, first, last: self.current().map(|(a, _)| a) }
            }
        }
    }
}

/// What one lookup of a target's name came to.
pub(crate) enum Lookup {
    /// An IP literal or a unix socket: nothing was looked up.
    Fixed,
    /// The same addresses as before (`recovered`: the previous lookup failed).
    Same { recovered: bool },
    /// Other addresses than before (`old` is empty on the first good lookup).
    Changed { old: Addrs, new: Addrs, recovered: bool },
    /// The lookup failed (`first`: the previous one had not); `last` are the
    /// addresses kept.
    Failed { error: io::Error, first: bool, last: Option<Addrs> },
}
