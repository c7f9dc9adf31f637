//! Differential placement test: nutcracker and memshard proxy, given the same
//! pool file, in front of the same backends, must send every key to the same
//! server — for all 12 hashes × {ketama, modula} × {3 servers, 25 servers,
//! unequal weights, named servers, hash_tag, unix-socket servers named by
//! path (`/path:`) and by name}.
//!
//! The backends are tiny recorders on loopback (or on unix sockets) that
//! answer `END` and note which keys each one was asked for. Skips loudly
//! without nutcracker (and fails under `MEMSHARD_REQUIRE_PEERS=1`).

use memshard_config::Config;
use memshard_net::ShutdownTrigger;
use memshard_proxy::{Ports, ProxyConfig, run};
use memshard_testkit::{BackendAddr, ChildGuard, KeyRecorders, free_port, peer_or_skip, wait_for_listen};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HASHES: [&str; 12] = [
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
];
const KEYS_PER_POOL: usize = 1000;

/// A random key of printable and high bytes (no space or control bytes).
fn random_key(rng: &mut rand::rngs::SmallRng, tag: bool) -> Vec<u8> {
    let len = rng.random_range(1..40);
    let mut k: Vec<u8> = (0..len)
        .map(|_| {
            loop {
                let b: u8 = rng.random();
                if b > b' ' && b != 0x7f && b != b'{' && b != b'}' {
                    break b;
                }
            }
        })
        .collect();
    if tag {
        // Mostly well-formed tags, sometimes degenerate ones.
        match rng.random_range(0..4) {
            0 => k.extend_from_slice(b"{}"),
            1 => k.insert(0, b'{'),
            _ => {
                let at = rng.random_range(0..=k.len());
                k.splice(at..at, b"{user:42}".iter().copied());
            }
        }
    }
    k
}

struct Scenario {
    name: &'static str,
    servers: usize,
    /// The `servers:` entry of backend `i` at address `a`.
    entry: fn(usize, &str) -> String,
    hash_tag: bool,
    /// Backends on unix sockets instead of loopback TCP.
    unix: bool,
}

