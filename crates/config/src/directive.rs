//! Reading a pool's directives (`conf_parse` and the `conf_set_*`
//! handlers) and checking the pool (`conf_validate_pool`).
//!
//! twemproxy reads every pool of the file before it validates any, so
//! parsing ([`PoolBuilder::parse`]) and validating ([`PoolBuilder::finish`])
//! are separate steps, run in that order over all pools.

use std::time::Duration;

use crate::discovery::Discovery;
use crate::error::{ConfigError, ErrorKind, Quoted, directive as directive_error};
use crate::listen::{self, Listen};
use crate::number;
use crate::pool::{PoolConfig, TlsListen, TlsToServers};
use crate::server::{self, ServerEntry, check_servers};
use crate::yaml::{RawPool, Scalar};
use memshard_ring::{Distribution, HashKind};

/// The message used for every refusal of a redis pool.
const NO_REDIS: &str = "redis pools are not supported: memshard proxies memcached only";

/// A pool directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Listen,
    Hash,
    HashTag,
    Distribution,
    Timeout,
    Backlog,
    ClientConnections,
    Redis,
    TcpKeepalive,
    RedisAuth,
    RedisDb,
    Preconnect,
    AutoEjectHosts,
    ServerConnections,
    ServerRetryTimeout,
    ServerFailureLimit,
    Servers,
    Reuseport,
    DnsRefreshInterval,
    ServerProbe,
    FlushOnReturn,
    Discovery,
    Replicas,
    ServerRestartTimeout,
    RingChangeSettle,
    TlsCertFile,
    TlsKeyFile,
    TlsClientCaFile,
    ServerTls,
    ServerTlsCaFile,
    ServerTlsName,
    ServerTlsCertFile,
    ServerTlsKeyFile,
}

/// The directives a pool may use and their names. The first block is
/// twemproxy 0.5.0's `conf_commands` table, then `reuseport` from its
/// master branch, then memshard's extensions.
const KEYS: &[(&str, Key)] = &[
    ("listen", Key::Listen),
    ("hash", Key::Hash),
    ("hash_tag", Key::HashTag),
    ("distribution", Key::Distribution),
    ("timeout", Key::Timeout),
    ("backlog", Key::Backlog),
    ("client_connections", Key::ClientConnections),
    ("redis", Key::Redis),
    ("tcpkeepalive", Key::TcpKeepalive),
    ("redis_auth", Key::RedisAuth),
    ("redis_db", Key::RedisDb),
    ("preconnect", Key::Preconnect),
    ("auto_eject_hosts", Key::AutoEjectHosts),
    ("server_connections", Key::ServerConnections),
    ("server_retry_timeout", Key::ServerRetryTimeout),
    ("server_failure_limit", Key::ServerFailureLimit),
    ("servers", Key::Servers),
    ("reuseport", Key::Reuseport),
    // memshard extensions
    ("dns_refresh_interval", Key::DnsRefreshInterval),
    ("server_probe", Key::ServerProbe),
    ("flush_on_return", Key::FlushOnReturn),
    ("discovery", Key::Discovery),
    ("replicas", Key::Replicas),
    ("server_restart_timeout", Key::ServerRestartTimeout),
    ("ring_change_settle", Key::RingChangeSettle),
    ("tls_cert_file", Key::TlsCertFile),
    ("tls_key_file", Key::TlsKeyFile),
    ("tls_client_ca_file", Key::TlsClientCaFile),
    ("server_tls", Key::ServerTls),
    ("server_tls_ca_file", Key::ServerTlsCaFile),
    ("server_tls_name", Key::ServerTlsName),
    ("server_tls_cert_file", Key::ServerTlsCertFile),
    ("server_tls_key_file", Key::ServerTlsKeyFile),
];

/// A value and the line it was written on.
#[derive(Debug, Clone, Copy)]
struct At<T> {
    value: T,
    line: usize,
}

