//! Replicated pools (`replicas: R`): writes reach every live owner before
//! the client hears back, conditional writes run on the first owner and
//! are copied to the others (value, flags, TTL), reads fail over on a miss
//! or a failure and fill the owners that missed, multi-gets keep the
//! client's key order, noreply and quiet keep their meaning, and a dead
//! owner neither fails requests nor remaps its keys. Each owner is read
//! directly (not through the proxy) to see what it holds.

mod common;

use common::{ask, eventually, start_proxy, start_servers, stats_doc};
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_proxy::ProxyConfig;
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// A loopback address where nothing listens (connections are refused).
async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

fn yaml(servers: &[SocketAddr], replicas: usize, extra: &str) -> String {
    let distribution = if extra.contains("distribution:") { "" } else { "  distribution: ketama\n" };
    let mut y = format!(
        "mc:\n  listen: 127.0.0.1:0\n  hash: md5\n{distribution}  timeout: 2000\n  replicas: {replicas}\n\
         {extra}  servers:\n"
    );
    for s in servers {
        y.push_str(&format!("   - {s}:1\n"));
    }
    y
}

async fn proxy(servers: &[SocketAddr], replicas: usize, extra: &str, sd: &Shutdown) -> (SocketAddr, SocketAddr) {
    let stats = TcpListener::bind("127.0.0.1:0").await.expect("bind stats");
    let stats_addr = stats.local_addr().expect("addr");
    let config = memshard_config::Config::from_yaml(&yaml(servers, replicas, extra)).expect("config");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let cfg = ProxyConfig { workers: 2, ..ProxyConfig::default() };
    let sd = sd.clone();
    tokio::spawn(async move {
        memshard_proxy::run(config, vec![l], memshard_proxy::Ports { stats: Some(stats), admin: None }, cfg, sd).await
    });
    (addr, stats_addr)
}

/// The owners of `key` with every server live, first owner first.
fn owners(servers: &[SocketAddr], replicas: usize, key: &str) -> Vec<usize> {
    let specs: Vec<ServerSpec> = servers.iter().map(|s| ServerSpec::tcp(s.ip().to_string(), s.port(), 1)).collect();
    let ring = Ring::build(&specs, HashKind::Md5, Distribution::Ketama, None).expect("ring");
    ring.servers_for(key.as_bytes(), replicas).collect()
}

/// A key whose owners are exactly `want`, in that order.
fn key_owned_by(servers: &[SocketAddr], want: &[usize]) -> String {
    (0..100_000)
        .map(|n| format!("key:{n}"))
        .find(|k| owners(servers, want.len(), k) == want)
        .expect("a key with those owners")
}

