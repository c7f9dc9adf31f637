//! `listen:`: where a pool accepts clients (`conf_set_listen`, nc_conf.c).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::error::Quoted;
use crate::number;

/// The longest unix socket path, in bytes: `sizeof(sun_path) - 1` on Linux.
/// twemproxy refuses longer paths (`nc_resolve_unix`).
pub const MAX_UNIX_PATH: usize = 107;

/// A pool's listen address: `host:port`, or `/path [octal-perm]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Listen {
    /// `host:port`. The text is split at the **last** `:`, so an
    /// unbracketed IPv6 literal works (`::1:22121`) and a bracketed one
    /// does not (twemproxy passes `[::1]` to getaddrinfo, which fails).
    Tcp {
        /// The host exactly as written: an IP literal or a host name. It is
        /// resolved when the proxy binds, not while loading (see the crate
        /// documentation).
        host: String,
        /// The TCP port, 1..=65535.
        port: u16,
    },
    /// A unix socket path, optionally followed by a space and octal file
    /// permissions (`/tmp/memshard.sock 0600`).
    Unix {
        /// The socket path (it starts with `/`). twemproxy unlinks it before
        /// binding.
        path: PathBuf,
        /// Permissions applied with chmod after binding, at most `0o777`.
        /// `None` when absent or zero: twemproxy then leaves the mode to the
        /// umask.
        perm: Option<u32>,
    },
}

impl fmt::Display for Listen {
    /// Writes the address in the configuration's own syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp { host, port } => write!(f, "{host}:{port}"),
            // The last space of a unix `listen:` value starts its
            // permissions: a path with a space needs them written out.
            Listen::Unix { path, perm: None } if path.to_string_lossy().contains(' ') => {
                write!(f, "{} 0", path.display())
            }
            Listen::Unix { path, perm: None } => write!(f, "{}", path.display()),
            Listen::Unix { path, perm: Some(perm) } => write!(f, "{} {perm:04o}", path.display()),
        }
    }
}

/// Parses a `listen:` value. The error is the text that follows
/// `directive "listen"` in the message.
pub(crate) fn parse(value: &str) -> Result<Listen, String> {
    if value.starts_with('/') { parse_unix(value) } else { parse_tcp(value) }
}

fn parse_unix(value: &str) -> Result<Listen, String> {
    // twemproxy reads "path permissions" from the end: the last space
    // separates the permissions.
    let (path, perm) = match value.rsplit_once(' ') {
        None => (value, None),
        Some((path, perm)) => (path, Some(parse_perm(perm)?)),
    };
    if path.len() > MAX_UNIX_PATH {
        return Err(format!(
            "has an invalid value: the unix socket path is {} bytes long, the limit is {MAX_UNIX_PATH}",
            path.len()
        ));
    }
    if path.contains('\0') {
        return Err("has an invalid value: the unix socket path contains a NUL byte".to_owned());
    }
    Ok(Listen::Unix { path: PathBuf::from(path), perm: perm.filter(|&p| p != 0) })
}

/// twemproxy uses `strtol(perm, NULL, 8)`, which quietly reads `abc`, `999`
/// or the second half of a path with a space in it as 0 (no chmod). Only
/// plain octal digits are taken here, so a typo cannot leave a socket with
/// unintended permissions.
fn parse_perm(raw: &str) -> Result<u32, String> {
    const BAD: &str = "has an invalid file permission in \"socket_path permission\" format string";
    // strtol skips leading blanks (`/tmp/s.sock \t0600`); so does this.
    let perm = raw.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if perm.is_empty() || !perm.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!("{BAD}: {} is not an octal number", Quoted(raw)));
    }
    match u32::from_str_radix(perm, 8) {
        Ok(p) if p <= 0o777 => Ok(p),
        _ => Err(format!("{BAD}: {} is above 0777", Quoted(raw))),
    }
}

