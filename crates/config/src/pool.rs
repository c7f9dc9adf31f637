//! One pool: its twemproxy keys with their defaults, and memshard's
//! extension keys kept apart.

use std::path::PathBuf;
use std::time::Duration;

use crate::listen::Listen;
use crate::server::ServerEntry;
use memshard_ring::{Distribution, HashKind};

/// `backlog:` default (`CONF_DEFAULT_LISTEN_BACKLOG`).
pub const DEFAULT_BACKLOG: u32 = 512;
/// `server_connections:` default (`CONF_DEFAULT_SERVER_CONNECTIONS`).
pub const DEFAULT_SERVER_CONNECTIONS: u32 = 1;
/// `server_retry_timeout:` default, 30 000 ms (`CONF_DEFAULT_SERVER_RETRY_TIMEOUT`).
pub const DEFAULT_SERVER_RETRY_TIMEOUT: Duration = Duration::from_millis(30_000);
/// `server_failure_limit:` default (`CONF_DEFAULT_SERVER_FAILURE_LIMIT`).
pub const DEFAULT_SERVER_FAILURE_LIMIT: u32 = 2;
/// `dns_refresh_interval:` default (memshard extension), 5000 ms.
pub const DEFAULT_DNS_REFRESH_INTERVAL: Duration = Duration::from_millis(5_000);
/// Default `ring_change_settle`.
pub const DEFAULT_RING_CHANGE_SETTLE: Duration = Duration::from_millis(5_000);
/// Default `server_restart_timeout`.
pub const DEFAULT_SERVER_RESTART_TIMEOUT: Duration = Duration::from_millis(30_000);

/// A pool as configured: every key of a twemproxy 0.5.0 pool, with
/// twemproxy's defaults, plus memshard's [`Extensions`].
///
/// Keys read but not kept:
///
/// - `redis` (default `false`): `redis: true` is refused, memshard proxies
///   memcached only; `redis: false` is accepted.
/// - `redis_auth`: refused, as twemproxy refuses it on a memcached pool
///   ("is only valid for a redis pool").
/// - `redis_db` (default 0): refused. twemproxy ignores it on a memcached
///   pool; memshard refuses it because it can only mean the file was meant
///   for a redis pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The 1-based line of the pool's name, for messages about the pool.
    pub line: usize,
    /// `listen:` (required): where clients connect.
    pub listen: Listen,
    /// `hash:` (default `fnv1a_64`): the key hash function.
    pub hash: HashKind,
    /// `hash_tag:` (default none): two bytes, e.g. `{}`; when set, only the
    /// part of the key between them is hashed (if both are present).
    pub hash_tag: Option<[u8; 2]>,
    /// `distribution:` (default `ketama`): how keys map to servers.
    pub distribution: Distribution,
    /// `timeout:` in ms (twemproxy default -1): the per-request server
    /// timeout. `None` means wait forever, which is both the default and
    /// what `timeout: 0` means in twemproxy.
    pub timeout: Option<Duration>,
    /// `backlog:` (default 512): the listen(2) backlog.
    pub backlog: u32,
    /// `preconnect:` (default `false`): connect to every server at start-up;
    /// failures are only logged.
    pub preconnect: bool,
    /// `server_connections:` (default 1, at least 1): connections kept per
    /// server.
    pub server_connections: u32,
    /// `auto_eject_hosts:` (default `false`): take a server out of the ring
    /// after `server_failure_limit` consecutive failures.
    pub auto_eject_hosts: bool,
    /// `server_retry_timeout:` in ms (default 30 000): how long an ejected
    /// server stays out.
    pub server_retry_timeout: Duration,
    /// `server_failure_limit:` (default 2) as written. twemproxy ejects when
    /// the failure count reaches it, so 0 behaves like 1: use
    /// [`PoolConfig::effective_server_failure_limit`].
    pub server_failure_limit: u32,
    /// `client_connections:` (default 0 = unlimited): the most client
    /// connections the pool accepts at once.
    ///
    /// **memshard enforces it; twemproxy does not.** twemproxy 0.5.0 parses
    /// the key and then overwrites it with 0 (nc_conf.c, issue #477), so a
    /// file written for twemproxy with this key set will start refusing
    /// clients above the limit under memshard.
    pub client_connections: u32,
    /// `tcpkeepalive:` (default `false`): SO_KEEPALIVE on accepted client
    /// sockets (that is what twemproxy's code does, whatever its README says).
    pub tcpkeepalive: bool,
    /// `reuseport:` (default `false`): SO_REUSEPORT on the listen socket.
    /// This key is on twemproxy's master branch, after 0.5.0: nutcracker
    /// 0.5.0 itself rejects it as unknown.
    pub reuseport: bool,
    /// `servers:` (required, at least one): in twemproxy's order, sorted by
    /// [`ServerEntry::ring_name`] (shorter first, then bytewise). That order
    /// is the server index `modula` uses and the order of the stats.
    pub servers: Vec<ServerEntry>,
    /// memshard's own keys, which twemproxy does not know.
    pub extensions: Extensions,
}

