//! Invariants for the `load_config` fuzz target (`fuzz/`), its regression
//! corpus and the property tests. Public so `fuzz/` can call it; not part of
//! the configuration API.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Config, ConfigError, ErrorKind, Listen, MAX_UNIX_PATH, PoolConfig, ServerAddr, ServerEntry};

/// Loads `data` as configuration text and panics if an invariant breaks:
///
/// - no panic inside the loader;
/// - every error has a line inside the text (counting a missing final
///   newline), a one-line reason, and is not an I/O error;
/// - every accepted configuration is internally consistent: pools sorted in
///   twemproxy's order with unique names, at least one server per pool (or
///   else a `discovery:`, never both) with a weight of 1 to `i32::MAX`, servers sorted with unique ring names,
///   addresses within their limits, numbers within `i32::MAX`, and every
///   line number inside the text and inside its own pool;
/// - every server entry parses alone to the same server;
/// - every accepted configuration, written back out as YAML, loads to the
///   same configuration (line numbers aside);
/// - text behind a UTF-16 byte order mark, read from a file with
///   [`Config::load`], gives what its decoded text gives.
///
/// Bytes that are not UTF-8 are read with U+FFFD in place of each bad
/// sequence, so that mutated inputs still reach the YAML reader.
pub fn check_from_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::from_yaml(&text) {
        Ok(config) => {
            check_config(&text, &config);
            check_reload(&config);
        }
        Err(e) => check_error(&text, &e),
    }
    if matches!(data, [0xff, 0xfe, ..] | [0xfe, 0xff, ..]) {
        check_utf16_load(data);
    }
}

/// The number of lines libyaml sees in `text`: it breaks lines at "\n",
/// "\r\n", a lone "\r", NEL, LS and PS.
fn line_count(text: &str) -> usize {
    1 + text.replace("\r\n", "\n").matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']).count()
}

fn check_error(text: &str, e: &ConfigError) {
    let lines = line_count(text);
    assert!(e.line() >= 1 && e.line() <= lines, "line {} outside 1..={lines}: {e}", e.line());
    assert!(!e.reason().is_empty(), "empty reason");
    assert!(!e.reason().contains(['\n', '\r']), "reason spans lines: {e:?}");
    assert_ne!(e.kind(), ErrorKind::Io, "I/O error from text: {e}");
}

/// twemproxy's order: shorter first, then bytewise; strictly increasing
/// means sorted and unique.
fn strictly_ordered(a: &str, b: &str) -> bool {
    (a.len(), a.as_bytes()) < (b.len(), b.as_bytes())
}

fn check_config(text: &str, config: &Config) {
    let lines = line_count(text);
    assert!(!config.pools.is_empty(), "a configuration without pools");
    for pair in config.pools.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        assert!(strictly_ordered(a, b), "pools not sorted or not unique: {a:?} {b:?}");
    }
    // Pools in file order: each pool's servers lie between its name and the
    // next pool's name.
    let mut starts: Vec<usize> = config.pools.iter().map(|(_, p)| p.line).collect();
    starts.sort_unstable();
    for pair in starts.windows(2) {
        assert!(pair[0] < pair[1], "two pools start on line {}", pair[0]);
    }
    // Listen addresses are compared as written, as twemproxy compares them:
    // `127.0.0.1:22121` and `127.0.0.1:022121` are two texts for one address
    // and both load (the second bind fails), so no uniqueness is asserted on
    // the parsed values.
    for (name, pool) in &config.pools {
        assert!(!name.is_empty());
        assert!(pool.line >= 1 && pool.line <= lines, "pool line {} outside 1..={lines}", pool.line);
        let next = starts.iter().copied().find(|&l| l > pool.line).unwrap_or(usize::MAX);
        check_pool(name, pool, next);
    }
}

