//! Unix sockets at both ends of the proxy, with memshard servers in this
//! process: a pool listening on a socket file (its mode, a round trip, the
//! connection limit, the file gone after shutdown), and pools whose servers
//! are unix sockets (keys where the placement says, a stopped server's
//! `SERVER_ERROR`, a hung one's timeout, ejection, stats, and the return
//! after a probe).

mod common;

use common::ask;
use memshard_config::{Config, Listen};
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_proxy::{Ports, ProxyConfig, placement, run};
use memshard_server::{ServerConfig, ServerError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::JoinHandle;

/// A directory of its own under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("memshard-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A memshard server on a unix socket at `path` (as `memshard server -s`).
async fn start_unix_server(path: &Path, shutdown: Shutdown) -> JoinHandle<Result<(), ServerError>> {
    let l = memshard_net::bind_unix(path, None, 128).await.expect("bind server socket");
    tokio::spawn(memshard_server::run(l, ServerConfig { threads: 1, ..ServerConfig::default() }, shutdown))
}

/// Asks `get key` directly on a server's socket: is the key there?
async fn holds(path: &Path, key: &str) -> bool {
    let mut s = UnixStream::connect(path).await.expect("connect server socket");
    ask(&mut s, format!("get {key}\r\n").as_bytes(), b"END\r\n").await != b"END\r\n"
}

/// One pool. md5 rather than fnv1a_64: socket paths that differ in a few
/// bytes give fnv1a_64 ketama points that can leave a server without any of
/// a few hundred similar keys, and these tests need keys on every server.
fn pool_yaml(listen: &str, servers: &[String], extra: &str) -> String {
    let mut y = format!("mc:\n  listen: {listen}\n  hash: md5\n  distribution: ketama\n{extra}  servers:\n");
    for s in servers {
        y.push_str(&format!("   - {s}\n"));
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_on_a_unix_socket_serves_clients_and_removes_the_file_at_shutdown() {
    let dir = Scratch::new("listen");
    let (trigger, sd) = ShutdownTrigger::new();
    let backend = dir.path("backend.sock");
    start_unix_server(&backend, sd.clone()).await;
    let sock = dir.path("proxy.sock");
    let yaml = pool_yaml(
        &format!("{} 0600", sock.display()),
        &[format!("{}:1", backend.display())],
        "  client_connections: 2\n",
    );
    let config = Config::from_yaml(&yaml).expect("config");
    let pool = &config.pools[0].1;
    let Listen::Unix { path, perm } = &pool.listen else { panic!("not a unix listen line: {:?}", pool.listen) };
    assert_eq!(*perm, Some(0o600));
    let l = memshard_net::bind_unix(path, *perm, pool.backlog).await.expect("bind proxy socket");
    let proxy =
        tokio::spawn(run(config, vec![l], Ports::default(), ProxyConfig { workers: 2, ..ProxyConfig::default() }, sd));

    let mode = std::fs::metadata(&sock).expect("socket file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let mut c = UnixStream::connect(&sock).await.expect("connect proxy socket");
    let r = ask(&mut c, b"set k 5 0 2\r\nhi\r\nget k\r\n", b"END\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "STORED\r\nVALUE k 5 2\r\nhi\r\nEND\r\n");
    // Pipelined requests keep their order over the socket too.
    let mut req = Vec::new();
    for i in 0..200 {
        req.extend_from_slice(format!("set key:{i} 0 0 1\r\nx\r\nget key:{i}\r\n").as_bytes());
    }
    let want = b"STORED\r\nVALUE key:0 0 1\r\nx\r\nEND\r\n".len();
    let r = ask(&mut c, &req, b"key:199 0 1\r\nx\r\nEND\r\n").await;
    assert!(r.len() >= 200 * want, "{}", String::from_utf8_lossy(&r));
    assert!(holds(&backend, "key:123").await);

    // The pool's client_connections limit counts unix clients like TCP ones.
    let mut second = UnixStream::connect(&sock).await.expect("connect");
    assert_eq!(ask(&mut second, b"mn\r\n", b"MN\r\n").await, b"MN\r\n");
    let mut third = UnixStream::connect(&sock).await.expect("connect");
    let mut refused = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut refused)).await.expect("closed").expect("read");
    assert_eq!(String::from_utf8_lossy(&refused), "SERVER_ERROR too many open connections\r\n");

    // Shutdown drains the clients, and the socket file goes with the listener.
    trigger.trigger();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest)).await.expect("drained").expect("read");
    let stopped = tokio::time::timeout(Duration::from_secs(15), proxy).await.expect("proxy stops");
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    assert!(!sock.exists(), "the socket file is still there after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_on_unix_servers_where_the_placement_says() {
    let dir = Scratch::new("placement");
    let (trigger, sd) = ShutdownTrigger::new();
    let socks: Vec<PathBuf> = (0..3).map(|i| dir.path(&format!("shard-{i}.sock"))).collect();
    for s in &socks {
        start_unix_server(s, sd.clone()).await;
    }
    // Two servers named by path (twemproxy's `/path:`), one by its own name.
    let servers = vec![
        format!("{}:1", socks[0].display()),
        format!("{}:2", socks[1].display()),
        format!("{}:1 shard-two", socks[2].display()),
    ];
    let yaml = pool_yaml("127.0.0.1:22121", &servers, "");
    let config = Config::from_yaml(&yaml).expect("config");
    let placed = placement("mc", &config.pools[0].1).expect("placement");
    // Ring indices follow twemproxy's server order (shorter names first).
    let names: Vec<String> = placed.specs.iter().map(|s| s.ring_name()).collect();
    assert_eq!(
        names,
        ["shard-two".to_string(), format!("{}:", socks[0].display()), format!("{}:", socks[1].display())]
    );
    let by_index: Vec<PathBuf> = placed.specs.iter().map(|s| PathBuf::from(&s.host)).collect();
    let proxy = common::start_proxy(&yaml, ProxyConfig { workers: 2, ..ProxyConfig::default() }, sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    let mut req = Vec::new();
    for i in 0..300 {
        req.extend_from_slice(format!("set key:{i} 0 0 1\r\nx\r\n").as_bytes());
    }
    assert_eq!(ask(&mut c, &req, &b"STORED\r\n".repeat(300)).await, b"STORED\r\n".repeat(300));
    let mut per = [0usize; 3];
    for i in 0..300 {
        let key = format!("key:{i}");
        let owner = placed.ring.server_for(key.as_bytes());
        per[owner] += 1;
        for (s, path) in by_index.iter().enumerate() {
            assert_eq!(holds(path, &key).await, s == owner, "{key} on server {s}, placement says {owner}");
        }
    }
    assert!(per.iter().all(|&n| n > 0), "a server got no keys: {per:?}");
    // A multi-get spanning servers merges in the client's order.
    let r = ask(&mut c, b"get key:7 key:1 nope key:250 key:42\r\n", b"END\r\n").await;
    let expect: String =
        ["key:7", "key:1", "key:250", "key:42"].iter().map(|k| format!("VALUE {k} 0 1\r\nx\r\n")).collect();
    assert_eq!(String::from_utf8_lossy(&r), expect + "END\r\n");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_unix_server_answers_with_strerror() {
    let dir = Scratch::new("missing");
    let (trigger, sd) = ShutdownTrigger::new();
    let missing = dir.path("nobody.sock");
    let yaml = pool_yaml("127.0.0.1:22121", &[format!("{}:1", missing.display())], "  timeout: 400\n");
    let proxy = common::start_proxy(&yaml, ProxyConfig { workers: 1, ..ProxyConfig::default() }, sd).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    // twemproxy's wording: `SERVER_ERROR ` + strerror(errno).
    let r = ask(&mut c, b"get a\r\nmn\r\n", b"MN\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "SERVER_ERROR No such file or directory\r\nMN\r\n");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_unix_server_errors_is_ejected_and_returns_after_a_probe() {
    let dir = Scratch::new("eject");
    let (trigger, sd) = ShutdownTrigger::new();
    let socks: Vec<PathBuf> = (0..3).map(|i| dir.path(&format!("shard-{i}.sock"))).collect();
    start_unix_server(&socks[0], sd.clone()).await;
    start_unix_server(&socks[1], sd.clone()).await;
    let (stop_victim, victim_sd) = ShutdownTrigger::new();
    let victim = start_unix_server(&socks[2], victim_sd).await;
    let servers: Vec<String> = socks.iter().map(|s| format!("{}:1", s.display())).collect();
    let extra = "  auto_eject_hosts: true\n  timeout: 400\n  server_retry_timeout: 1000\n  server_failure_limit: 1\n";
    let yaml = pool_yaml("127.0.0.1:22121", &servers, extra);
    let config = Config::from_yaml(&yaml).expect("config");
    let placed = placement("mc", &config.pools[0].1).expect("placement");
    let victim_index = placed.specs.iter().position(|s| Path::new(&s.host) == socks[2]).expect("victim on the ring");
    let key = (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| placed.ring.server_for(k.as_bytes()) == victim_index)
        .expect("a key on the victim");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_addr = l.local_addr().expect("addr");
    let stats_l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let stats_addr = stats_l.local_addr().expect("addr");
    tokio::spawn(run(
        config,
        vec![l],
        Ports { stats: Some(stats_l), admin: None },
        ProxyConfig { workers: 1, ..ProxyConfig::default() },
        sd.clone(),
    ));
    let mut c = TcpStream::connect(proxy_addr).await.expect("connect");
    let r = ask(&mut c, format!("set {key} 0 0 1\r\nx\r\n").as_bytes(), b"\r\n").await;
    assert_eq!(r, b"STORED\r\n");
    assert!(holds(&socks[2], &key).await);

    // Stop the key's server: it closes its connections and removes its file.
    stop_victim.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(15), victim).await.expect("victim stops");
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    assert!(!socks[2].exists());
    let r = ask(&mut c, format!("set {key} 0 0 1\r\ny\r\n").as_bytes(), b"\r\n").await;
    assert!(r.starts_with(b"SERVER_ERROR "), "{}", String::from_utf8_lossy(&r));
    // Ejected after one failure: the key now lives on another server.
    let r = ask(&mut c, format!("set {key} 0 0 1\r\ny\r\nget {key}\r\n").as_bytes(), b"END\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), format!("STORED\r\nVALUE {key} 0 1\r\ny\r\nEND\r\n"));
    assert!(holds(&socks[0], &key).await || holds(&socks[1], &key).await);

    // The stats port names the unix server as twemproxy does, with its failure.
    let mut s = TcpStream::connect(stats_addr).await.expect("stats");
    let mut doc = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut doc)).await.expect("in time").expect("read");
    let v: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
    assert_eq!(v["mc"]["server_ejects"].as_u64(), Some(1), "{doc}");
    let srv = &v["mc"][format!("{}:", socks[2].display())];
    let failures = ["server_err", "server_eof", "server_timedout"].iter().filter_map(|k| srv[k].as_u64()).sum::<u64>();
    assert!(failures >= 1, "{doc}");
    assert!(srv["server_ejected_at"].as_u64().is_some_and(|t| t > 0), "{doc}");

    // Back at the same path: after server_retry_timeout and a successful
    // probe, the key maps to it again (an empty server: a miss).
    start_unix_server(&socks[2], sd.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ask(&mut c, format!("get {key}\r\n").as_bytes(), b"END\r\n").await == b"END\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "server never returned to the ring");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_unix_server_times_out_with_server_error() {
    let dir = Scratch::new("hung");
    let (trigger, sd) = ShutdownTrigger::new();
    // Accepts and reads, never answers.
    let hung = dir.path("hung.sock");
    let l = tokio::net::UnixListener::bind(&hung).expect("bind");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1024];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let yaml = pool_yaml("127.0.0.1:22121", &[format!("{}:1", hung.display())], "  timeout: 300\n");
    let proxy = common::start_proxy(&yaml, ProxyConfig { workers: 1, ..ProxyConfig::default() }, sd).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    let started = Instant::now();
    let r = ask(&mut c, b"get a\r\nget b\r\nmn\r\n", b"MN\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "SERVER_ERROR Connection timed out\r\n".repeat(2) + "MN\r\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    trigger.trigger();
}