/// A pool whose directives have been read but not yet validated. `None`
/// means the key was absent (twemproxy's `CONF_UNSET_*`).
#[derive(Debug)]
pub(crate) struct PoolBuilder {
    name: String,
    line: usize,
    seen: Vec<Key>,
    listen: Option<At<Listen>>,
    listen_text: String,
    hash: Option<HashKind>,
    hash_tag: Option<[u8; 2]>,
    distribution: Option<Distribution>,
    timeout: Option<u32>,
    backlog: Option<u32>,
    client_connections: Option<u32>,
    tcpkeepalive: Option<bool>,
    redis_auth: Option<usize>,
    redis_db: Option<usize>,
    preconnect: Option<bool>,
    auto_eject_hosts: Option<bool>,
    server_connections: Option<At<u32>>,
    server_retry_timeout: Option<u32>,
    server_failure_limit: Option<u32>,
    reuseport: Option<bool>,
    servers: Vec<ServerEntry>,
    dns_refresh_interval: Option<u32>,
    server_probe: Option<bool>,
    flush_on_return: Option<bool>,
    discovery: Option<At<Discovery>>,
    replicas: Option<At<u32>>,
    server_restart_timeout: Option<u32>,
    ring_change_settle: Option<u32>,
    /// The TLS keys, each with its line (checked together in `finish`).
    tls: Vec<(Key, At<String>)>,
    server_tls: Option<At<bool>>,
}

impl PoolBuilder {
    /// Reads a pool's directives in file order; the first bad one fails.
    pub(crate) fn parse(raw: &RawPool) -> Result<PoolBuilder, ConfigError> {
        // conf_push_scalar refuses every empty scalar, giving no message.
        if raw.name.text.is_empty() {
            return Err(ConfigError::new(ErrorKind::Directive, raw.name.line, "pool name is empty"));
        }
        let mut pool = PoolBuilder::new(&raw.name);
        for d in &raw.directives {
            if d.key.text.is_empty() {
                return Err(ConfigError::new(ErrorKind::Directive, d.key.line, "directive name is empty"));
            }
            // A sequence is handed to the handler one element at a time,
            // exactly as a scalar value would be.
            for value in d.value.scalars() {
                if value.text.is_empty() {
                    return Err(directive_error(value.line, &d.key.text, "has an empty value"));
                }
                pool.set(&d.key, value)?;
            }
        }
        Ok(pool)
    }

    fn new(name: &Scalar) -> PoolBuilder {
        PoolBuilder {
            name: name.text.clone(),
            line: name.line,
            seen: Vec::new(),
            listen: None,
            listen_text: String::new(),
            hash: None,
            hash_tag: None,
            distribution: None,
            timeout: None,
            backlog: None,
            client_connections: None,
            tcpkeepalive: None,
            redis_auth: None,
            redis_db: None,
            preconnect: None,
            auto_eject_hosts: None,
            server_connections: None,
            server_retry_timeout: None,
            server_failure_limit: None,
            reuseport: None,
            servers: Vec::new(),
            dns_refresh_interval: None,
            server_probe: None,
            flush_on_return: None,
            discovery: None,
            replicas: None,
            server_restart_timeout: None,
            ring_change_settle: None,
            tls: Vec::new(),
            server_tls: None,
        }
    }