fn check_pool(name: &str, pool: &PoolConfig, next_pool_line: usize) {
    let max_ms = u128::from(i32::MAX.unsigned_abs());
    assert_ne!(pool.servers.is_empty(), pool.extensions.discovery.is_none(), "pool {name}: servers xor discovery");
    assert!(pool.server_connections >= 1);
    assert!(pool.effective_server_failure_limit() >= 1);
    assert_eq!(pool.client_connection_limit().is_some(), pool.client_connections != 0);
    for n in [pool.backlog, pool.server_connections, pool.server_failure_limit, pool.client_connections] {
        assert!(n <= i32::MAX.unsigned_abs(), "{n} above i32::MAX");
    }
    if let Some(t) = pool.timeout {
        assert!(!t.is_zero() && t.as_millis() <= max_ms, "timeout {t:?}");
    }
    assert!(pool.server_retry_timeout.as_millis() <= max_ms);
    if let Some(t) = pool.extensions.dns_refresh_interval {
        assert!(!t.is_zero() && t.as_millis() <= max_ms, "dns_refresh_interval {t:?}");
    }
    assert!(pool.extensions.server_restart_timeout.as_millis() <= max_ms);
    assert!(pool.extensions.ring_change_settle.as_millis() <= max_ms);
    let r = pool.extensions.replicas as usize;
    assert!(r >= 1, "pool {name}: replicas 0");
    assert!(r == 1 || pool.distribution != memshard_ring::Distribution::Random, "pool {name}: replicas with random");
    assert!(r <= pool.servers.len().max(1) || pool.extensions.discovery.is_some(), "pool {name}: replicas {r}");
    if let Some(tag) = pool.hash_tag {
        assert!(std::str::from_utf8(&tag).is_ok(), "hash tag {tag:?} is not the text it was written as");
    }
    match &pool.listen {
        // Port 0 is allowed: the listener then takes an ephemeral port.
        Listen::Tcp { host, .. } => assert!(!host.is_empty()),
        Listen::Unix { path, perm } => {
            let path = path.to_str().expect("a path read from text");
            assert!(path.starts_with('/') && path.len() <= MAX_UNIX_PATH && !path.contains('\0'), "{path:?}");
            assert!(perm.is_none_or(|p| p != 0 && p <= 0o777), "perm {perm:?}");
        }
    }
    for pair in pool.servers.windows(2) {
        let (a, b) = (pair[0].ring_name(), pair[1].ring_name());
        assert!(strictly_ordered(a, b), "servers not sorted or not unique: {a:?} {b:?}");
    }
    for s in &pool.servers {
        assert!(s.weight() >= 1 && s.weight() <= i32::MAX.unsigned_abs());
        assert!(!s.ring_name().is_empty());
        assert!(
            s.line() > pool.line && s.line() < next_pool_line,
            "server {:?} on line {} outside pool {name:?} (line {}, next pool on line {next_pool_line})",
            s.as_written(),
            s.line(),
            pool.line
        );
        match s.addr() {
            ServerAddr::Tcp { port, host } => assert!(*port != 0 && !host.is_empty()),
            ServerAddr::Unix { path } => {
                let path = path.to_str().expect("a path read from text");
                assert!(path.starts_with('/') && path.len() <= MAX_UNIX_PATH && !path.contains('\0'), "{path:?}");
            }
        }
        let alone = ServerEntry::parse(s.as_written()).expect("a server entry that loaded parses alone");
        assert_eq!(server_fields(&alone), server_fields(s), "the entry parses differently alone");
    }
}

/// What a server entry means, without its line.
fn server_fields(s: &ServerEntry) -> (&ServerAddr, u32, Option<&str>, &str, &str) {
    (s.addr(), s.weight(), s.name(), s.ring_name(), s.as_written())
}

/// Writes `config` back out as YAML, loads it, and compares.
fn check_reload(config: &Config) {
    let yaml = render(config);
    let again = match Config::from_yaml(&yaml) {
        Ok(again) => again,
        Err(e) => panic!("a loaded configuration, written out, does not load: {e}\n{yaml}"),
    };
    assert_eq!(again.pools.len(), config.pools.len());
    for ((name, pool), (name2, pool2)) in config.pools.iter().zip(&again.pools) {
        assert_eq!(name, name2, "pool names differ after a reload:\n{yaml}");
        let servers: Vec<_> = pool.servers.iter().map(server_fields).collect();
        let servers2: Vec<_> = pool2.servers.iter().map(server_fields).collect();
        assert_eq!(servers, servers2, "servers of pool {name:?} differ after a reload:\n{yaml}");
        let strip = |p: &PoolConfig| PoolConfig { line: 0, servers: Vec::new(), ..p.clone() };
        assert_eq!(strip(pool), strip(pool2), "pool {name:?} differs after a reload:\n{yaml}");
    }
}

