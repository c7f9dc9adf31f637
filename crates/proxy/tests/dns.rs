//! Names, never pinned IPs: the proxy follows a server's name to its new
//! address without moving a key, and keeps the last good address when DNS
//! fails. Everything runs in this process on loopback: the backends on
//! 127.0.0.2/3/4 (same port), and a small DNS responder the test controls
//! (`memshard_testkit::dns`).

mod common;

use common::{ask, eventually, server_stat};
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_proxy::ProxyConfig;
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use memshard_server::ServerConfig;
use memshard_testkit::dns::{self, NXDOMAIN, SERVFAIL, Zone};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Three memshard servers on the same port of 127.0.0.2, .3 and .4.
async fn start_backends(shutdown: &Shutdown) -> u16 {
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
        let port = first.local_addr().expect("addr").port();
        let (Ok(second), Ok(third)) =
            (TcpListener::bind(("127.0.0.3", port)).await, TcpListener::bind(("127.0.0.4", port)).await)
        else {
            continue; // that port is taken on another address: pick another
        };
        for l in [first, second, third] {
            let cfg = ServerConfig { threads: 1, ..ServerConfig::default() };
            tokio::spawn(memshard_server::run(l, cfg, shutdown.clone()));
        }
        return port;
    }
    panic!("no port free on 127.0.0.2, .3 and .4 at once");
}

/// The proxy with two workers, resolving through `dns` (system resolver when empty).
async fn start_proxy(yaml: &str, dns: Vec<SocketAddr>, shutdown: Shutdown) -> SocketAddr {
    common::start_proxy(yaml, ProxyConfig { workers: 2, dns_servers: dns, ..ProxyConfig::default() }, shutdown).await
}

async fn get(s: &mut TcpStream, key: &str) -> Option<String> {
    let r = ask(s, format!("get {key}\r\n").as_bytes(), b"END\r\n").await;
    let text = String::from_utf8(r).expect("utf8");
    let mut lines = text.split("\r\n");
    match lines.next() {
        Some("END") => None,
        Some(l) if l.starts_with("VALUE ") => lines.next().map(str::to_string),
        _ => panic!("get {key}: {text:?}"),
    }
}

async fn set(s: &mut TcpStream, key: &str, value: &str) {
    let r = ask(s, format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(), b"\r\n").await;
    assert_eq!(r, b"STORED\r\n", "set {key}: {:?}", String::from_utf8_lossy(&r));
}

