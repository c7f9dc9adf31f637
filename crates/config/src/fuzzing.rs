//! Invariants for fuzz targets and property tests. Public so a future
//! `fuzz/` crate can call it; not part of the configuration API.

use crate::{Config, ConfigError, ErrorKind, Listen, ServerAddr};

/// Loads `data` as configuration text and panics if an invariant breaks:
/// no panic inside the loader, every error has a line inside the text
/// (counting a missing final newline) and a reason, and every accepted
/// configuration is internally consistent (unique sorted names, unique
/// listen addresses, at least one server with a weight per pool, unique
/// ring names within a pool).
pub fn check_from_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_yaml(text) {
        Ok(config) => check_config(&config),
        Err(e) => check_error(text, &e),
    }
}

fn check_error(text: &str, e: &ConfigError) {
    // libyaml breaks lines at "\n", "\r\n", a lone "\r", NEL, LS and PS.
    let breaks = text.replace("\r\n", "\n").matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']).count();
    let lines = 1 + breaks;
    assert!(e.line() >= 1 && e.line() <= lines, "line {} outside 1..={lines}: {e}", e.line());
    assert!(!e.reason().is_empty(), "empty reason");
    assert_ne!(e.kind(), ErrorKind::Io, "I/O error from text: {e}");
}

fn check_config(config: &Config) {
    assert!(!config.pools.is_empty(), "a configuration without pools");
    for pair in config.pools.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        assert!((a.len(), a.as_bytes()) < (b.len(), b.as_bytes()), "pools not sorted or not unique: {a:?} {b:?}");
    }
    let mut listens: Vec<String> = config.pools.iter().map(|(_, p)| p.listen.to_string()).collect();
    listens.sort();
    listens.dedup();
    assert_eq!(listens.len(), config.pools.len(), "two pools share a listen address");
    for (name, pool) in &config.pools {
        assert!(!name.is_empty());
        assert!(!pool.servers.is_empty(), "pool {name} has no servers");
        assert!(pool.server_connections >= 1);
        assert!(pool.effective_server_failure_limit() >= 1);
        if let Listen::Tcp { port, host } = &pool.listen {
            assert!(*port != 0 && !host.is_empty());
        }
        for pair in pool.servers.windows(2) {
            let (a, b) = (pair[0].ring_name(), pair[1].ring_name());
            assert!((a.len(), a.as_bytes()) < (b.len(), b.as_bytes()), "servers not sorted or not unique");
        }
        for s in &pool.servers {
            assert!(s.weight() >= 1);
            assert!(!s.ring_name().is_empty());
            if let ServerAddr::Tcp { port, host } = s.addr() {
                assert!(*port != 0 && !host.is_empty());
            }
        }
    }
}
