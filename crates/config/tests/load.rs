//! Loaded values: the system's own file, twemproxy's samples, defaults,
//! several pools, unix sockets, names and weights, extensions.

use std::path::PathBuf;
use std::time::Duration;

use memshard_config::{
    Config, ConfigError, Distribution, ErrorKind, Extensions, HashKind, Listen, PoolConfig, ServerAddr, ServerEntry,
};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn load(name: &str) -> Config {
    Config::load(testdata(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn ring_names(pool: &PoolConfig) -> Vec<&str> {
    pool.servers.iter().map(ServerEntry::ring_name).collect()
}

fn pool_names(config: &Config) -> Vec<&str> {
    config.pools.iter().map(|(n, _)| n.as_str()).collect()
}

fn tcp(host: &str, port: u16) -> Listen {
    Listen::Tcp { host: host.into(), port }
}

#[test]
fn system_config() {
    let config = load("system.yml");
    assert_eq!(pool_names(&config), ["memcached"]);
    let pool = config.pool("memcached").unwrap();
    assert_eq!(pool.line, 1);
    assert_eq!(pool.listen, tcp("0.0.0.0", 11211));
    assert_eq!(pool.hash, HashKind::Fnv1a64);
    assert_eq!(pool.hash_tag, None);
    assert_eq!(pool.distribution, Distribution::Ketama);
    assert!(pool.auto_eject_hosts);
    assert_eq!(pool.timeout, Some(Duration::from_millis(400)));
    assert_eq!(pool.server_retry_timeout, Duration::from_millis(2000));
    assert_eq!(pool.server_failure_limit, 1);
    assert_eq!(pool.effective_server_failure_limit(), 1);
    // Everything else at twemproxy's defaults.
    assert_eq!(pool.backlog, 512);
    assert!(!pool.preconnect);
    assert_eq!(pool.server_connections, 1);
    assert_eq!(pool.client_connections, 0);
    assert_eq!(pool.client_connection_limit(), None);
    assert!(!pool.tcpkeepalive);
    assert!(!pool.reuseport);
    assert_eq!(pool.extensions, Extensions::default());

    // Port 11211: each server is named by its host alone.
    assert_eq!(
        ring_names(pool),
        ["sharded-memcache-0.memcache", "sharded-memcache-1.memcache", "sharded-memcache-2.memcache"]
    );
    for (i, s) in pool.servers.iter().enumerate() {
        assert_eq!(s.addr(), &ServerAddr::Tcp { host: format!("sharded-memcache-{i}.memcache"), port: 11211 });
        assert_eq!(s.weight(), 1);
        assert_eq!(s.name(), None);
        assert_eq!(s.line(), 10 + i);
        assert_eq!(s.as_written(), format!("sharded-memcache-{i}.memcache:11211:1"));
    }
}

#[test]
fn twemproxy_samples() {
    let config = load("nutcracker-memcached.yml");
    // twemproxy's order: shorter names first, then bytewise.
    assert_eq!(pool_names(&config), ["beta", "alpha", "delta", "gamma", "omega"]);

    let alpha = config.pool("alpha").unwrap();
    assert_eq!(alpha.listen, tcp("127.0.0.1", 22121));
    assert_eq!(ring_names(alpha), ["127.0.0.1:6379"]);

    let beta = config.pool("beta").unwrap();
    assert_eq!(beta.hash_tag, Some(*b"{}"));
    assert!(!beta.auto_eject_hosts);
    assert_eq!(ring_names(beta), ["server1", "server2", "server3", "server4"]);
    assert_eq!(beta.servers[2].addr(), &ServerAddr::Tcp { host: "127.0.0.1".into(), port: 6382 });

    let gamma = config.pool("gamma").unwrap();
    assert_eq!((gamma.backlog, gamma.preconnect, gamma.server_failure_limit), (1024, true, 3));
    assert_eq!(ring_names(gamma), ["127.0.0.1:11212", "127.0.0.1:11213"]);

    let delta = config.pool("delta").unwrap();
    assert_eq!(delta.timeout, Some(Duration::from_millis(100)));
    assert_eq!(delta.servers.len(), 10);

    let omega = config.pool("omega").unwrap();
    assert_eq!(omega.listen, Listen::Unix { path: "/tmp/gamma".into(), perm: None });
    assert_eq!(omega.hash, HashKind::Hsieh);
    assert_eq!(omega.servers.iter().map(ServerEntry::weight).collect::<Vec<_>>(), [100_000, 1]);

    let root = load("nutcracker.root.yml");
    assert_eq!(root.pool("root").unwrap().listen, tcp("127.0.0.1", 22120));
    let leaf = load("nutcracker.leaf.yml");
    assert_eq!(ring_names(leaf.pool("leaf").unwrap()), ["127.0.0.1:11212", "127.0.0.1:11213"]);
}

#[test]
fn the_unmodified_sample_is_refused_for_its_redis_pools() {
    let e = Config::load(testdata("nutcracker.yml")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().ends_with(
        "nutcracker.yml:6: redis pools are not supported: memshard proxies memcached only (directive \"redis\" is true)"
    ));
}

#[test]
fn defaults() {
    let config = Config::from_yaml("p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n").unwrap();
    let pool = config.pool("p").unwrap();
    let mut expected = PoolConfig::with_defaults(tcp("127.0.0.1", 22121));
    expected.servers = pool.servers.clone();
    assert_eq!(pool, &expected);
    assert_eq!(pool.hash, HashKind::Fnv1a64);
    assert_eq!(pool.distribution, Distribution::Ketama);
    assert_eq!(pool.timeout, None);
    assert_eq!(pool.backlog, 512);
    assert_eq!(pool.server_connections, 1);
    assert_eq!(pool.server_retry_timeout, Duration::from_secs(30));
    assert_eq!(pool.server_failure_limit, 2);
    assert_eq!(pool.extensions.dns_refresh_interval, Some(Duration::from_millis(5000)));
    assert!(pool.extensions.server_probe);
}

#[test]
fn several_pools_unix_sockets_names_and_weights() {
    let config = load("multi.yml");
    assert_eq!(pool_names(&config), ["api", "web", "sock"]);

    let web = config.pool("web").unwrap();
    assert_eq!(web.listen, tcp("127.0.0.1", 22121));
    assert_eq!((web.hash, web.hash_tag, web.distribution), (HashKind::Md5, Some(*b"{}"), Distribution::Modula));
    assert_eq!(web.timeout, Some(Duration::from_millis(250)));
    assert_eq!((web.backlog, web.preconnect, web.tcpkeepalive), (1024, true, true));
    assert_eq!((web.client_connections, web.client_connection_limit()), (100, Some(100)));
    assert_eq!(web.server_connections, 4);
    assert!(web.auto_eject_hosts);
    assert_eq!(web.server_retry_timeout, Duration::from_millis(1500));
    assert_eq!((web.server_failure_limit, web.effective_server_failure_limit()), (0, 1));
    // Sorted by ring name: the names, then the unnamed host:port (longer).
    assert_eq!(ring_names(web), ["shard-a", "shard-b", "10.0.0.3:11212"]);
    let weights: Vec<(Option<&str>, u32)> = web.servers.iter().map(|s| (s.name(), s.weight())).collect();
    assert_eq!(weights, [(Some("shard-a"), 1), (Some("shard-b"), 3), (None, 2)]);
    assert_eq!(web.servers[0].addr(), &ServerAddr::Tcp { host: "10.0.0.1".into(), port: 11211 });

    let sock = config.pool("sock").unwrap();
    assert_eq!(sock.listen, Listen::Unix { path: "/tmp/memshard-config-test.sock".into(), perm: Some(0o660) });
    assert_eq!(sock.listen.to_string(), "/tmp/memshard-config-test.sock 0660");
    assert_eq!(sock.distribution, Distribution::Random);
    // A unix server's ring name is its path with a trailing colon.
    assert_eq!(ring_names(sock), ["b", "/var/run/memcached/a.sock:"]);
    assert_eq!(sock.servers[1].addr().unix_path(), Some(std::path::Path::new("/var/run/memcached/a.sock")));
    assert_eq!(sock.servers[0].weight(), 2);

    let api = config.pool("api").unwrap();
    assert_eq!(api.listen, tcp("::1", 22122));
    assert_eq!(ring_names(api), ["::1:11213", "cache.example"]);
    assert_eq!(api.servers[0].weight(), 5);
}

#[test]
fn parser_quirks_match_twemproxy() {
    let config = load("quirks.yml");
    let quirks = config.pool("quirks").unwrap();
    assert_eq!(quirks.listen, tcp("127.0.0.1", 22123));
    assert_eq!(quirks.hash, HashKind::Crc32a);
    assert_eq!(quirks.distribution, Distribution::Modula);
    assert_eq!(quirks.timeout, None);
    assert_eq!(quirks.effective_server_failure_limit(), 1);
    // The port text is kept as written in the ring name.
    assert_eq!(ring_names(quirks), ["127.0.0.1:011212"]);

    let folded = config.pool("folded").unwrap();
    // A plain scalar folded over two lines gains a name; `|-` strips the
    // newline; port 11211 drops out of the name.
    assert_eq!(ring_names(folded), ["named", "127.0.0.1", "127.0.0.1:11216"]);
    assert_eq!(folded.servers[2].weight(), 2);
}

#[test]
fn every_hash_and_distribution_name() {
    let config = load("hashes.yml");
    assert_eq!(config.pools.len(), HashKind::ALL.len());
    for (i, hash) in HashKind::ALL.into_iter().enumerate() {
        let pool = config.pool(hash.name()).unwrap();
        assert_eq!(pool.hash, hash);
        assert_eq!(pool.distribution, Distribution::ALL[i % 3]);
        assert_eq!(hash.name().parse::<HashKind>(), Ok(hash));
        assert_eq!(hash.to_string(), hash.name());
    }
    let bad = "p:\n  listen: 127.0.0.1:22121\n  hash: sha1\n  servers:\n   - 127.0.0.1:11211:1\n";
    assert_eq!(
        Config::from_yaml(bad).unwrap_err().to_string(),
        r#"line 3: directive "hash" value "sha1" is not a valid hash"#
    );
}

#[test]
fn tls_keys_are_read_and_checked_together() {
    let yaml = "p:\n  listen: 127.0.0.1:22121\n  tls_cert_file: /tls/proxy.crt\n  tls_key_file: /tls/proxy.key\n  \
                tls_client_ca_file: /tls/ca.crt\n  server_tls: true\n  server_tls_ca_file: /tls/ca.crt\n  \
                server_tls_name: memcache\n  server_tls_cert_file: /tls/client.crt\n  servers:\n   - a:11211:1\n";
    let config = Config::from_yaml(yaml).unwrap();
    let ext = &config.pool("p").unwrap().extensions;
    assert_eq!(
        ext.tls,
        Some(memshard_config::TlsListen {
            cert_file: "/tls/proxy.crt".into(),
            key_file: Some("/tls/proxy.key".into()),
            client_ca_file: Some("/tls/ca.crt".into()),
        })
    );
    assert_eq!(
        ext.server_tls,
        Some(memshard_config::TlsToServers {
            ca_file: "/tls/ca.crt".into(),
            name: Some("memcache".into()),
            cert_file: Some("/tls/client.crt".into()),
            key_file: None,
        })
    );
    // Each refusal names the line and what is missing.
    for (body, want) in [
        ("  tls_key_file: /k\n", "line 3: directive \"tls_key_file:\" needs \"tls_cert_file:\""),
        ("  tls_client_ca_file: /ca\n", "line 3: directive \"tls_client_ca_file:\" needs \"tls_cert_file:\""),
        ("  server_tls_ca_file: /ca\n", "line 3: directive \"server_tls_ca_file:\" needs \"server_tls: true\""),
        (
            "  server_tls: false\n  server_tls_name: x\n",
            "line 4: directive \"server_tls_name:\" needs \"server_tls: true\"",
        ),
        ("  server_tls: true\n", "line 3: directive \"server_tls: true\" needs \"server_tls_ca_file:\""),
        (
            "  server_tls: true\n  server_tls_ca_file: /ca\n  server_tls_key_file: /k\n",
            "line 5: directive \"server_tls_key_file:\" needs \"server_tls_cert_file:\"",
        ),
        ("  server_tls: yes\n", "line 3: directive \"server_tls\" value \"yes\" is not \"true\" or \"false\""),
    ] {
        let yaml = format!("p:\n  listen: a:1\n{body}  servers:\n   - a:1:1\n");
        let e = Config::from_yaml(&yaml).unwrap_err().to_string();
        assert!(e.starts_with(want), "{body:?}: {e}");
    }
}

#[test]
fn extensions_and_reuseport() {
    let yaml = "p:\n  listen: 127.0.0.1:22121\n  reuseport: true\n  dns_refresh_interval: 1000\n  server_probe: false\n  flush_on_return: false\n  server_restart_timeout: 5000\n  servers:\n   - a:11211:1\nq:\n  listen: 127.0.0.1:22122\n  dns_refresh_interval: 0\n  ring_change_settle: 0\n  servers:\n   - a:11211:1\n";
    let config = Config::from_yaml(yaml).unwrap();
    let p = config.pool("p").unwrap();
    assert!(p.reuseport);
    assert_eq!(
        p.extensions,
        Extensions {
            dns_refresh_interval: Some(Duration::from_millis(1000)),
            server_probe: false,
            flush_on_return: false,
            discovery: None,
            replicas: 1,
            server_restart_timeout: Duration::from_millis(5000),
            ring_change_settle: memshard_config::DEFAULT_RING_CHANGE_SETTLE,
            tls: None,
            server_tls: None,
        }
    );
    let q = config.pool("q").unwrap();
    assert_eq!(
        q.extensions,
        Extensions {
            dns_refresh_interval: None,
            server_probe: true,
            flush_on_return: true,
            discovery: None,
            replicas: 1,
            server_restart_timeout: memshard_config::DEFAULT_SERVER_RESTART_TIMEOUT,
            ring_change_settle: Duration::ZERO,
            tls: None,
            server_tls: None,
        }
    );

    let e = Config::from_yaml("p:\n  listen: a:1\n  server_probe: yes\n  servers:\n   - a:1:1\n").unwrap_err();
    assert_eq!(e.to_string(), "line 3: directive \"server_probe\" value \"yes\" is not \"true\" or \"false\"");
    let e =
        Config::from_yaml("p:\n  listen: a:1\n  server_restart_timeout: soon\n  servers:\n   - a:1:1\n").unwrap_err();
    assert!(e.to_string().starts_with("line 3: directive \"server_restart_timeout\""), "{e}");
}

/// `replicas:` is a count of owners: 1 by default, never 0, never more
/// than the servers listed, never with a distribution that fixes no owner.
#[test]
fn replicas_are_checked_against_the_pool() {
    let pool = |extra: &str, servers: usize| {
        let list: String = (0..servers).map(|i| format!("   - 10.0.0.{i}:11211:1\n")).collect();
        Config::from_yaml(&format!("p:\n  listen: 127.0.0.1:22121\n{extra}  servers:\n{list}"))
    };
    assert_eq!(pool("", 3).unwrap().pool("p").unwrap().extensions.replicas, 1);
    assert_eq!(pool("  replicas: 2\n", 3).unwrap().pool("p").unwrap().extensions.replicas, 2);
    assert_eq!(pool("  replicas: 3\n  distribution: modula\n", 3).unwrap().pool("p").unwrap().extensions.replicas, 3);
    let e = pool("  replicas: 4\n", 3).unwrap_err();
    assert_eq!(e.to_string(), r#"line 3: directive "replicas: 4" is more than the 3 servers of pool "p""#);
    let e = pool("  replicas: 0\n", 3).unwrap_err();
    assert_eq!(e.to_string(), r#"line 3: directive "replicas:" cannot be 0"#);
    let e = pool("  distribution: random\n  replicas: 2\n", 3).unwrap_err();
    assert_eq!(e.line(), 4, "{e}");
    assert!(e.to_string().contains("distribution: random"), "{e}");
    assert!(pool("  distribution: random\n  replicas: 1\n", 3).is_ok(), "one owner is any server");
    let e = pool("  replicas: two\n", 3).unwrap_err();
    assert_eq!(e.to_string(), r#"line 3: directive "replicas" value "two" is not a number"#);
    // With discovery the server count is known only at run time.
    let srv = "_memcache._tcp.memcache.default.svc.cluster.local";
    let d = Config::from_yaml(&format!("p:\n  listen: 127.0.0.1:22121\n  replicas: 5\n  discovery: dnssrv+{srv}\n"));
    assert_eq!(d.unwrap().pool("p").unwrap().extensions.replicas, 5);
}

#[test]
fn discovery_instead_of_servers() {
    let srv = "_memcache._tcp.memcache.default.svc.cluster.local";
    let config = Config::from_yaml(&format!("p:\n  listen: 127.0.0.1:22121\n  discovery: dnssrv+{srv}\n")).unwrap();
    let p = config.pool("p").unwrap();
    assert_eq!(p.extensions.discovery.as_ref().map(|d| d.srv.as_str()), Some(srv));
    assert!(p.servers.is_empty());
    let both = format!("p:\n  listen: a:1\n  servers:\n   - a:1:1\n  discovery: dnssrv+{srv}\n");
    let e = Config::from_yaml(&both).unwrap_err();
    assert_eq!(e.line(), 5, "{e}");
    assert!(e.to_string().contains("both \"servers:\" and \"discovery:\""), "{e}");
    let e = Config::from_yaml("p:\n  listen: a:1\n  discovery: dns+memcache:11211\n").unwrap_err();
    assert_eq!(e.line(), 3);
    assert!(e.to_string().contains("only dnssrv+NAME"), "{e}");
    let e = Config::from_yaml("p:\n  listen: a:1\n").unwrap_err();
    assert!(e.to_string().contains("has no \"servers:\" list"), "neither is still an error: {e}");
}

#[test]
fn load_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("memshard-config-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nutcracker.yml");
    std::fs::write(&file, "p:\n  listen: 127.0.0.1:22121\n  timeout: 1\n  timeout: 2\n  servers:\n   - a:1:1\n")
        .unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!(e.to_string(), format!("{}:4: directive \"timeout\" is a duplicate", file.display()));
    assert_eq!((e.line(), e.file()), (4, Some(file.as_path())));

    std::fs::write(&file, b"p:\n  listen: 127.0.0.1:22121\n  hash: \xff\n").unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!((e.kind(), e.line()), (ErrorKind::Io, 3));
    assert!(e.to_string().ends_with("nutcracker.yml:3: configuration is not valid UTF-8"));

    let missing = dir.join("missing.yml");
    let e = Config::load(&missing).unwrap_err();
    assert_eq!((e.kind(), e.line()), (ErrorKind::Io, 0));
    assert!(e.to_string().starts_with(&format!("{}: failed to open configuration", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn utf16_files_load_as_libyaml_reads_them() {
    let dir = std::env::temp_dir().join(format!("memshard-config-utf16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(testdata("system.yml")).unwrap();
    let utf8 = Config::from_yaml(&text).unwrap();
    let le: Vec<u8> = [0xff, 0xfe].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let be: Vec<u8> = [0xfe, 0xff].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
    for (name, bytes) in [("le.yml", &le), ("be.yml", &be)] {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        assert_eq!(Config::load(&file).unwrap(), utf8, "{name}");
    }
    // A lone surrogate on line 3.
    let mut broken = le[..le.len() - 2].to_vec();
    let at = 2 + 2 * text.split_inclusive('\n').take(2).map(|l| l.encode_utf16().count()).sum::<usize>();
    broken.splice(at..at, 0xd800u16.to_le_bytes());
    let file = dir.join("broken.yml");
    std::fs::write(&file, &broken).unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!((e.kind(), e.line(), e.reason()), (ErrorKind::Io, 3, "configuration is not valid UTF-16LE"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_are_values() {
    let e = ConfigError::new(ErrorKind::Validation, 3, "why").with_file("f.yml");
    assert_eq!(e.to_string(), "f.yml:3: why");
    assert_eq!(ConfigError::new(ErrorKind::Yaml, 2, "why").to_string(), "line 2: why");
}

#[test]
fn server_entries_parse_alone() {
    let s = ServerEntry::parse("10.0.0.1:11211:7 shard0").unwrap();
    assert_eq!((s.ring_name(), s.weight(), s.name()), ("shard0", 7, Some("shard0")));
    assert_eq!(s.addr().to_string(), "10.0.0.1:11211");
    assert_eq!(ServerEntry::parse("/tmp/mc.sock:1").unwrap().ring_name(), "/tmp/mc.sock:");
    let e = ServerEntry::parse("10.0.0.1:11211:0").unwrap_err();
    assert!(e.reason().contains("server \"10.0.0.1:11211\" has a zero weight"), "{e}");
}