impl PoolConfig {
    /// A pool listening on `listen` with every other key at its default and
    /// no servers yet.
    pub fn with_defaults(listen: Listen) -> PoolConfig {
        PoolConfig {
            line: 1,
            listen,
            hash: HashKind::default(),
            hash_tag: None,
            distribution: Distribution::default(),
            timeout: None,
            backlog: DEFAULT_BACKLOG,
            preconnect: false,
            server_connections: DEFAULT_SERVER_CONNECTIONS,
            auto_eject_hosts: false,
            server_retry_timeout: DEFAULT_SERVER_RETRY_TIMEOUT,
            server_failure_limit: DEFAULT_SERVER_FAILURE_LIMIT,
            client_connections: 0,
            tcpkeepalive: false,
            reuseport: false,
            servers: Vec::new(),
            extensions: Extensions::default(),
        }
    }

    /// The failure count that ejects a server: `server_failure_limit`, with
    /// 0 treated as 1 as twemproxy does (it compares `count >= limit` after
    /// counting the failure).
    pub fn effective_server_failure_limit(&self) -> u32 {
        self.server_failure_limit.max(1)
    }

    /// The client connection limit, `None` when unlimited
    /// (`client_connections: 0`).
    pub fn client_connection_limit(&self) -> Option<u32> {
        (self.client_connections != 0).then_some(self.client_connections)
    }
}