/// What `server` holds for `key`: `mg key v f t`'s answer, asked directly,
/// with the remaining TTL rounded to ten seconds (a second may tick
/// between the write and the look).
async fn held(server: SocketAddr, key: &str) -> String {
    let mut s = TcpStream::connect(server).await.expect("connect");
    let r = ask(&mut s, format!("mg {key} v f t\r\nmn\r\n").as_bytes(), b"MN\r\n").await;
    let text = String::from_utf8_lossy(&r).trim_end_matches("MN\r\n").to_string();
    let (line, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    let line: Vec<String> = line
        .split(' ')
        .map(|t| match t.strip_prefix('t').and_then(|n| n.parse::<i64>().ok()) {
            Some(n) if n > 0 => format!("t{}", (n + 5) / 10 * 10),
            _ => t.to_string(),
        })
        .collect();
    format!("{}\r\n{rest}", line.join(" "))
}

async fn direct(server: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(server).await.expect("connect");
    let r = ask(&mut s, format!("{req}mn\r\n").as_bytes(), b"MN\r\n").await;
    String::from_utf8_lossy(&r).trim_end_matches("MN\r\n").to_string()
}

async fn through(c: &mut TcpStream, req: &str) -> String {
    let r = ask(c, format!("{req}mn\r\n").as_bytes(), b"MN\r\n").await;
    String::from_utf8_lossy(&r).trim_end_matches("MN\r\n").to_string()
}

async fn pool_stat(stats: SocketAddr, name: &str) -> u64 {
    stats_doc(stats).await["mc"][name].as_u64().unwrap_or_else(|| panic!("no {name} in the stats"))
}

/// A set reaches both owners (and nothing else); every write and every
/// conditional write leaves the owners with the same item — value, flags
/// and TTL — as the first owner returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_conditional_writes_leave_every_owner_alike() {
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let (p, stats) = proxy(&servers, 2, "", &sd).await;
    let mut c = TcpStream::connect(p).await.expect("proxy");
    let k = key_owned_by(&servers, &[0, 1]);
    let same = async |k: &str, want: &str| {
        for o in [0, 1] {
            assert_eq!(held(servers[o], k).await, want, "owner {o} of {k}");
        }
        assert_eq!(held(servers[2], k).await, "EN\r\n", "the server that does not own {k}");
    };

    assert_eq!(through(&mut c, &format!("set {k} 5 1000 3\r\nabc\r\n")).await, "STORED\r\n");
    same(&k, "VA 3 f5 t1000\r\nabc\r\n").await;
    assert_eq!(through(&mut c, &format!("append {k} 0 0 2\r\nde\r\n")).await, "STORED\r\n");
    same(&k, "VA 5 f5 t1000\r\nabcde\r\n").await;
    assert_eq!(through(&mut c, &format!("add {k} 0 0 1\r\nx\r\n")).await, "NOT_STORED\r\n");
    same(&k, "VA 5 f5 t1000\r\nabcde\r\n").await;
    assert_eq!(through(&mut c, &format!("replace {k} 9 500 2\r\nzz\r\n")).await, "STORED\r\n");
    same(&k, "VA 2 f9 t500\r\nzz\r\n").await;
    assert_eq!(through(&mut c, &format!("touch {k} 800\r\n")).await, "TOUCHED\r\n");
    same(&k, "VA 2 f9 t800\r\nzz\r\n").await;

    // Counters: the value incr returns is what both owners hold.
    assert_eq!(through(&mut c, &format!("set {k} 0 0 2\r\n10\r\n")).await, "STORED\r\n");
    assert_eq!(through(&mut c, &format!("incr {k} 5\r\n")).await, "15\r\n");
    same(&k, "VA 2 f0 t-1\r\n15\r\n").await;
    assert_eq!(through(&mut c, &format!("ma {k} MD D3 v\r\n")).await, "VA 2\r\n12\r\n");
    same(&k, "VA 2 f0 t-1\r\n12\r\n").await;

    // cas against the first owner's unique.
    let gets = through(&mut c, &format!("gets {k}\r\n")).await;
    let unique: u64 = gets.lines().next().and_then(|l| l.split(' ').nth(4)).and_then(|u| u.parse().ok()).expect("cas");
    assert_eq!(through(&mut c, &format!("cas {k} 3 0 3 {}\r\nnew\r\n", unique + 1000)).await, "EXISTS\r\n");
    assert_eq!(through(&mut c, &format!("cas {k} 3 0 3 {unique}\r\nnew\r\n")).await, "STORED\r\n");
    same(&k, "VA 3 f3 t-1\r\nnew\r\n").await;

    // Meta writes: mode switches and a CAS-guarded delete.
    assert_eq!(through(&mut c, &format!("ms {k} 1 MP\r\n>\r\n")).await, "HD\r\n");
    same(&k, "VA 4 f3 t-1\r\n>new\r\n").await;
    assert_eq!(through(&mut c, &format!("ms {k} 2 T60 F1\r\nok\r\n")).await, "HD\r\n");
    same(&k, "VA 2 f1 t60\r\nok\r\n").await;
    let c1 = through(&mut c, &format!("mg {k} c\r\n")).await;
    let cas: u64 = c1.trim_end().strip_prefix("HD c").and_then(|n| n.parse().ok()).expect("mg c");
    assert_eq!(through(&mut c, &format!("md {k} C{}\r\n", cas + 1)).await, "EX\r\n");
    same(&k, "VA 2 f1 t60\r\nok\r\n").await;
    assert_eq!(through(&mut c, &format!("md {k} C{cas}\r\n")).await, "HD\r\n");
    same(&k, "EN\r\n").await;

    // delete reaches both.
    assert_eq!(through(&mut c, &format!("set {k} 0 0 1\r\nv\r\n")).await, "STORED\r\n");
    assert_eq!(through(&mut c, &format!("delete {k}\r\n")).await, "DELETED\r\n");
    same(&k, "EN\r\n").await;
    assert!(pool_stat(stats, "replica_syncs").await >= 6, "conditional writes were synced");
    trigger.trigger();
}