    /// One `key: value` (`conf_handler`): duplicates are refused before the
    /// value is looked at, as twemproxy's handlers do.
    ///
    /// Errors about the key (unknown, duplicate) point at the key's line,
    /// errors about the value at the value's.
    fn set(&mut self, key: &Scalar, value: &Scalar) -> Result<(), ConfigError> {
        let (key_line, key) = (key.line, key.text.as_str());
        let Some(&(_, known)) = KEYS.iter().find(|(name, _)| *name == key) else {
            return Err(directive_error(key_line, key, "is unknown"));
        };
        // `servers` is a list: each element adds one server.
        if known != Key::Servers {
            if self.seen.contains(&known) {
                return Err(directive_error(key_line, key, "is a duplicate"));
            }
            self.seen.push(known);
        }
        let line = value.line;
        let text = value.text.as_str();
        let err = |why: String| directive_error(line, key, why);
        // twemproxy's handler messages for a name it does not know.
        let unknown = |what: &str| err(format!("value {} is not a valid {what}", Quoted(text)));
        match known {
            Key::Listen => {
                let listen = listen::parse(text).map_err(err)?;
                self.listen = Some(At { value: listen, line });
                self.listen_text = text.to_owned();
            }
            Key::Hash => self.hash = Some(text.parse().map_err(|_| unknown("hash"))?),
            Key::HashTag => {
                let tag: [u8; 2] = text.as_bytes().try_into().map_err(|_| {
                    err(format!("value {} is not a valid hash tag string with two characters", Quoted(text)))
                })?;
                self.hash_tag = Some(tag);
            }
            Key::Distribution => self.distribution = Some(text.parse().map_err(|_| unknown("distribution"))?),
            Key::Servers => self.servers.push(server::parse(text, line)?),
            Key::Redis => {
                if boolean(text).map_err(err)? {
                    let why = format!("{NO_REDIS} (directive \"redis\" is true)");
                    return Err(ConfigError::new(ErrorKind::Unsupported, line, why));
                }
            }
            // Checked with the whole pool, where twemproxy checks it.
            Key::RedisAuth => self.redis_auth = Some(line),
            Key::RedisDb => {
                number(text).map_err(err)?;
                self.redis_db = Some(line);
            }
            Key::TcpKeepalive => self.tcpkeepalive = Some(boolean(text).map_err(err)?),
            Key::Preconnect => self.preconnect = Some(boolean(text).map_err(err)?),
            Key::AutoEjectHosts => self.auto_eject_hosts = Some(boolean(text).map_err(err)?),
            Key::Reuseport => self.reuseport = Some(boolean(text).map_err(err)?),
            Key::ServerProbe => self.server_probe = Some(boolean(text).map_err(err)?),
            Key::FlushOnReturn => self.flush_on_return = Some(boolean(text).map_err(err)?),
            Key::Timeout => self.timeout = Some(number(text).map_err(err)?),
            Key::Backlog => self.backlog = Some(number(text).map_err(err)?),
            Key::ClientConnections => self.client_connections = Some(number(text).map_err(err)?),
            Key::ServerConnections => self.server_connections = Some(At { value: number(text).map_err(err)?, line }),
            Key::ServerRetryTimeout => self.server_retry_timeout = Some(number(text).map_err(err)?),
            Key::ServerFailureLimit => self.server_failure_limit = Some(number(text).map_err(err)?),
            Key::DnsRefreshInterval => self.dns_refresh_interval = Some(number(text).map_err(err)?),
            Key::Discovery => self.discovery = Some(At { value: Discovery::parse(text).map_err(err)?, line }),
            Key::Replicas => self.replicas = Some(At { value: number(text).map_err(err)?, line }),
            Key::ServerRestartTimeout => self.server_restart_timeout = Some(number(text).map_err(err)?),
            Key::RingChangeSettle => self.ring_change_settle = Some(number(text).map_err(err)?),
            Key::ServerTls => self.server_tls = Some(At { value: boolean(text).map_err(err)?, line }),
            Key::TlsCertFile
            | Key::TlsKeyFile
            | Key::TlsClientCaFile
            | Key::ServerTlsCaFile
            | Key::ServerTlsName
            | Key::ServerTlsCertFile
            | Key::ServerTlsKeyFile => self.tls.push((known, At { value: text.to_owned(), line })),
        }
        Ok(())
    }

    /// The raw `listen:` text and its line, which twemproxy compares to
    /// find pools sharing a listen address (`None` if missing).
    pub(crate) fn listen_text(&self) -> Option<(&str, usize)> {
        self.listen.as_ref().map(|l| (self.listen_text.as_str(), l.line))
    }

