//! The proxy in front of real memshard servers, all in this process on
//! loopback: placement, multi-get merge, meta quiet mode, keyless commands,
//! failures, ejection and return.

mod common;

use common::ask;
use memshard_config::Config;
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_proxy::{Ports, ProxyConfig, run};
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use memshard_server::ServerConfig;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

async fn start_server(shutdown: Shutdown) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(memshard_server::run(l, ServerConfig { threads: 1, ..ServerConfig::default() }, shutdown));
    addr
}

/// Binds a server on a specific address (to bring a dead backend back).
async fn start_server_at(addr: SocketAddr, shutdown: Shutdown) {
    let l = TcpListener::bind(addr).await.expect("rebind");
    tokio::spawn(memshard_server::run(l, ServerConfig { threads: 1, ..ServerConfig::default() }, shutdown));
}

/// The proxy with two workers in front of `yaml`'s pool.
async fn start_proxy(yaml: &str, shutdown: Shutdown) -> SocketAddr {
    common::start_proxy(yaml, ProxyConfig { workers: 2, ..ProxyConfig::default() }, shutdown).await
}

/// A backend that accepts and reads but never answers.
async fn start_hung_backend() -> SocketAddr {
    let hung = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = hung.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = hung.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn yaml(backends: &[SocketAddr], extra: &str) -> String {
    // The listener is passed to `run`; the listen line only has to be valid.
    let mut y = String::from("mc:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n");
    y.push_str(extra);
    y.push_str("  servers:\n");
    for b in backends {
        y.push_str(&format!("   - {b}:1\n"));
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_where_the_ring_says() {
    let (trigger, sd) = ShutdownTrigger::new();
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(start_server(sd.clone()).await);
    }
    let proxy = start_proxy(&yaml(&backends, ""), sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    let specs: Vec<ServerSpec> = backends.iter().map(|b| ServerSpec::tcp(b.ip().to_string(), b.port(), 1)).collect();
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    // Pipelined: 300 sets in one write.
    let mut req = Vec::new();
    for i in 0..300 {
        req.extend_from_slice(format!("set key:{i} {i} 0 1\r\nx\r\n").as_bytes());
    }
    let reply = ask(&mut c, &req, &b"STORED\r\n".repeat(300)).await;
    assert_eq!(reply, b"STORED\r\n".repeat(300));
    let mut per = [0usize; 3];
    let mut direct = Vec::new();
    for b in &backends {
        direct.push(TcpStream::connect(b).await.expect("backend"));
    }
    for i in 0..300 {
        let key = format!("key:{i}");
        let owner = ring.server_for(key.as_bytes());
        per[owner] += 1;
        for (s, conn) in direct.iter_mut().enumerate() {
            let r = ask(conn, format!("get {key}\r\n").as_bytes(), b"END\r\n").await;
            assert_eq!(r != b"END\r\n", s == owner, "{key} on server {s}, ring says {owner}");
        }
    }
    // The spread itself is the ring's business (tested in memshard-ring); the
    // backends here sit on random ports, so only require that keys were spread.
    assert!(per.iter().filter(|&&n| n > 0).count() >= 2, "all keys on one server: {per:?}");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_get_merges_in_client_order_and_meta_quiet_holds() {
    let (trigger, sd) = ShutdownTrigger::new();
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(start_server(sd.clone()).await);
    }
    let proxy = start_proxy(&yaml(&backends, ""), sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    let mut req = Vec::new();
    for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        req.extend_from_slice(format!("set {k} 0 0 1 noreply\r\n{k}\r\n").as_bytes());
    }
    req.extend_from_slice(b"get h a missing g b a c\r\n");
    let r = ask(&mut c, &req, b"END\r\n").await;
    let expect: String =
        ["h", "a", "g", "b", "a", "c"].iter().map(|k| format!("VALUE {k} 0 1\r\n{k}\r\n")).collect::<String>()
            + "END\r\n";
    assert_eq!(String::from_utf8_lossy(&r), expect);
    // Quiet meta: hits still answer, the miss and the stored HD are suppressed,
    // mn marks the end — in order.
    let r = ask(&mut c, b"mg a v q\r\nmg nope v q\r\nms z 2 q\r\nzz\r\nmd nope q\r\nmn\r\n", b"MN\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "VA 1\r\na\r\nNF\r\nMN\r\n");
    // Keyless commands: version local, flush_all fanned out, stats refused clearly.
    let r = ask(&mut c, b"version\r\nflush_all\r\nget a\r\nstats\r\n", b"or each server\r\n").await;
    let text = String::from_utf8_lossy(&r);
    assert!(text.starts_with("VERSION 1.6.18 memshard-proxy-"), "{text}");
    assert!(text.contains("\r\nOK\r\nEND\r\nCLIENT_ERROR stats are not forwarded"), "{text}");
    // A malformed request gets memcached's reply and the connection goes on.
    let r = ask(&mut c, b"bogus\r\nset k 0 0 1\r\nxyz\r\nmn\r\n", b"MN\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "ERROR\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nMN\r\n");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_ejected_and_returns_after_a_probe() {
    let (trigger, sd) = ShutdownTrigger::new();
    let mut backends = Vec::new();
    for _ in 0..2 {
        backends.push(start_server(sd.clone()).await);
    }
    // A third backend address with nobody listening yet.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    backends.push(dead);
    let extra = "  auto_eject_hosts: true\n  timeout: 400\n  server_retry_timeout: 1000\n  server_failure_limit: 1\n";
    let proxy = start_proxy(&yaml(&backends, extra), sd.clone()).await;
    let specs: Vec<ServerSpec> = backends.iter().map(|b| ServerSpec::tcp(b.ip().to_string(), b.port(), 1)).collect();
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    let key = (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| ring.server_for(k.as_bytes()) == 2)
        .expect("a key on the dead server");
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    // First request to the dead server fails with a SERVER_ERROR, connection stays.
    let r = ask(&mut c, format!("set {key} 0 0 1\r\nx\r\n").as_bytes(), b"\r\n").await;
    assert!(r.starts_with(b"SERVER_ERROR "), "{}", String::from_utf8_lossy(&r));
    // Ejected after one failure: the key now maps to a live server.
    let r = ask(&mut c, format!("set {key} 0 0 1\r\ny\r\nget {key}\r\n").as_bytes(), b"END\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), format!("STORED\r\nVALUE {key} 0 1\r\ny\r\nEND\r\n"));
    // Bring the server back; after server_retry_timeout and a successful probe
    // the key maps to it again (an empty server: a miss).
    start_server_at(dead, sd.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = ask(&mut c, format!("get {key}\r\n").as_bytes(), b"END\r\n").await;
        if r == b"END\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "server never returned to the ring");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_times_out_with_server_error() {
    let (trigger, sd) = ShutdownTrigger::new();
    let hung_addr = start_hung_backend().await;
    let extra = "  timeout: 300\n";
    let proxy = start_proxy(&yaml(&[hung_addr], extra), sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    let started = Instant::now();
    let r = ask(&mut c, b"get a\r\nmn\r\n", b"MN\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "SERVER_ERROR Connection timed out\r\nMN\r\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_port_serves_twemproxy_json() {
    let (trigger, sd) = ShutdownTrigger::new();
    let mut backends = Vec::new();
    for _ in 0..2 {
        backends.push(start_server(sd.clone()).await);
    }
    let config = Config::from_yaml(&yaml(&backends, "")).expect("config");
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
    let r = ask(&mut c, b"set a 0 0 1\r\nx\r\nget a b c d\r\n", b"END\r\n").await;
    assert!(r.starts_with(b"STORED\r\nVALUE a 0 1\r\nx\r\n"));
    let mut s = TcpStream::connect(stats_addr).await.expect("stats");
    let mut doc = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut doc)).await.expect("in time").expect("read");
    assert!(doc.ends_with("}\n"), "{doc}");
    assert!(doc.starts_with("{\"service\":\"nutcracker\", \"source\":"), "{doc}");
    let v: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
    let pool = &v["mc"];
    for k in ["client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"] {
        assert!(pool[k].is_u64(), "pool field {k} missing: {doc}");
    }
    let mut requests = 0;
    for b in &backends {
        let srv = &pool[format!("{b}")];
        for k in [
            "server_eof",
            "server_err",
            "server_timedout",
            "server_connections",
            "server_ejected_at",
            "requests",
            "request_bytes",
            "responses",
            "response_bytes",
            "in_queue",
            "in_queue_bytes",
            "out_queue",
            "out_queue_bytes",
        ] {
            assert!(srv[k].is_u64(), "server field {k} missing for {b}: {doc}");
        }
        requests += srv["requests"].as_u64().expect("requests");
    }
    // One set plus the get's fragments (one per server holding some of the keys).
    assert!(requests >= 2, "{doc}");
    assert_eq!(pool["client_connections"].as_u64(), Some(1), "{doc}");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_eject_a_dead_server_errors_and_nothing_remaps() {
    let (trigger, sd) = ShutdownTrigger::new();
    let live = start_server(sd.clone()).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let backends = [live, dead];
    let extra = "  auto_eject_hosts: false\n  timeout: 400\n  server_failure_limit: 1\n";
    let proxy = start_proxy(&yaml(&backends, extra), sd.clone()).await;
    let specs: Vec<ServerSpec> = backends.iter().map(|b| ServerSpec::tcp(b.ip().to_string(), b.port(), 1)).collect();
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    let dead_key = (0..1000).map(|i| format!("k{i}")).find(|k| ring.server_for(k.as_bytes()) == 1).expect("key");
    let live_key = (0..1000).map(|i| format!("k{i}")).find(|k| ring.server_for(k.as_bytes()) == 0).expect("key");
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    // Many failures in a row: every request for the dead server's key fails,
    // none is moved to the live server, and the connection stays usable.
    for _ in 0..5 {
        let r = ask(&mut c, format!("set {dead_key} 0 0 1\r\nx\r\n").as_bytes(), b"\r\n").await;
        assert!(r.starts_with(b"SERVER_ERROR "), "{}", String::from_utf8_lossy(&r));
    }
    let r = ask(&mut c, format!("set {live_key} 0 0 1\r\ny\r\nget {live_key}\r\n").as_bytes(), b"END\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), format!("STORED\r\nVALUE {live_key} 0 1\r\ny\r\nEND\r\n"));
    let mut direct = TcpStream::connect(live).await.expect("live backend");
    let r = ask(&mut direct, format!("get {dead_key}\r\n").as_bytes(), b"END\r\n").await;
    assert_eq!(r, b"END\r\n", "the dead server's key must not have been written to the live server");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_every_request_in_flight_on_that_connection() {
    let (trigger, sd) = ShutdownTrigger::new();
    let hung_addr = start_hung_backend().await;
    let proxy = start_proxy(&yaml(&[hung_addr], "  timeout: 300\n"), sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    // Three pipelined requests on the same backend connection: all three get
    // an error reply, in order, and the client connection stays open.
    let r = ask(&mut c, b"get a\r\nget b\r\nmg c v\r\nmn\r\n", b"MN\r\n").await;
    assert_eq!(String::from_utf8_lossy(&r), "SERVER_ERROR Connection timed out\r\n".repeat(3) + "MN\r\n");
    trigger.trigger();
}
