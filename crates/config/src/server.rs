//! `servers:` entries (`conf_add_server`, nc_conf.c): `host:port:weight
//! [name]` or `/unix/path:weight [name]`, read from the end.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ErrorKind, Quoted};
use crate::listen::MAX_UNIX_PATH;
use crate::number;

/// The port whose servers are named by host alone, "for backward
/// compatibility with libmemcached" (`CONF_DEFAULT_KETAMA_PORT`).
pub const KETAMA_PORT: u16 = memshard_ring::server::LIBMEMCACHED_PORT;

/// The format twemproxy names in its server error messages.
const FORMAT: &str = "\"hostname:port:weight [name]\"";

/// Where a backend server is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    /// A host name or IP literal and a port. The host is kept exactly as
    /// written; it is resolved by the proxy, not here (twemproxy resolves
    /// lazily on every new connection).
    Tcp {
        /// The host as written (an unbracketed IPv6 literal is fine).
        host: String,
        /// The TCP port, 1..=65535.
        port: u16,
    },
    /// A unix socket path (the entry started with `/`).
    Unix {
        /// The socket path.
        path: PathBuf,
    },
}

impl ServerAddr {
    /// The unix socket path, for a unix server.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            ServerAddr::Unix { path } => Some(path),
            ServerAddr::Tcp { .. } => None,
        }
    }
}

impl fmt::Display for ServerAddr {
    /// `host:port`, or the socket path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ServerAddr::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

/// One `servers:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerEntry {
    addr: ServerAddr,
    weight: u32,
    name: Option<String>,
    ring_name: String,
    text: String,
    line: usize,
}

impl ServerEntry {
    /// Parses one entry as twemproxy does, for callers outside a file (the
    /// line is reported as 1).
    pub fn parse(text: &str) -> Result<ServerEntry, ConfigError> {
        parse(text, 1)
    }

    /// A server found by discovery rather than written: `host:port`,
    /// weight 1, named `name` on the ring (line 0: it is in no file).
    pub(crate) fn discovered(host: &str, port: u16, name: String) -> ServerEntry {
        ServerEntry {
            addr: ServerAddr::Tcp { host: host.to_string(), port },
            weight: 1,
            text: format!("{host}:{port}:1 {name}"),
            ring_name: name.clone(),
            name: Some(name),
            line: 0,
        }
    }

    /// Where the server is reached.
    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// The weight, at least 1 (at most `i32::MAX`).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The optional name after the last space (`10.0.0.1:11211:1 shard0`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The server's identity, twemproxy's `server->name`: the string hashed
    /// onto the ketama ring, the stats key and what duplicates are judged
    /// by. In order of precedence:
    ///
    /// - the explicit name, when one is given;
    /// - the host alone when the port is 11211 (`cache-0.mc:11211:1` is
    ///   `cache-0.mc`);
    /// - otherwise `host:port` with both as written (`10.0.0.1:011212:1`
    ///   is `10.0.0.1:011212`);
    /// - for a unix socket, the path followed by a colon: `/tmp/mc.sock:`.
    pub fn ring_name(&self) -> &str {
        &self.ring_name
    }

    /// The entry as written in the file.
    pub fn as_written(&self) -> &str {
        &self.text
    }

    /// The 1-based line of the entry in the configuration.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// twemproxy's string order (`string_compare`): shorter first, then
/// bytewise. Servers and pools are sorted this way.
pub(crate) fn twemproxy_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Parses a `servers:` element found at `line`.
///
/// The walk from the end mirrors `conf_add_server`: the last space starts
/// the optional name, then the last `:` starts the weight, then (TCP only)
/// the last `:` starts the port. A TCP host may itself contain colons (an
/// IPv6 literal); a unix path may not, because the port search would find
/// them and twemproxy then rejects the format.
pub(crate) fn parse(text: &str, line: usize) -> Result<ServerEntry, ConfigError> {
    let invalid_format = || {
        let why = format!("has an invalid {FORMAT} or \"/path/unix_socket:weight [name]\" format string");
        error(line, text, &why)
    };
    let unix = text.starts_with('/');
    let (rest, name) = match text.rsplit_once(' ') {
        Some((rest, name)) => (rest, Some(name)),
        None => (text, None),
    };
    let (addr_part, weight_text) = rest.rsplit_once(':').ok_or_else(invalid_format)?;
    let (host, port_text) = match (unix, addr_part.rsplit_once(':')) {
        (true, None) => (addr_part, None),
        (false, Some((host, port))) if !host.contains('\0') => (host, Some(port)),
        _ => return Err(invalid_format()),
    };

    let weight = match number::parse(weight_text) {
        Some(0) => return Err(error(line, addr_part, &format!("has a zero weight in {FORMAT} format string"))),
        Some(w) => w,
        None => {
            let why = format!("has an invalid weight {} in {FORMAT} format string", Quoted(weight_text));
            return Err(error(line, addr_part, &why));
        }
    };

    let addr = match port_text {
        None => {
            if host.len() > MAX_UNIX_PATH || host.contains('\0') {
                let why = format!("has an invalid unix socket path (at most {MAX_UNIX_PATH} bytes, no NUL)");
                return Err(error(line, addr_part, &why));
            }
            ServerAddr::Unix { path: PathBuf::from(host) }
        }
        Some(port_text) => {
            let port = number::parse(port_text).and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0);
            let Some(port) = port else {
                return Err(error(line, addr_part, &format!("has an invalid port in {FORMAT} format string")));
            };
            // twemproxy accepts an empty host and fails on every request;
            // refusing it here turns a silent outage into a load error.
            if host.is_empty() {
                return Err(error(line, addr_part, "has an empty host name"));
            }
            ServerAddr::Tcp { host: host.to_owned(), port }
        }
    };