    /// The pool name and the line it is on.
    pub(crate) fn name(&self) -> (&str, usize) {
        (&self.name, self.line)
    }

    /// `conf_validate_pool`: applies defaults and checks the pool as a
    /// whole, in twemproxy's order.
    pub(crate) fn finish(self) -> Result<(String, PoolConfig), ConfigError> {
        let invalid = |line: usize, why: String| Err(ConfigError::new(ErrorKind::Validation, line, why));
        let Some(listen) = self.listen else {
            return invalid(self.line, format!("directive \"listen:\" is missing in pool {}", Quoted(&self.name)));
        };
        if let Some(At { value: 0, line }) = self.server_connections {
            return invalid(line, "directive \"server_connections:\" cannot be 0".to_owned());
        }
        if let Some(line) = self.redis_auth {
            return invalid(line, "directive \"redis_auth:\" is only valid for a redis pool".to_owned());
        }
        if let Some(line) = self.redis_db {
            return Err(ConfigError::new(
                ErrorKind::Unsupported,
                line,
                format!("directive \"redis_db:\" is only valid for a redis pool, and {NO_REDIS}"),
            ));
        }
        let distribution = self.distribution.unwrap_or_default();
        let replicas = match self.replicas {
            None => 1,
            Some(At { value: 0, line }) => return invalid(line, "directive \"replicas:\" cannot be 0".to_owned()),
            Some(At { value: r, line }) if r > 1 && distribution == Distribution::Random => {
                let why = format!(
                    "directive \"replicas: {r}\" needs a key's owners to be fixed, and \"distribution: random\" \
                     places each request anywhere; use ketama or modula"
                );
                return invalid(line, why);
            }
            // With discovery the count is known only at run time: a key
            // then has as many owners as there are servers, up to `r`.
            Some(At { value: r, line }) if self.discovery.is_none() && r as usize > self.servers.len() => {
                let why = format!(
                    "directive \"replicas: {r}\" is more than the {} servers of pool {}",
                    self.servers.len(),
                    Quoted(&self.name)
                );
                return invalid(line, why);
            }
            Some(At { value, .. }) => value,
        };
        let servers = match &self.discovery {
            // The servers come from DNS: a list as well would say two things.
            Some(d) if !self.servers.is_empty() => {
                let why =
                    format!("pool {} has both \"servers:\" and \"discovery:\"; use one of them", Quoted(&self.name));
                return invalid(d.line, why);
            }
            Some(_) => Vec::new(),
            None => check_servers(&self.name, self.line, self.servers)?,
        };

        let mut pool = PoolConfig::with_defaults(listen.value);
        pool.line = self.line;
        pool.hash = self.hash.unwrap_or_default();
        pool.hash_tag = self.hash_tag;
        pool.distribution = distribution;
        // twemproxy: unset is -1 (wait forever) and 0 also disables it.
        pool.timeout = self.timeout.filter(|&ms| ms != 0).map(millis);
        pool.backlog = self.backlog.unwrap_or(pool.backlog);
        pool.preconnect = self.preconnect.unwrap_or(pool.preconnect);
        pool.server_connections = self.server_connections.map_or(pool.server_connections, |s| s.value);
        pool.auto_eject_hosts = self.auto_eject_hosts.unwrap_or(pool.auto_eject_hosts);
        pool.server_retry_timeout = self.server_retry_timeout.map_or(pool.server_retry_timeout, millis);
        pool.server_failure_limit = self.server_failure_limit.unwrap_or(pool.server_failure_limit);
        pool.client_connections = self.client_connections.unwrap_or(pool.client_connections);
        pool.tcpkeepalive = self.tcpkeepalive.unwrap_or(pool.tcpkeepalive);
        pool.reuseport = self.reuseport.unwrap_or(pool.reuseport);
        pool.servers = servers;
        if let Some(ms) = self.dns_refresh_interval {
            pool.extensions.dns_refresh_interval = (ms != 0).then(|| millis(ms));
        }
        pool.extensions.server_probe = self.server_probe.unwrap_or(pool.extensions.server_probe);
        pool.extensions.flush_on_return = self.flush_on_return.unwrap_or(pool.extensions.flush_on_return);
        pool.extensions.discovery = self.discovery.map(|d| d.value);
        pool.extensions.replicas = replicas;
        if let Some(ms) = self.server_restart_timeout {
            pool.extensions.server_restart_timeout = millis(ms);
        }
        if let Some(ms) = self.ring_change_settle {
            pool.extensions.ring_change_settle = millis(ms);
        }
        (pool.extensions.tls, pool.extensions.server_tls) = tls_keys(&self.tls, self.server_tls)?;
        Ok((self.name, pool))
    }
}

