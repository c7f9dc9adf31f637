//! Backend servers as the ring sees them: identity string, weight, and twemproxy's sort order.

use std::cmp::Ordering;

/// The port whose servers twemproxy identifies by host alone ("backward compatibility with
/// libmemcached", `CONF_DEFAULT_KETAMA_PORT`).
pub const LIBMEMCACHED_PORT: u16 = 11211;

/// One backend server of a pool, as twemproxy's `servers:` list describes it
/// (`host:port:weight [name]` or `/unix/path:weight [name]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// The optional name after the space. When present it alone is the server's identity, so the
    /// server can move to another address without moving any key.
    pub name: Option<String>,
    /// The host text exactly as configured (`127.0.0.1`, `memcached-0.memcached`, `127.1`), or
    /// the socket path for a unix-socket server. It is not normalised: `127.1` and `127.0.0.1` are
    /// different identities, as in twemproxy.
    pub host: String,
    /// The TCP port, or `None` for a unix-socket server.
    pub port: Option<u16>,
    /// The weight, ≥ 1: ketama gives the server a share of points proportional to it, modula
    /// repeats the server `weight` times, random ignores it.
    pub weight: u32,
}

impl ServerSpec {
    /// A TCP server without a name.
    pub fn tcp(host: impl Into<String>, port: u16, weight: u32) -> Self {
        ServerSpec { name: None, host: host.into(), port: Some(port), weight }
    }

    /// A unix-socket server without a name.
    pub fn unix(path: impl Into<String>, weight: u32) -> Self {
        ServerSpec { name: None, host: path.into(), port: None, weight }
    }

    /// The same server with a name, which becomes its identity.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// twemproxy's identity string for this server (`conf_add_server`, nc_conf.c). It is what
    /// ketama hashes into continuum points, what decides the server order, and what stats and
    /// duplicate detection use:
    ///
    /// - the name, when one is given (even an empty one);
    /// - else `host` alone when the port is 11211;
    /// - else `host:port`;
    /// - for a unix socket, `path:` with a trailing colon, because twemproxy appends `:` and an
    ///   empty port text.
    ///
    /// One difference is unavoidable with a numeric port: twemproxy copies the port *text*, so
    /// `host:07000:1` is named `host:07000`, whereas this gives `host:7000`. Pass such a
    /// server with an explicit `name` if it matters.
    pub fn ring_name(&self) -> String {
        let port = self.port.map(|p| (p, p.to_string()));
        twemproxy_name(self.name.as_deref(), &self.host, port.as_ref().map(|(p, text)| (*p, text.as_str())))
    }
}

/// twemproxy's identity string of a server from its parts as written
/// (`conf_add_server`): the `name` when there is one; else the host alone
/// when the port is 11211; else `host:` and the port *text* (`host:07000`
/// stays so); a unix socket (`port` `None`) is `path:`. The one rule the
/// config loader, the ring and the proxy's stats all name servers by.
pub fn twemproxy_name(name: Option<&str>, host: &str, port: Option<(u16, &str)>) -> String {
    match (name, port) {
        (Some(name), _) => name.to_owned(),
        (None, Some((LIBMEMCACHED_PORT, _))) => host.to_owned(),
        (None, Some((_, text))) => format!("{host}:{text}"),
        // twemproxy copies the path plus the byte after it, the ':'.
        (None, None) => format!("{host}:"),
    }
}

/// twemproxy's order of server identities (`string_compare`): shorter names first, then bytewise
/// (unsigned) comparison. Servers are indexed in this order, so it decides modula's slots and
/// which server wins a ketama point tie.
pub fn name_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_rules() {
        assert_eq!(ServerSpec::tcp("10.0.0.1", 11212, 1).ring_name(), "10.0.0.1:11212");
        assert_eq!(ServerSpec::tcp("10.0.0.1", 11211, 1).ring_name(), "10.0.0.1");
        assert_eq!(ServerSpec::unix("/tmp/mc.sock", 1).ring_name(), "/tmp/mc.sock:");
        assert_eq!(ServerSpec::tcp("10.0.0.1", 11211, 1).named("cache-a").ring_name(), "cache-a");
        assert_eq!(ServerSpec::tcp("10.0.0.1", 11211, 1).named("").ring_name(), "");
    }

    #[test]
    fn the_port_text_is_kept() {
        assert_eq!(twemproxy_name(None, "h", Some((7000, "07000"))), "h:07000");
        assert_eq!(twemproxy_name(None, "h", Some((11211, "011211"))), "h");
        assert_eq!(twemproxy_name(Some("n"), "h", None), "n");
    }

    #[test]
    fn order_is_length_then_bytes() {
        let mut names = vec!["alpha10", "zeta", "alpha9", "b", "a\u{e9}", "ab"];
        names.sort_by(|a, b| name_order(a.as_bytes(), b.as_bytes()));
        assert_eq!(names, ["b", "ab", "a\u{e9}", "zeta", "alpha9", "alpha10"]);
    }
}