/// The configuration as YAML: every directive written out, every string
/// double-quoted with escapes.
///
/// Two pools may share a listen address written two ways (`:22121` and
/// `:022121`, see [`check_config`]); each repeat is written with one more
/// leading zero in its port (or its permission), so the texts stay
/// distinct as they were.
fn render(config: &Config) -> String {
    let mut out = String::new();
    let mut listens: Vec<&Listen> = Vec::new();
    for (name, pool) in &config.pools {
        let zeros = "0".repeat(listens.iter().filter(|l| **l == &pool.listen).count());
        listens.push(&pool.listen);
        let listen = match &pool.listen {
            Listen::Tcp { host, port } => format!("{host}:{zeros}{port}"),
            // "PATH 0" is PATH without permissions, whatever PATH holds.
            Listen::Unix { path, perm } => {
                format!("{} {zeros}{:o}", path.to_str().expect("a path read from text"), perm.unwrap_or(0))
            }
        };
        let name = quote(name);
        // A simple key is at most 1024 characters long; longer names are
        // written as complex keys.
        if name.chars().count() < 1000 {
            let _ = writeln!(out, "{name}:");
        } else {
            let _ = writeln!(out, "? {name}\n:");
        }
        let _ = writeln!(out, "  listen: {}", quote(&listen));
        let _ = writeln!(out, "  hash: {}", pool.hash);
        if let Some(tag) = pool.hash_tag {
            let _ = writeln!(out, "  hash_tag: {}", quote(std::str::from_utf8(&tag).expect("checked")));
        }
        let _ = writeln!(out, "  distribution: {}", pool.distribution);
        if let Some(t) = pool.timeout {
            let _ = writeln!(out, "  timeout: {}", t.as_millis());
        }
        let _ = writeln!(out, "  backlog: {}", pool.backlog);
        let _ = writeln!(out, "  preconnect: {}", pool.preconnect);
        let _ = writeln!(out, "  server_connections: {}", pool.server_connections);
        let _ = writeln!(out, "  auto_eject_hosts: {}", pool.auto_eject_hosts);
        let _ = writeln!(out, "  server_retry_timeout: {}", pool.server_retry_timeout.as_millis());
        let _ = writeln!(out, "  server_failure_limit: {}", pool.server_failure_limit);
        let _ = writeln!(out, "  client_connections: {}", pool.client_connections);
        let _ = writeln!(out, "  tcpkeepalive: {}", pool.tcpkeepalive);
        let _ = writeln!(out, "  reuseport: {}", pool.reuseport);
        let dns = pool.extensions.dns_refresh_interval.map_or(0, |t| t.as_millis());
        let _ = writeln!(out, "  dns_refresh_interval: {dns}");
        let _ = writeln!(out, "  server_probe: {}", pool.extensions.server_probe);
        let _ = writeln!(out, "  flush_on_return: {}", pool.extensions.flush_on_return);
        let _ = writeln!(out, "  server_restart_timeout: {}", pool.extensions.server_restart_timeout.as_millis());
        let _ = writeln!(out, "  ring_change_settle: {}", pool.extensions.ring_change_settle.as_millis());
        if pool.extensions.replicas != 1 {
            let _ = writeln!(out, "  replicas: {}", pool.extensions.replicas);
        }
        if let Some(d) = &pool.extensions.discovery {
            let _ = writeln!(out, "  discovery: {d}");
            continue;
        }
        out.push_str("  servers:\n");
        for s in &pool.servers {
            let _ = writeln!(out, "   - {}", quote(s.as_written()));
        }
    }
    out
}

/// A YAML double-quoted scalar holding exactly `s`: printable ASCII as is,
/// everything else escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            ' '..='~' => q.push(c),
            c if u32::from(c) <= 0xffff => {
                let _ = write!(q, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(q, "\\U{:08X}", u32::from(c));
            }
        }
    }
    q.push('"');
    q
}

/// UTF-16 behind a byte order mark, read from a file as `Config::load`
/// reads it: the same verdict as the decoded text, with the file named; or,
/// when the bytes are not UTF-16, an I/O error on a line of the text decoded
/// so far.
fn check_utf16_load(data: &[u8]) {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "memshard-config-fuzz-{}-{}.yml",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, data).expect("write a temporary file");
    let loaded = Config::load(&path);
    let _ = std::fs::remove_file(&path);

    let big_endian = data[0] == 0xfe;
    let units = data[2..].chunks(2).map(|c| {
        let pair = [c[0], c.get(1).copied().unwrap_or(0)];
        if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
    });
    let mut text = String::new();
    let mut valid = data.len() % 2 == 0;
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => text.push(c),
            Err(_) => {
                valid = false;
                break;
            }
        }
    }
    if valid {
        match (loaded, Config::from_yaml(&text)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "load and from_yaml disagree"),
            (Err(a), Err(b)) => {
                assert_eq!(a.file(), Some(path.as_path()), "the error does not name the file: {a}");
                assert_eq!((a.kind(), a.line(), a.reason()), (b.kind(), b.line(), b.reason()));
            }
            (a, b) => panic!("load and from_yaml disagree: {a:?} / {b:?}"),
        }
    } else {
        let e = loaded.expect_err("bytes that are not UTF-16 loaded");
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
        let lines = 1 + text.matches('\n').count();
        assert!(e.line() >= 1 && e.line() <= lines, "line {} outside 1..={lines}: {e}", e.line());
    }
}