/// The TLS keys of a pool, checked together: a key that only means
/// something beside another needs that one (`tls_key_file` beside
/// `tls_cert_file`, every `server_tls_*` beside `server_tls: true`).
fn tls_keys(
    keys: &[(Key, At<String>)],
    server_tls: Option<At<bool>>,
) -> Result<(Option<TlsListen>, Option<TlsToServers>), ConfigError> {
    let get = |k: Key| keys.iter().find(|(key, _)| *key == k).map(|(_, at)| at);
    let name_of = |k: Key| KEYS.iter().find(|(_, key)| *key == k).map_or("", |(name, _)| *name);
    let needs = |k: Key, other: &str| {
        let at = get(k).map_or(0, |a| a.line);
        Err(ConfigError::new(ErrorKind::Validation, at, format!("directive \"{}:\" needs \"{other}\"", name_of(k))))
    };
    let path = |k: Key| get(k).map(|a| std::path::PathBuf::from(&a.value));
    let listen = match get(Key::TlsCertFile) {
        Some(cert) => Some(TlsListen {
            cert_file: cert.value.clone().into(),
            key_file: path(Key::TlsKeyFile),
            client_ca_file: path(Key::TlsClientCaFile),
        }),
        None => {
            for k in [Key::TlsKeyFile, Key::TlsClientCaFile] {
                if get(k).is_some() {
                    return needs(k, "tls_cert_file:");
                }
            }
            None
        }
    };
    let to_servers = match server_tls {
        Some(At { value: true, line }) => {
            let Some(ca) = get(Key::ServerTlsCaFile) else {
                let why = "directive \"server_tls: true\" needs \"server_tls_ca_file:\" (the CA that signed the servers' certificates)";
                return Err(ConfigError::new(ErrorKind::Validation, line, why.to_owned()));
            };
            if get(Key::ServerTlsKeyFile).is_some() && get(Key::ServerTlsCertFile).is_none() {
                return needs(Key::ServerTlsKeyFile, "server_tls_cert_file:");
            }
            Some(TlsToServers {
                ca_file: ca.value.clone().into(),
                name: get(Key::ServerTlsName).map(|a| a.value.clone()),
                cert_file: path(Key::ServerTlsCertFile),
                key_file: path(Key::ServerTlsKeyFile),
            })
        }
        _ => {
            for k in [Key::ServerTlsCaFile, Key::ServerTlsName, Key::ServerTlsCertFile, Key::ServerTlsKeyFile] {
                if get(k).is_some() {
                    return needs(k, "server_tls: true");
                }
            }
            None
        }
    };
    Ok((listen, to_servers))
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// `conf_set_num`: a non-negative decimal (see [`number::parse`]).
fn number(text: &str) -> Result<u32, String> {
    number::parse(text).ok_or_else(|| {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            format!("value {} is not a number (it is above {})", Quoted(text), number::MAX)
        } else {
            format!("value {} is not a number", Quoted(text))
        }
    })
}

/// `conf_set_bool`: exactly `true` or `false`, nothing else (no `yes`,
/// `True`, `1`).
fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("value {} is not \"true\" or \"false\"", Quoted(text))),
    }
}