/// noreply and quiet mode keep their meaning: nothing comes back for a
/// write that took, and the write is on both owners once a later request
/// is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noreply_and_quiet_say_nothing_and_still_reach_every_owner() {
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let (p, _) = proxy(&servers, 2, "", &sd).await;
    let mut c = TcpStream::connect(p).await.expect("proxy");
    let k = key_owned_by(&servers, &[2, 0]);
    assert_eq!(through(&mut c, &format!("set {k} 0 0 1 noreply\r\na\r\nadd {k} 0 0 1 noreply\r\nb\r\n")).await, "");
    assert_eq!(
        through(&mut c, &format!("ms {k} 1 q\r\nc\r\nmg {k} q v\r\nmg missing:{k} q v\r\n")).await,
        "VA 1\r\nc\r\n"
    );
    assert_eq!(through(&mut c, &format!("incr {k} 1 noreply\r\n")).await, "");
    assert_eq!(through(&mut c, &format!("add {k} 0 0 1\r\nz\r\n")).await, "NOT_STORED\r\n");
    for o in [2, 0] {
        assert_eq!(held(servers[o], &k).await, "VA 1 f0 t-1\r\nc\r\n", "owner {o}");
    }
    assert_eq!(through(&mut c, &format!("set {k} 0 0 1\r\n7\r\nincr {k} 1 noreply\r\n")).await, "STORED\r\n");
    for o in [2, 0] {
        assert_eq!(held(servers[o], &k).await, "VA 1 f0 t-1\r\n8\r\n", "owner {o}");
    }
    trigger.trigger();
}

/// A miss on the first owner is read from the next; the hit answers the
/// client and refills the owner that missed, with the same flags and TTL.
/// A multi-get answers in the client's key order, duplicates included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fail_over_on_a_miss_and_fill_the_owner_that_missed() {
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let (p, stats) = proxy(&servers, 2, "", &sd).await;
    let mut c = TcpStream::connect(p).await.expect("proxy");
    let a = key_owned_by(&servers, &[0, 1]);
    let b = key_owned_by(&servers, &[1, 2]);
    let only_first = key_owned_by(&servers, &[2, 0]);
    // Control: a key on no owner is a miss, and nothing fails over.
    assert_eq!(through(&mut c, &format!("get {a}\r\n")).await, "END\r\n");
    assert_eq!(pool_stat(stats, "replica_failovers").await, 0);
    // Held by the second owner alone, as after the first one restarted empty.
    assert_eq!(direct(servers[1], &format!("set {a} 7 900 2\r\nhi\r\n")).await, "STORED\r\n");
    assert_eq!(direct(servers[2], &format!("set {b} 3 0 2\r\nbb\r\n")).await, "STORED\r\n");
    assert_eq!(direct(servers[2], &format!("set {only_first} 1 0 1\r\nf\r\n")).await, "STORED\r\n");
    assert_eq!(through(&mut c, &format!("get {a}\r\n")).await, format!("VALUE {a} 7 2\r\nhi\r\nEND\r\n"));
    eventually(5, "the first owner is refilled", async || held(servers[0], &a).await == "VA 2 f7 t900\r\nhi\r\n").await;
    assert_eq!(pool_stat(stats, "replica_failovers").await, 1);
    assert!(pool_stat(stats, "replica_fills").await >= 1);

    let r = through(&mut c, &format!("get {b} nokey {a} {only_first} {b}\r\n")).await;
    let vb = format!("VALUE {b} 3 2\r\nbb\r\n");
    let want = format!("{vb}VALUE {a} 7 2\r\nhi\r\nVALUE {only_first} 1 1\r\nf\r\n{vb}END\r\n");
    assert_eq!(r, want);
    eventually(5, "b's first owner is refilled", async || held(servers[1], &b).await == "VA 2 f3 t-1\r\nbb\r\n").await;
    // The fill is an add: a write that reached the owner first stays.
    let mg = through(&mut c, &format!("mg {b} v f\r\n")).await;
    assert_eq!(mg, "VA 2 f3\r\nbb\r\n");
    trigger.trigger();
}

/// With an owner dead, nothing fails: writes are taken by the live owner
/// (the dead one is ejected at once), reads come from it, and keys stay on
/// their owners rather than moving where the ring of live servers would
/// put them. The control: with one owner per key, the same dead server
/// fails requests for its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owner_fails_nothing_and_remaps_nothing() {
    let (trigger, sd) = ShutdownTrigger::new();
    let mut servers = start_servers(3, &sd).await;
    servers[0] = dead_addr().await;
    let extra = "  auto_eject_hosts: true\n  server_failure_limit: 3\n  server_retry_timeout: 60000\n";
    let (single, _) = proxy(&servers, 1, extra, &sd).await;
    let (p, stats) = proxy(&servers, 2, extra, &sd).await;
    let k = key_owned_by(&servers, &[0, 2]);
    let mut one = TcpStream::connect(single).await.expect("proxy");
    let r = through(&mut one, &format!("set {k} 0 0 1\r\nx\r\n")).await;
    assert!(r.starts_with("SERVER_ERROR"), "control: one owner, dead: {r}");

    let mut c = TcpStream::connect(p).await.expect("proxy");
    for i in 0..20 {
        let key = format!("{k}:{i}");
        let owners_of = owners(&servers, 2, &key);
        let r = through(&mut c, &format!("set {key} 0 0 2\r\nv{}\r\nget {key}\r\n", i % 10)).await;
        assert_eq!(r, format!("STORED\r\nVALUE {key} 0 2\r\nv{}\r\nEND\r\n", i % 10), "owners {owners_of:?}");
        for (s, addr) in servers.iter().enumerate().skip(1) {
            let on = held(*addr, &key).await != "EN\r\n";
            assert_eq!(on, owners_of.contains(&s), "{key} on server {s}; owners {owners_of:?}");
        }
    }
    assert_eq!(pool_stat(stats, "replica_ejects").await, 1, "the dead owner was ejected once");
    assert_eq!(pool_stat(stats, "forward_error").await, 0);
    trigger.trigger();
}