#[allow(clippy::print_stderr)]
fn figure(text: String) {
    eprintln!("FIGURE {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_moving_to_a_new_address_moves_no_key_and_dns_failure_keeps_the_last_one() {
    let (trigger, sd) = ShutdownTrigger::new();
    let port = start_backends(&sd).await;
    let zone = Arc::new(Mutex::new(Zone::default()));
    {
        let mut z = zone.lock().expect("zone");
        z.a.insert("shard-a.test".into(), Ipv4Addr::new(127, 0, 0, 2));
        z.a.insert("shard-b.test".into(), Ipv4Addr::new(127, 0, 0, 4));
    }
    let dns_server = dns::start(zone.clone()).await.expect("dns responder");
    let dns = dns_server.addr();
    let yaml = format!(
        "mc:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  \
         dns_refresh_interval: 200\n  servers:\n   - shard-a.test:{port}:1\n   - shard-b.test:{port}:1\n"
    );
    let proxy = start_proxy(&yaml, vec![dns], sd.clone()).await;
    let direct = |ip: &str| {
        let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
        async move { TcpStream::connect(addr).await.expect("backend") }
    };
    let (mut at2, mut at3, mut at4) = (direct("127.0.0.2").await, direct("127.0.0.3").await, direct("127.0.0.4").await);

    // The ring is keyed by the names as configured, never by an address.
    let specs = [ServerSpec::tcp("shard-a.test", port, 1), ServerSpec::tcp("shard-b.test", port, 1)];
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    // fnv1a keys sharing a long prefix crowd one arc of the continuum, so
    // take keys until each server has ten.
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    for i in 0..10_000 {
        let k = format!("k{i}x");
        let side = if ring.server_for(k.as_bytes()) == 0 { &mut on_a } else { &mut on_b };
        if side.len() < 10 {
            side.push(k);
        }
        if on_a.len() == 10 && on_b.len() == 10 {
            break;
        }
    }
    assert!(on_a.len() == 10 && on_b.len() == 10, "uneven split {} / {}", on_a.len(), on_b.len());
    let keys: Vec<&String> = on_a.iter().chain(&on_b).collect();

    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    for k in &keys {
        set(&mut c, k, &format!("old-{k}")).await;
    }
    for k in &on_a {
        assert_eq!(get(&mut at2, k).await, Some(format!("old-{k}")), "{k} should be on shard-a = 127.0.0.2");
    }
    for k in &on_b {
        assert_eq!(get(&mut at4, k).await, Some(format!("old-{k}")), "{k} should be on shard-b = 127.0.0.4");
    }

    // shard-a's pod comes back at another address.
    zone.lock().expect("zone").a.insert("shard-a.test".into(), Ipv4Addr::new(127, 0, 0, 3));
    let moved = Instant::now();
    let probe = on_a[0].as_str();
    eventually(5, "shard-a's requests reach 127.0.0.3", async || get(&mut c, probe).await.is_none()).await;
    let followed = moved.elapsed();
    // Within one refresh interval (200 ms), plus the time to drain and
    // replace the old connections and this test's 20 ms polling.
    assert!(followed < Duration::from_millis(200 + 300), "followed the new address after {followed:?}");
    figure(format!(
        "pod restart with a new IP: the proxy followed the name to its new address {} ms after the DNS change \
         (dns_refresh_interval 200 ms); 0 of {} keys moved",
        followed.as_millis(),
        keys.len()
    ));
    for k in &on_a {
        assert_eq!(get(&mut c, k).await, None, "{k}: shard-a is now the empty 127.0.0.3");
        set(&mut c, k, &format!("new-{k}")).await;
        assert_eq!(get(&mut c, k).await, Some(format!("new-{k}")));
        assert_eq!(get(&mut at3, k).await, Some(format!("new-{k}")), "{k} must land on 127.0.0.3");
        assert_eq!(get(&mut at2, k).await, Some(format!("old-{k}")), "{k}: 127.0.0.2 no longer written");
    }
    // No key moved: shard-b's keys are still read from shard-b, and nothing of
    // shard-b's reached shard-a's new address.
    for k in &on_b {
        assert_eq!(get(&mut c, k).await, Some(format!("old-{k}")), "{k} stays on shard-b");
        assert_eq!(get(&mut at3, k).await, None, "{k} must not be on shard-a's address");
    }

    // DNS breaks, first with SERVFAIL, then with NXDOMAIN: the last good
    // addresses stay in use, for open connections and new ones alike.
    for rcode in [SERVFAIL, NXDOMAIN] {
        {
            let mut z = zone.lock().expect("zone");
            z.fail = Some(rcode);
            z.failed = 0;
        }
        // Several refresh rounds (both names each) have failed.
        eventually(5, "the proxy saw DNS fail", async || zone.lock().expect("zone").failed >= 6).await;
        for k in &on_a {
            let v = format!("rcode{rcode}-{k}");
            set(&mut c, k, &v).await;
            assert_eq!(get(&mut at3, k).await, Some(v), "{k} on the last good address");
        }
        // New client connections land on both worker threads.
        for _ in 0..4 {
            let mut fresh = TcpStream::connect(proxy).await.expect("proxy");
            for k in on_a.iter().take(3) {
                assert_eq!(get(&mut fresh, k).await, Some(format!("rcode{rcode}-{k}")));
            }
            for k in on_b.iter().take(3) {
                assert_eq!(get(&mut fresh, k).await, Some(format!("old-{k}")));
            }
        }
    }

    // DNS recovers: nothing changes, the names still point where they did.
    zone.lock().expect("zone").fail = None;
    set(&mut c, probe, "recovered").await;
    assert_eq!(get(&mut at3, probe).await, Some("recovered".into()));
    trigger.trigger();
}

/// A pod that comes back at a new address with its items (a warm restart)
/// is followed, never flushed: the name never left the ring. `preconnect`
/// and auto-ejection are on, the paths that once flushed at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_moving_to_a_warm_server_flushes_nothing() {
    let (trigger, sd) = ShutdownTrigger::new();
    let port = start_backends(&sd).await;
    let zone = Arc::new(Mutex::new(Zone::default()));
    zone.lock().expect("zone").a.insert("shard-a.test".into(), Ipv4Addr::new(127, 0, 0, 2));
    let dns_server = dns::start(zone.clone()).await.expect("dns responder");
    let dns = dns_server.addr();
    let yaml = format!(
        "mc:\n  listen: 127.0.0.1:22121\n  preconnect: true\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  \
         timeout: 2000\n  dns_refresh_interval: 100\n  servers:\n   - shard-a.test:{port}:1\n"
    );
    let addr = |ip: &str| -> SocketAddr { format!("{ip}:{port}").parse().expect("addr") };
    // The pod's new address already holds its items.
    let mut at3 = TcpStream::connect(addr("127.0.0.3")).await.expect("backend");
    set(&mut at3, "warm", "kept").await;
    let proxy = start_proxy(&yaml, vec![dns], sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    set(&mut c, "k", "at-2").await;
    zone.lock().expect("zone").a.insert("shard-a.test".into(), Ipv4Addr::new(127, 0, 0, 3));
    eventually(5, "requests reach 127.0.0.3", async || get(&mut c, "k").await.is_none()).await;
    assert_eq!(get(&mut c, "warm").await, Some("kept".into()), "the moved server's items survive");
    // Several refresh rounds later, still nothing flushed anywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        assert_eq!(server_stat(addr(ip), "cmd_flush").await, 0, "{ip} was flushed");
    }
    assert_eq!(get(&mut c, "warm").await, Some("kept".into()));
    trigger.trigger();
}

/// Without `--dns-server` the system resolver is used, so `/etc/hosts`
/// names work: `localhost` reaches a server on 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_resolver_reads_etc_hosts() {
    let (trigger, sd) = ShutdownTrigger::new();
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(memshard_server::run(l, ServerConfig { threads: 1, ..ServerConfig::default() }, sd.clone()));
    let yaml = format!(
        "mc:\n  listen: 127.0.0.1:22121\n  timeout: 2000\n  dns_refresh_interval: 100\n  servers:\n   - localhost:{port}:1\n"
    );
    let proxy = start_proxy(&yaml, Vec::new(), sd.clone()).await;
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    set(&mut c, "k", "v").await;
    assert_eq!(get(&mut c, "k").await, Some("v".into()));
    let mut direct = TcpStream::connect(("127.0.0.1", port)).await.expect("backend");
    assert_eq!(get(&mut direct, "k").await, Some("v".into()));
    trigger.trigger();
}