/// memshard extension keys: optional, never needed by a twemproxy file.
///
/// nutcracker rejects a file that uses them (`directive "..." is unknown`),
/// so a file meant for both should leave them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    /// `dns_refresh_interval:` in ms (default 5000): how often the proxy
    /// re-resolves server host names in the background, so a rescheduled
    /// pod's new address is picked up without waiting for a connection to
    /// fail. `None` (`dns_refresh_interval: 0`) turns the refresh off,
    /// leaving twemproxy's behaviour: resolve on each new connection.
    pub dns_refresh_interval: Option<Duration>,
    /// `server_probe:` (default `true`): an ejected server returns to the
    /// ring only after a health probe succeeds. `false` restores
    /// twemproxy's behaviour: it returns when `server_retry_timeout`
    /// expires, dead or alive.
    pub server_probe: bool,
    /// `flush_on_return:` (default `true`): a server that was ejected is
    /// sent `flush_all` after its probe succeeds and before it rejoins the
    /// ring. While it was out, its keys were written on other servers; the
    /// values it still holds are older, and without the flush the ring's
    /// return would serve them again. Likewise, before a reload or a
    /// discovery changes the ring, the keys about to move to a server it
    /// keeps are deleted on it (it may hold copies from an earlier time it
    /// owned them). `false` keeps twemproxy's behaviour (a server serves
    /// whatever it holds). Needs `server_probe`.
    pub flush_on_return: bool,
    /// `discovery:` (instead of `servers:`): where the pool's servers are
    /// found (`dnssrv+NAME`: DNS SRV records, looked up every
    /// `dns_refresh_interval`). `None`: the `servers:` list.
    pub discovery: Option<crate::Discovery>,
    /// `replicas:` (default 1): how many servers own each key. A key's
    /// owners are the server twemproxy puts it on, then the next distinct
    /// servers clockwise on the ketama continuum (modula: the next servers
    /// in order). Writes reach every live owner before the client is
    /// answered; reads go to the first live owner, then the next on a miss
    /// or a failure. 1 is twemproxy's behaviour, bit for bit. At most the
    /// number of servers; not with `distribution: random`.
    pub replicas: u32,
    /// `server_restart_timeout:` in ms (default 30000): how long a server
    /// that said goodbye (`memshard server -e` at a graceful stop: a planned
    /// restart, it comes back with its items) keeps its keys. Meanwhile its
    /// failures do not count towards ejection: requests for its keys fail
    /// fast instead of moving to other servers, so when it returns nothing
    /// was written elsewhere and its items are still the latest. Past the
    /// timeout it is ejected as any failing server. 0 treats a goodbye as a
    /// crash. A replicated pool ignores goodbyes (the other owners serve).
    pub server_restart_timeout: Duration,
    /// `ring_change_settle:` in ms (default 5000): for this long after the
    /// ring changes (a reload, a discovery, an ejection, a return), a key
    /// that moved is read from its new server first and, on a miss, from
    /// the one it left, and its writes reach both. Proxies see a change at
    /// slightly different moments; while one still uses the old ring and
    /// another the new one, both keep a moved key's latest value where the
    /// other looks. Set it above the time all proxies take to see a change
    /// (a ConfigMap reaches pods within about a minute). 0 turns it off.
    /// Not used by replicated pools, nor with `distribution: random`.
    pub ring_change_settle: Duration,
    /// `tls_cert_file:` (with `tls_key_file:`, `tls_client_ca_file:`): the
    /// pool's clients speak TLS to it. `None`: plaintext (twemproxy).
    pub tls: Option<TlsListen>,
    /// `server_tls: true` (with `server_tls_ca_file:` and the optional
    /// `server_tls_name:`, `server_tls_cert_file:`, `server_tls_key_file:`):
    /// the proxy speaks TLS to the pool's servers.
    pub server_tls: Option<TlsToServers>,
}

/// TLS towards a pool's clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    /// `tls_cert_file:` the proxy's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// `tls_key_file:` its private key (PEM); absent: in `cert_file`.
    pub key_file: Option<PathBuf>,
    /// `tls_client_ca_file:` clients must present a certificate this CA
    /// signed (mutual TLS); absent: no client certificate is asked for.
    pub client_ca_file: Option<PathBuf>,
}

/// TLS towards a pool's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsToServers {
    /// `server_tls_ca_file:` the CA the servers' certificates must chain to.
    pub ca_file: PathBuf,
    /// `server_tls_name:` the name every server's certificate is checked
    /// against; absent: each server's host as written in `servers:`.
    pub name: Option<String>,
    /// `server_tls_cert_file:` the proxy's own certificate for servers that
    /// require one (memcached's `ssl_verify_mode=2`).
    pub cert_file: Option<PathBuf>,
    /// `server_tls_key_file:` its key; absent: in `server_tls_cert_file`.
    pub key_file: Option<PathBuf>,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            dns_refresh_interval: Some(DEFAULT_DNS_REFRESH_INTERVAL),
            server_probe: true,
            flush_on_return: true,
            discovery: None,
            replicas: 1,
            server_restart_timeout: DEFAULT_SERVER_RESTART_TIMEOUT,
            ring_change_settle: DEFAULT_RING_CHANGE_SETTLE,
            tls: None,
            server_tls: None,
        }
    }
}