/// Sends `keys` as multi-gets through the proxy at `addr`.
async fn send_keys(addr: SocketAddr, keys: &[Vec<u8>]) {
    let mut s = TcpStream::connect(addr).await.expect("connect proxy");
    for batch in keys.chunks(50) {
        let mut req = b"get".to_vec();
        for k in batch {
            req.push(b' ');
            req.extend_from_slice(k);
        }
        req.extend_from_slice(b"\r\n");
        s.write_all(&req).await.expect("write");
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !got.ends_with(b"END\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "proxy closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, b"END\r\n", "unexpected reply {:?}", String::from_utf8_lossy(&got));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_on_the_same_server_as_nutcracker() {
    let Some(nutcracker) = peer_or_skip("nutcracker") else { return };
    let scenarios = [
        Scenario { name: "three", servers: 3, entry: |_, a| format!("{a}:1"), hash_tag: false, unix: false },
        Scenario { name: "twenty_five", servers: 25, entry: |_, a| format!("{a}:1"), hash_tag: false, unix: false },
        Scenario {
            name: "weights",
            servers: 4,
            entry: |i, a| format!("{a}:{}", [1, 2, 3, 5][i]),
            hash_tag: false,
            unix: false,
        },
        Scenario {
            name: "named",
            servers: 4,
            entry: |i, a| format!("{a}:{} shard-{}", 1 + i % 2, 9 - i),
            hash_tag: false,
            unix: false,
        },
        Scenario { name: "hash_tag", servers: 3, entry: |_, a| format!("{a}:1"), hash_tag: true, unix: false },
        // Unix servers are on the ring as `/path:` (trailing colon).
        Scenario {
            name: "unix",
            servers: 4,
            entry: |i, a| format!("{a}:{}", [1, 2, 1, 3][i]),
            hash_tag: false,
            unix: true,
        },
        Scenario {
            name: "unix_named",
            servers: 3,
            entry: |i, a| format!("{a}:1 shard-{}", 5 - i),
            hash_tag: false,
            unix: true,
        },
    ];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x6d73);
    let dir = std::env::temp_dir().join(format!("memshard-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut checked = 0usize;
    for sc in &scenarios {
        let unix_dir = dir.join(sc.name);
        std::fs::create_dir_all(&unix_dir).expect("recorder dir");
        let binds: Vec<BackendAddr> = (0..sc.servers)
            .map(|i| match sc.unix {
                true => BackendAddr::Unix(unix_dir.join(format!("recorder-{i}.sock"))),
                false => BackendAddr::Tcp("127.0.0.1:0".parse().expect("addr")),
            })
            .collect();
        let recorders = KeyRecorders::start(&binds).expect("key-recording backends");
        let backends: Vec<String> = recorders.addrs().iter().map(BackendAddr::pool_text).collect();
        // Which backend each key reached, since the last call.
        let seen = || -> HashMap<Vec<u8>, usize> { recorders.drain().into_iter().collect() };
        let keys: Vec<Vec<u8>> = (0..KEYS_PER_POOL).map(|_| random_key(&mut rng, sc.hash_tag)).collect();
        // nutcracker first. Free ports can be taken by a parallel test between
        // picking and binding: retry with fresh ports if it does not come up.
        let mut started = None;
        for _attempt in 0..3 {
            // One pool per hash × distribution, each on its own port.
            let mut yaml = String::new();
            let mut pools = Vec::new();
            for hash in HASHES {
                for dist in ["ketama", "modula"] {
                    let name = format!("{hash}_{dist}");
                    let port = free_port().expect("port");
                    yaml.push_str(&format!(
                        "{name}:\n  listen: 127.0.0.1:{port}\n  hash: {hash}\n  distribution: {dist}\n"
                    ));
                    if sc.hash_tag {
                        yaml.push_str("  hash_tag: \"{}\"\n");
                    }
                    yaml.push_str("  servers:\n");
                    for (i, b) in backends.iter().enumerate() {
                        yaml.push_str(&format!("   - {}\n", (sc.entry)(i, b)));
                    }
                    pools.push((name, port));
                }
            }
            let file = dir.join(format!("{}.yml", sc.name));
            std::fs::write(&file, &yaml).expect("write config");
            let stats_port = free_port().expect("port");
            let child = std::process::Command::new(&nutcracker)
                .args(["-c", &file.to_string_lossy(), "-s", &stats_port.to_string(), "-a", "127.0.0.1"])
                .args(["-o", &dir.join(format!("{}.log", sc.name)).to_string_lossy()])
                .spawn()
                .expect("nutcracker starts");
            let guard = ChildGuard::new(child);
            let all_up = pools.iter().all(|(_, port)| {
                let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
                wait_for_listen(addr, Duration::from_secs(5)).is_ok()
            });
            if all_up {
                started = Some((yaml, pools, guard));
                break;
            }
        }
        let (yaml, pools, guard) = started.expect("nutcracker listens on every pool port");
        let mut theirs: HashMap<String, HashMap<Vec<u8>, usize>> = HashMap::new();
        for (name, port) in &pools {
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            seen();
            send_keys(addr, &keys).await;
            theirs.insert(name.clone(), seen());
        }
        drop(guard);

        // Then memshard proxy with the same file and backends.
        let config = Config::from_yaml(&yaml).expect("memshard loads the same file");
        let mut listeners = Vec::new();
        let mut addrs = HashMap::new();
        for (name, _) in &config.pools {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addrs.insert(name.clone(), l.local_addr().expect("addr"));
            listeners.push(l);
        }
        let (trigger, sd) = ShutdownTrigger::new();
        tokio::spawn(run(
            config,
            listeners,
            Ports::default(),
            ProxyConfig { workers: 1, ..ProxyConfig::default() },
            sd,
        ));
        for (name, _) in &pools {
            seen();
            send_keys(addrs[name], &keys).await;
            let ours = seen();
            let theirs = &theirs[name];
            assert_eq!(ours.len(), theirs.len(), "{}/{name}: different key counts", sc.name);
            for (k, srv) in theirs {
                assert_eq!(
                    ours.get(k),
                    Some(srv),
                    "{}/{name}: key {:?} placed differently",
                    sc.name,
                    String::from_utf8_lossy(k)
                );
            }
            checked += theirs.len();
        }
        trigger.trigger();
    }
    let _ = std::fs::remove_dir_all(&dir);
    // 7 scenarios × 24 pools × ~1000 distinct keys.
    assert!(checked >= scenarios.len() * 24 * 900, "only {checked} placements compared");
    eprintln!("{checked} key placements identical to nutcracker");
}

/// Connects to a unix socket path, polling until something listens there;
/// `None` once `alive` says the listening process is gone.
async fn connect_unix_when_up(path: &Path, mut alive: impl FnMut() -> bool) -> Option<tokio::net::UnixStream> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::UnixStream::connect(path).await {
            Ok(s) => return Some(s),
            Err(e) => assert!(std::time::Instant::now() < deadline, "{} never listened: {e}", path.display()),
        }
        if !alive() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one reply line.
async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await.expect("in time").expect("read");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_listener_and_a_missing_unix_server_behave_as_in_nutcracker() {
    use std::os::unix::fs::PermissionsExt;
    let Some(nutcracker) = peer_or_skip("nutcracker") else { return };
    let dir = std::env::temp_dir().join(format!("memshard-diff-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let sock = dir.join("pool.sock");
    let yaml = format!(
        "mc:\n  listen: {} 0640\n  timeout: 400\n  servers:\n   - {}:1\n",
        sock.display(),
        dir.join("nobody.sock").display()
    );
    let file = dir.join("pool.yml");
    std::fs::write(&file, &yaml).expect("write config");
    let mode = |p: &Path| std::fs::metadata(p).expect("socket file").permissions().mode() & 0o777;

    let mut theirs = None;
    for _attempt in 0..3 {
        let stats_port = free_port().expect("port");
        let child = std::process::Command::new(&nutcracker)
            .args(["-c", &file.to_string_lossy(), "-s", &stats_port.to_string(), "-a", "127.0.0.1"])
            .args(["-o", &dir.join("nutcracker.log").to_string_lossy()])
            .spawn()
            .expect("nutcracker starts");
        let mut guard = ChildGuard::new(child);
        // It exits at once when a parallel test took the stats port: retry.
        let Some(mut c) =
            connect_unix_when_up(&sock, || guard.child_mut().try_wait().is_ok_and(|st| st.is_none())).await
        else {
            continue;
        };
        let their_mode = mode(&sock);
        c.write_all(b"get a\r\n").await.expect("write");
        theirs = Some((their_mode, read_line(&mut c).await));
        break;
    }
    let (their_mode, their_reply) = theirs.expect("nutcracker listens on the unix socket");
    assert_eq!(their_mode, 0o640);

    // memshard on the same file: nutcracker's socket file is still there (it
    // does not remove it) and is replaced.
    let config = Config::from_yaml(&yaml).expect("config");
    let pool = &config.pools[0].1;
    let memshard_config::Listen::Unix { path, perm } = &pool.listen else { panic!("unix listen") };
    let l = memshard_net::bind_unix(path, *perm, pool.backlog).await.expect("bind over nutcracker's file");
    let (trigger, sd) = ShutdownTrigger::new();
    let proxy =
        tokio::spawn(run(config, vec![l], Ports::default(), ProxyConfig { workers: 1, ..ProxyConfig::default() }, sd));
    assert_eq!(mode(&sock), their_mode);
    let mut c = connect_unix_when_up(&sock, || true).await.expect("memshard listens");
    c.write_all(b"get a\r\n").await.expect("write");
    // nutcracker's words: `SERVER_ERROR No such file or directory`.
    assert_eq!(read_line(&mut c).await, their_reply);
    trigger.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(15), proxy).await.expect("proxy stops");
    assert!(!sock.exists(), "memshard removes its socket file at shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