    // An explicit but empty name only comes from a quoted entry ending in a
    // space. twemproxy would hash such servers under "", so refuse it.
    if name == Some("") {
        return Err(error(line, text, "has an empty name after the last space"));
    }
    let port = match &addr {
        ServerAddr::Tcp { port, .. } => port_text.map(|text| (*port, text)),
        ServerAddr::Unix { .. } => None,
    };
    let ring_name = memshard_ring::server::twemproxy_name(name, host, port);

    Ok(ServerEntry { addr, weight, name: name.map(str::to_owned), ring_name, text: text.to_owned(), line })
}

fn error(line: usize, what: &str, why: &str) -> ConfigError {
    ConfigError::new(ErrorKind::Directive, line, format!("directive \"servers\": server {} {why}", Quoted(what)))
}

/// `conf_validate_server`: at least one server, no two with the same ring
/// name; returns them in twemproxy's sorted order.
pub(crate) fn check_servers(
    pool: &str,
    line: usize,
    mut servers: Vec<ServerEntry>,
) -> Result<Vec<ServerEntry>, ConfigError> {
    if servers.is_empty() {
        return Err(ConfigError::new(ErrorKind::Validation, line, format!("pool {} has no servers", Quoted(pool))));
    }
    // Ties keep file order, so the entry reported is the later one.
    servers.sort_by(|a, b| twemproxy_order(a.ring_name(), b.ring_name()).then(a.line().cmp(&b.line())));
    if let Some(pair) = servers.windows(2).find(|w| w[0].ring_name() == w[1].ring_name()) {
        return Err(ConfigError::new(
            ErrorKind::Validation,
            pair[1].line(),
            format!(
                "pool {} has servers with same name {} ({} on line {} and {})",
                Quoted(pool),
                Quoted(pair[1].ring_name()),
                Quoted(pair[0].as_written()),
                pair[0].line(),
                Quoted(pair[1].as_written())
            ),
        ));
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> ServerEntry {
        parse(text, 1).unwrap()
    }

    #[test]
    fn naming_rule() {
        assert_eq!(ok("sharded-memcache-0.memcache:11211:1").ring_name(), "sharded-memcache-0.memcache");
        assert_eq!(ok("127.0.0.1:11212:1").ring_name(), "127.0.0.1:11212");
        assert_eq!(ok("127.0.0.1:011211:1").ring_name(), "127.0.0.1");
        assert_eq!(ok("127.0.0.1:011212:1").ring_name(), "127.0.0.1:011212");
        assert_eq!(ok("127.0.0.1:11211:3 shard0").ring_name(), "shard0");
        assert_eq!(ok("/tmp/mc.sock:1").ring_name(), "/tmp/mc.sock:");
        assert_eq!(ok("/tmp/mc.sock:2 a").ring_name(), "a");
        assert_eq!(ok("::1:11212:1").addr(), &ServerAddr::Tcp { host: "::1".into(), port: 11212 });
    }

    #[test]
    fn refusals() {
        for bad in ["127.0.0.1:11211", "127.0.0.1:11211:0", "127.0.0.1::1", "127.0.0.1:0:1", "/tmp/a:b:1", ":11211:1"] {
            assert!(parse(bad, 1).is_err(), "{bad}");
        }
        assert!(parse("127.0.0.1:11211:1 my name", 1).unwrap_err().reason().contains("invalid weight \"1 my\""));
    }
}