/// gat touches every owner; a gat whose first owner misses is served by the
/// next, and the first then holds the item too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gat_touches_every_owner_and_fails_over_on_a_miss() {
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let (p, _) = proxy(&servers, 3, "", &sd).await;
    let mut c = TcpStream::connect(p).await.expect("proxy");
    let k = key_owned_by(&servers, &[1, 0, 2]);
    assert_eq!(through(&mut c, &format!("set {k} 4 0 1\r\ng\r\n")).await, "STORED\r\n");
    assert_eq!(through(&mut c, &format!("gat 300 {k}\r\n")).await, format!("VALUE {k} 4 1\r\ng\r\nEND\r\n"));
    for (o, server) in servers.iter().enumerate() {
        assert_eq!(held(*server, &k).await, "VA 1 f4 t300\r\ng\r\n", "owner {o}");
    }
    assert_eq!(direct(servers[1], &format!("delete {k}\r\n")).await, "DELETED\r\n");
    assert_eq!(
        through(&mut c, &format!("gat 200 {k} {k}\r\n")).await,
        format!("VALUE {k} 4 1\r\ng\r\n").repeat(2) + "END\r\n"
    );
    for (o, server) in servers.iter().enumerate() {
        assert_eq!(held(*server, &k).await, "VA 1 f4 t200\r\ng\r\n", "owner {o}");
    }
    trigger.trigger();
}

/// Every write lands on exactly the owners the ring names — ketama's next
/// distinct servers clockwise, modula's next servers in order — and on no
/// other server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_land_on_the_owners_the_ring_names() {
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(5, &sd).await;
    for dist in [Distribution::Ketama, Distribution::Modula] {
        let (p, _) = proxy(&servers, 3, &format!("  distribution: {dist}\n"), &sd).await;
        let specs: Vec<ServerSpec> = servers.iter().map(|s| ServerSpec::tcp(s.ip().to_string(), s.port(), 1)).collect();
        let ring = Ring::build(&specs, HashKind::Md5, dist, None).expect("ring");
        let mut c = TcpStream::connect(p).await.expect("proxy");
        let mut seen = std::collections::HashSet::new();
        for i in 0..25 {
            let key = format!("{dist}:{i}");
            assert_eq!(through(&mut c, &format!("set {key} 0 0 1\r\nx\r\n")).await, "STORED\r\n");
            let want: Vec<usize> = ring.servers_for(key.as_bytes(), 3).collect();
            let mut on = Vec::new();
            for (s, addr) in servers.iter().enumerate() {
                if held(*addr, &key).await != "EN\r\n" {
                    on.push(s);
                }
            }
            let mut sorted = want.clone();
            sorted.sort_unstable();
            assert_eq!(on, sorted, "{key}: owners {want:?}");
            seen.insert(want);
        }
        assert!(seen.len() > 3, "{dist}: the keys have different owner lists");
    }
    trigger.trigger();
}

/// With `replicas: 1` (the default) a set reaches one server, as twemproxy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_is_twemproxy() {
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let p = start_proxy(&yaml(&servers, 1, ""), ProxyConfig { workers: 1, ..ProxyConfig::default() }, sd.clone()).await;
    let mut c = TcpStream::connect(p).await.expect("proxy");
    for i in 0..30 {
        let key = format!("k{i}");
        assert_eq!(through(&mut c, &format!("set {key} 0 0 1\r\nx\r\n")).await, "STORED\r\n");
        let held_by: Vec<usize> = {
            let mut v = Vec::new();
            for (s, a) in servers.iter().enumerate() {
                if held(*a, &key).await != "EN\r\n" {
                    v.push(s);
                }
            }
            v
        };
        assert_eq!(held_by, owners(&servers, 1, &key));
    }
    trigger.trigger();
}