fn parse_tcp(value: &str) -> Result<Listen, String> {
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err("has an invalid \"hostname:port\" format string".to_owned());
    };
    // Port 0 is allowed (nutcracker refuses it): memshard's command-line
    // contract lets every listener take an ephemeral port and log it.
    let port = number::parse(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| "has an invalid port in \"hostname:port\" format string".to_owned())?;
    if let Some(why) = host_problem(host) {
        return Err(format!("has an invalid value: {why}"));
    }
    Ok(Listen::Tcp { host: host.to_owned(), port })
}

/// Why `host` cannot be resolved, judged without asking DNS.
///
/// twemproxy resolves the listen host while loading; this crate does not
/// touch the network, so it only refuses what no resolver accepts: an empty
/// host, brackets, blanks and other characters that appear in neither an IP
/// literal nor a host name.
pub(crate) fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("the host is empty".to_owned());
    }
    if host.parse::<Ipv4Addr>().is_ok() || ipv6_literal(host) {
        return None;
    }
    let name_chars = host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    // Empty labels (`a..b`, `.a`) never resolve; one final dot is a
    // fully qualified name.
    let labels_ok = host.strip_suffix('.').unwrap_or(host).split('.').all(|l| !l.is_empty());
    if !name_chars || !labels_ok || host.len() > 253 {
        return Some(format!("{} is neither an IP address nor a host name", Quoted(host)));
    }
    None
}

/// An IPv6 literal, optionally with a `%zone` suffix as getaddrinfo accepts.
fn ipv6_literal(host: &str) -> bool {
    let (addr, zone) = match host.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (host, None),
    };
    addr.parse::<Ipv6Addr>().is_ok()
        && zone.is_none_or(|z| !z.is_empty() && z.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_splits_at_the_last_colon() {
        assert_eq!(parse("::1:22121"), Ok(Listen::Tcp { host: "::1".into(), port: 22121 }));
        assert_eq!(parse("0.0.0.0:11211"), Ok(Listen::Tcp { host: "0.0.0.0".into(), port: 11211 }));
        assert!(parse("[::1]:22121").is_err());
        assert_eq!(parse("127.0.0.1:0"), Ok(Listen::Tcp { host: "127.0.0.1".into(), port: 0 }));
        assert!(parse("127.0.0.1:65536").is_err());
        assert!(parse("localhost").is_err());
        assert!(parse("127..0.1:22121").is_err());
        assert!(parse(".a:22121").is_err());
        assert_eq!(parse("cache.svc.:22121"), Ok(Listen::Tcp { host: "cache.svc.".into(), port: 22121 }));
    }

    #[test]
    fn unix_with_and_without_perm() {
        assert_eq!(parse("/tmp/a.sock"), Ok(Listen::Unix { path: "/tmp/a.sock".into(), perm: None }));
        assert_eq!(parse("/tmp/a.sock 0600"), Ok(Listen::Unix { path: "/tmp/a.sock".into(), perm: Some(0o600) }));
        assert_eq!(parse("/tmp/a.sock 0"), Ok(Listen::Unix { path: "/tmp/a.sock".into(), perm: None }));
        assert!(parse("/tmp/a.sock 1000").is_err());
        assert!(parse("/tmp/a.sock abc").is_err());
        assert_eq!(parse("/tmp/a.sock \t0660"), Ok(Listen::Unix { path: "/tmp/a.sock".into(), perm: Some(0o660) }));
        assert_eq!(Listen::Unix { path: "/s".into(), perm: Some(0o60) }.to_string(), "/s 0060");
        // What Display writes reads back as the same listener.
        for text in ["/tmp/a.sock", "/tmp/a.sock 0600", "/tmp/a 0 0", "/tmp/my socket 0660", "/tmp/a b 0"] {
            let l = parse(text).expect("valid");
            assert_eq!(parse(&l.to_string()), Ok(l.clone()), "{text:?} displayed as {l}");
        }
    }
}
