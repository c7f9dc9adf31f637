//! `discovery:` (memshard extension): a pool's servers found in DNS instead
//! of listed. The value uses the prefix syntax Thanos, Loki and Mimir use for
//! memcached addresses; `dnssrv+NAME` asks for the SRV records of `NAME`
//! (`dnssrv+_memcache._tcp.memcache.default.svc.cluster.local`), each
//! record's target and port being one server.

use crate::error::{ConfigError, Quoted};
use crate::server::{self, ServerEntry};
use std::fmt;

/// The prefix of an SRV discovery.
const DNSSRV: &str = "dnssrv+";

/// Where a pool's servers are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The SRV name asked, as written: with a final dot it is absolute;
    /// without one, a name with few dots (`_memcache._tcp.memcache`) goes
    /// through the resolver's search list, as in a pod's /etc/resolv.conf.
    pub srv: String,
}

impl Discovery {
    /// Parses `dnssrv+NAME`; NAME must be a valid DNS name.
    pub(crate) fn parse(text: &str) -> Result<Discovery, String> {
        let Some(name) = text.strip_prefix(DNSSRV) else {
            return Err(format!(
                "value {} is not a supported discovery (only {DNSSRV}NAME, DNS SRV records, is)",
                Quoted(text)
            ));
        };
        if !is_dns_name(name.strip_suffix('.').unwrap_or(name)) {
            return Err(format!("value {} does not name a valid DNS name after {DNSSRV}", Quoted(text)));
        }
        Ok(Discovery { srv: name.to_string() })
    }
}

impl fmt::Display for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DNSSRV}{}", self.srv)
    }
}

/// A DNS name: 1..=253 bytes, labels of 1..=63 letters, digits, `-` or `_`
/// (SRV owner names start with `_`), no empty label.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The server one SRV record names: reached at `target:port`, weight 1,
/// named on the ring by the target's first two labels (`<pod>.<service>`
/// of a StatefulSet's headless Service) with twemproxy's rule for the port
/// (11211: the name alone, else `name:port`), so that a pool switched from
/// the static `pod.service:11211:1` list to discovery moves no key. `None`
/// when the target is not a valid host name or has fewer than two labels.
pub fn discovered_server(target: &str, port: u16) -> Option<ServerEntry> {
    let target = target.strip_suffix('.').unwrap_or(target);
    if !is_dns_name(target) || target.contains('_') || port == 0 {
        return None;
    }
    let mut labels = target.split('.');
    let (pod, service) = (labels.next()?, labels.next()?);
    let name = match port {
        server::KETAMA_PORT => format!("{pod}.{service}"),
        _ => format!("{pod}.{service}:{port}"),
    };
    Some(ServerEntry::discovered(target, port, name))
}

/// Sorts discovered servers as a `servers:` list is sorted, refusing two
/// with the same ring name (as a file would be refused).
pub fn checked_servers(pool: &str, servers: Vec<ServerEntry>) -> Result<Vec<ServerEntry>, ConfigError> {
    server::check_servers(pool, 0, servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnssrv_names_and_their_servers() {
        let d = Discovery::parse("dnssrv+_memcache._tcp.memcache.default.svc.cluster.local.").expect("valid");
        assert_eq!(d.srv, "_memcache._tcp.memcache.default.svc.cluster.local.");
        assert_eq!(d.to_string(), "dnssrv+_memcache._tcp.memcache.default.svc.cluster.local.");
        assert_eq!(
            Discovery::parse("dnssrv+_memcache._tcp.memcache").expect("relative").srv,
            "_memcache._tcp.memcache"
        );
        for bad in
            ["dns+memcache", "memcache", "dnssrv+", "dnssrv+a..b", "dnssrv+a b", &format!("dnssrv+{}", "a".repeat(64))]
        {
            assert!(Discovery::parse(bad).is_err(), "{bad}");
        }
        let s = discovered_server("sharded-memcache-0.memcache.default.svc.cluster.local.", 11211).expect("server");
        assert_eq!(s.ring_name(), "sharded-memcache-0.memcache");
        assert_eq!(s.addr().to_string(), "sharded-memcache-0.memcache.default.svc.cluster.local:11211");
        assert_eq!(s.weight(), 1);
        let s = discovered_server("cache-1.mc.ns.svc", 11212).expect("server");
        assert_eq!(s.ring_name(), "cache-1.mc:11212");
        // The ring name of the seed's static entry is the same.
        let written = ServerEntry::parse("sharded-memcache-0.memcache:11211:1").expect("entry");
        assert_eq!(written.ring_name(), "sharded-memcache-0.memcache");
        for bad in ["single", "bad host.svc", "_x._tcp.svc", "a..b", ""] {
            assert!(discovered_server(bad, 11211).is_none(), "{bad}");
        }
        assert!(discovered_server("a.b", 0).is_none());
    }
}
