//! `--admin HOST:PORT`, the admin port's address, as `memshard proxy` and
//! `memshard server` take it.

/// `--admin`: HOST:PORT, an IPv6 address in brackets (`[::1]:9100`); the
/// host is looked up when it is bound.
pub(crate) fn parse(s: &str) -> Result<String, String> {
    let bad = || format!("'{s}' is not HOST:PORT (e.g. 127.0.0.1:9100, [::1]:9100; port 0 picks a free one)");
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let name_ok =
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !name_ok || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn admin_is_host_and_port() {
        for good in ["127.0.0.1:0", "0.0.0.0:9100", "[::1]:9100", "localhost:9100", "cache-1.internal:80"] {
            assert_eq!(parse(good).as_deref(), Ok(good));
        }
        for bad in ["", "9100", ":9100", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:9100", "a b:1", "h:x"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }
}
