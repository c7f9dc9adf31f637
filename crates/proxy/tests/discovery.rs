//! Shards from DNS SRV: a pool with `discovery: dnssrv+NAME` follows the
//! SRV records — scale-out, scale-in, a pod's new IP — and keeps its last
//! good servers through SERVFAIL, an empty answer and targets that are not
//! host names; 1,000 targets arrive over TCP (the UDP answer is truncated).
//! Keys sit where a static list of the same `<pod>.<service>` names puts
//! them. Everything on loopback: backends on 127.0.0.2–6 (one port), the
//! test's own DNS responder (`memshard_testkit::dns`).

mod common;

use common::{FileProxy, ask, eventually, stats_doc};
use memshard_config::Config;
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_proxy::{Ports, ProxyConfig, run};
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use memshard_server::ServerConfig;
use memshard_testkit::dns::{self, SERVFAIL, Zone};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const SRV: &str = "_memcache._tcp.memcache.default.svc.cluster.local";

/// `n` memshard servers on the same port of 127.0.0.2, .3, …
async fn start_backends(n: u8, shutdown: &Shutdown) -> u16 {
    'port: for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
        let port = first.local_addr().expect("addr").port();
        let mut listeners = vec![first];
        for i in 1..n {
            match TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2 + i), port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'port,
            }
        }
        for l in listeners {
            tokio::spawn(memshard_server::run(
                l,
                ServerConfig { threads: 1, ..ServerConfig::default() },
                shutdown.clone(),
            ));
        }
        return port;
    }
    panic!("no port free on 127.0.0.2–{} at once", 1 + n);
}

/// Pod `i`'s SRV target.
fn target(i: usize) -> String {
    format!("sharded-memcache-{i}.memcache.default.svc.cluster.local")
}

/// The proxy with a stats port, one discovering pool, resolving through `dns`.
async fn start_proxy(dns: SocketAddr, shutdown: Shutdown) -> (SocketAddr, SocketAddr) {
    let yaml = format!(
        "p:\n  listen: 127.0.0.1:0\n  hash: md5\n  distribution: ketama\n  timeout: 2000\n  \
         dns_refresh_interval: 100\n  discovery: dnssrv+{SRV}\n"
    );
    let config = Config::from_yaml(&yaml).expect("config");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let stats = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addrs = (l.local_addr().expect("addr"), stats.local_addr().expect("addr"));
    let proxy = ProxyConfig { workers: 2, dns_servers: vec![dns], ..ProxyConfig::default() };
    tokio::spawn(async move {
        if let Err(e) = run(config, vec![l], Ports { stats: Some(stats), admin: None }, proxy, shutdown).await {
            panic!("proxy failed: {e}");
        }
    });
    addrs
}

/// The names of the pool's servers on the stats port, sorted.
async fn servers(stats: SocketAddr) -> Vec<String> {
    let doc = stats_doc(stats).await;
    let mut names: Vec<String> =
        doc["p"].as_object().expect("pool").iter().filter(|(_, v)| v.is_object()).map(|(k, _)| k.clone()).collect();
    names.sort();
    names
}

/// The ring names a static `servers:` list of pods `pods` (port `port`) gives.
fn names(pods: &[usize], port: u16) -> Vec<String> {
    let mut n: Vec<String> = pods.iter().map(|i| format!("sharded-memcache-{i}.memcache:{port}")).collect();
    n.sort();
    n
}

/// Sets keys through the proxy and checks each one is on the backend that a
/// ring over `pods` (as a static list names them) picks, `ip_of` giving
/// each pod's address now.
async fn placed_as_a_static_list(proxy: SocketAddr, pods: &[usize], port: u16, ip_of: impl Fn(usize) -> u8, tag: &str) {
    let specs: Vec<ServerSpec> =
        pods.iter().map(|i| ServerSpec::tcp(format!("sharded-memcache-{i}.memcache"), port, 1)).collect();
    let ring = Ring::build(&specs, HashKind::Md5, Distribution::Ketama, None).expect("ring");
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    let mut on = std::collections::HashSet::new();
    for k in 0..60 {
        let (key, value) = (format!("{tag}-key-{k}"), format!("{tag}-{k}"));
        let r = ask(&mut c, format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(), b"\r\n").await;
        assert_eq!(r, b"STORED\r\n", "{key}");
        let pod = pods[ring.server_for(key.as_bytes())];
        on.insert(pod);
        let at: SocketAddr = format!("127.0.0.{}:{port}", ip_of(pod)).parse().expect("addr");
        let mut direct = TcpStream::connect(at).await.expect("backend");
        let got = ask(&mut direct, format!("get {key}\r\n").as_bytes(), b"END\r\n").await;
        let want = format!("VALUE {key} 0 {}\r\n{value}\r\nEND\r\n", value.len());
        assert_eq!(String::from_utf8_lossy(&got), want, "{key} on pod {pod}");
    }
    assert!(on.len() > 1, "keys spread over several pods");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_follow_the_srv_records_and_a_dns_blip_empties_nothing() {
    let (trigger, sd) = ShutdownTrigger::new();
    let port = start_backends(5, &sd).await;
    let zone = Arc::new(Mutex::new(Zone::default()));
    let publish = |pods: &[usize]| {
        let mut z = zone.lock().expect("zone");
        z.srv.insert(SRV.into(), pods.iter().map(|&i| (format!("{}.", target(i)), port)).collect());
        for &i in pods {
            z.a.entry(target(i)).or_insert(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
        }
    };
    publish(&[0, 1, 2]);
    let dns_server = dns::start(zone.clone()).await.expect("dns responder");
    let (proxy, stats) = start_proxy(dns_server.addr(), sd.clone()).await;
    let ip = |i: usize| 2 + i as u8;
    eventually(10, "three servers discovered", async || servers(stats).await == names(&[0, 1, 2], port)).await;
    placed_as_a_static_list(proxy, &[0, 1, 2], port, ip, "three").await;

    // Scale out, then in: the proxy follows, keys sit as a static list of the same pods puts them.
    publish(&[0, 1, 2, 3, 4]);
    eventually(10, "scale-out followed", async || servers(stats).await == names(&[0, 1, 2, 3, 4], port)).await;
    placed_as_a_static_list(proxy, &[0, 1, 2, 3, 4], port, ip, "five").await;
    publish(&[0, 1, 2, 3]);
    eventually(10, "scale-in followed", async || servers(stats).await == names(&[0, 1, 2, 3], port)).await;
    placed_as_a_static_list(proxy, &[0, 1, 2, 3], port, ip, "four").await;

    // SERVFAIL: several rounds fail, the four servers stay and serve.
    {
        let mut z = zone.lock().expect("zone");
        z.fail = Some(SERVFAIL);
        z.failed = 0;
    }
    eventually(10, "lookups failing", async || zone.lock().expect("zone").failed >= 5).await;
    assert_eq!(servers(stats).await, names(&[0, 1, 2, 3], port), "SERVFAIL keeps the last good set");
    placed_as_a_static_list(proxy, &[0, 1, 2, 3], port, ip, "servfail").await;
    zone.lock().expect("zone").fail = None;

    // An answer with no record, then one whose targets are not host names (and one that is).
    let asked = |z: &Arc<Mutex<Zone>>| z.lock().expect("zone").srv_queries;
    zone.lock().expect("zone").srv.insert(SRV.into(), Vec::new());
    let before = asked(&zone);
    eventually(10, "empty answers seen", async || asked(&zone) >= before + 3).await;
    assert_eq!(servers(stats).await, names(&[0, 1, 2, 3], port), "an empty answer keeps the last good set");
    let bad =
        vec![("bad_host.memcache.x.".to_string(), port), ("single.".to_string(), port), ("a b.c.".to_string(), port)];
    zone.lock().expect("zone").srv.insert(SRV.into(), bad.clone());
    let before = asked(&zone);
    eventually(10, "unusable answers seen", async || asked(&zone) >= before + 3).await;
    assert_eq!(servers(stats).await, names(&[0, 1, 2, 3], port), "unusable targets keep the last good set");
    let mut mixed = bad;
    mixed.push((format!("{}.", target(0)), port));
    zone.lock().expect("zone").srv.insert(SRV.into(), mixed);
    eventually(10, "only the valid target kept", async || servers(stats).await == names(&[0], port)).await;

    // Pod 0 comes back at a new IP (the backend on .6): connections move, keys do not.
    publish(&[0, 1, 2]);
    eventually(10, "three again", async || servers(stats).await == names(&[0, 1, 2], port)).await;
    zone.lock().expect("zone").a.insert(target(0), Ipv4Addr::new(127, 0, 0, 6));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let moved = |i: usize| if i == 0 { 6 } else { 2 + i as u8 };
    placed_as_a_static_list(proxy, &[0, 1, 2], port, moved, "moved").await;
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_targets_arrive_over_tcp() {
    let (trigger, sd) = ShutdownTrigger::new();
    let port = start_backends(1, &sd).await;
    let zone = Arc::new(Mutex::new(Zone::default()));
    {
        let mut z = zone.lock().expect("zone");
        // Short names: 1,000 records must fit one DNS message (64 KiB).
        let pods: Vec<(String, u16)> = (0..1000).map(|i| (format!("m{i}.mc.ns.svc."), port)).collect();
        for i in 0..1000 {
            z.a.insert(format!("m{i}.mc.ns.svc"), Ipv4Addr::new(127, 0, 0, 2));
        }
        z.srv.insert(SRV.into(), pods);
    }
    let dns_server = dns::start(zone.clone()).await.expect("dns responder");
    let (proxy, stats) = start_proxy(dns_server.addr(), sd.clone()).await;
    eventually(20, "1,000 servers discovered", async || servers(stats).await.len() == 1000).await;
    assert!(zone.lock().expect("zone").tcp_queries > 0, "the truncated UDP answer was asked again over TCP");
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    for k in 0..50 {
        let r = ask(&mut c, format!("set k{k} 0 0 1\r\nx\r\nget k{k}\r\n").as_bytes(), b"END\r\n").await;
        assert_eq!(String::from_utf8_lossy(&r), format!("STORED\r\nVALUE k{k} 0 1\r\nx\r\nEND\r\n"));
    }
    trigger.trigger();
}

/// A pool file switched from the static list to discovery (a reload) keeps
/// serving throughout and moves no key: the static `<pod>.<service>` names
/// are the names discovery gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_list_turned_to_discovery_moves_no_key() {
    let (trigger, sd) = ShutdownTrigger::new();
    let port = start_backends(3, &sd).await;
    let zone = Arc::new(Mutex::new(Zone::default()));
    {
        let mut z = zone.lock().expect("zone");
        z.srv.insert(SRV.into(), (0..3).map(|i| (format!("{}.", target(i)), port)).collect());
        for i in 0..3 {
            let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
            z.a.insert(target(i), ip);
            z.a.insert(format!("sharded-memcache-{i}.memcache"), ip);
        }
    }
    let dns_server = dns::start(zone.clone()).await.expect("dns responder");
    let dir = std::env::temp_dir().join(format!("memshard-discovery-switch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("pool.yml");
    let head = "p:\n  listen: 127.0.0.1:0\n  hash: md5\n  distribution: ketama\n  timeout: 2000\n  dns_refresh_interval: 100\n";
    let list: String = (0..3).map(|i| format!("   - sharded-memcache-{i}.memcache:{port}:1\n")).collect();
    std::fs::write(&file, format!("{head}  servers:\n{list}")).expect("write");
    let cfg = ProxyConfig {
        workers: 2,
        dns_servers: vec![dns_server.addr()],
        watch_interval: None,
        ..ProxyConfig::default()
    };
    let running = FileProxy::start(&file, cfg).await;
    let (proxy, stats, reload) = (running.pools[0], running.stats, running.reload.clone());
    let ip = |i: usize| 2 + i as u8;
    placed_as_a_static_list(proxy, &[0, 1, 2], port, ip, "static").await;
    let queries = zone.lock().expect("zone").srv_queries;
    assert_eq!(queries, 0, "a static pool asks no SRV record");

    std::fs::write(&file, format!("{head}  discovery: dnssrv+{SRV}\n")).expect("write");
    reload.notify_one();
    // Served throughout: the listed servers stay until the first answer.
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    for k in 0..40 {
        let r = ask(&mut c, format!("get static-key-{k}\r\n").as_bytes(), b"END\r\n").await;
        let want = format!("VALUE static-key-{k} 0 {}\r\nstatic-{k}\r\nEND\r\n", format!("static-{k}").len());
        assert_eq!(String::from_utf8_lossy(&r), want, "static-key-{k} during the switch");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(10, "the SRV records asked", async || zone.lock().expect("zone").srv_queries > 0).await;
    assert_eq!(servers(stats).await, names(&[0, 1, 2], port), "the same three names");
    placed_as_a_static_list(proxy, &[0, 1, 2], port, ip, "discovered").await;
    trigger.trigger();
    let _ = std::fs::remove_dir_all(&dir);
}
