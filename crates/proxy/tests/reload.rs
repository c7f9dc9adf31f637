//! Hot reload of the pool file: what changes, what must not.
//!
//! - placement after each of several server-set changes equals nutcracker's
//!   under the new file (a fresh nutcracker per file, the same key-recording
//!   backends behind both);
//! - a reload under pipelined load from many clients: no error, no closed
//!   connection, no wrong value, and the servers that stay keep their backend
//!   connections (their accepted-connection count does not move);
//! - the kubelet's ConfigMap update (a `..data` symlink swapped to a new
//!   folder) is noticed with no signal;
//! - a broken file, and a half-written one, change nothing and are counted;
//! - a new pool starts listening, a removed one stops accepting, a changed
//!   `listen` moves the pool while its other clients go on.

mod common;

use common::{FileProxy, ask, eventually, start_servers};
use memshard_net::ShutdownTrigger;
use memshard_proxy::ProxyConfig;
use memshard_testkit::{BackendAddr, ChildGuard, KeyRecorders, free_port, peer_or_skip, wait_for_listen};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A scratch directory of its own for each test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memshard-reload-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The proxy on `file` (see `common::FileProxy`) with `workers` worker
/// threads per pool; `watch`: the file watch interval.
async fn start(file: &Path, watch: Option<Duration>, workers: usize) -> FileProxy {
    FileProxy::start(file, ProxyConfig { workers, watch_interval: watch, ..ProxyConfig::default() }).await
}

/// `n` key-recording backends and their `servers:` entries (weight 1).
fn recorders(n: usize) -> (KeyRecorders, Vec<String>) {
    let recorders =
        KeyRecorders::start(&vec![BackendAddr::Tcp("127.0.0.1:0".parse().expect("addr")); n]).expect("recorders");
    let entries = recorders.addrs().iter().map(|a| format!("{}:1", a.pool_text())).collect();
    (recorders, entries)
}

/// A pool file of one ketama pool listening on `port`, hashing with md5
/// (unless `extra` says otherwise: twemproxy's fnv1a_64 spreads short keys
/// that differ only in their last bytes over few points of the continuum).
fn pool_yaml(name: &str, port: u16, servers: &[String], extra: &str) -> String {
    let hash = if extra.contains("hash:") { "" } else { "  hash: md5\n" };
    let mut y = format!(
        "{name}:\n  listen: 127.0.0.1:{port}\n{hash}  distribution: ketama\n  timeout: 2000\n{extra}  servers:\n"
    );
    for s in servers {
        y.push_str(&format!("   - {s}\n"));
    }
    y
}

/// `get` of every key through `addr`, in batches; every reply is `END`
/// (the recorders hold nothing).
async fn send_keys(addr: SocketAddr, keys: &[String]) {
    let mut s = TcpStream::connect(addr).await.expect("connect proxy");
    for batch in keys.chunks(40) {
        let req = format!("get {}\r\n", batch.join(" "));
        let r = ask(&mut s, req.as_bytes(), b"END\r\n").await;
        assert_eq!(r, b"END\r\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_after_each_reload_is_nutcrackers_under_the_new_file() {
    let Some(nutcracker) = peer_or_skip("nutcracker") else { return };
    let dir = scratch("placement");
    let binds = vec![BackendAddr::Tcp("127.0.0.1:0".parse().expect("addr")); 6];
    let recorders = KeyRecorders::start(&binds).expect("recorders");
    let b: Vec<String> = recorders.addrs().iter().map(BackendAddr::pool_text).collect();
    let keys: Vec<String> = (0..1500).map(|i| format!("user:{i}:{}", i * 7919 % 1013)).collect();
    // Scale out, scale in, a weight change, named servers, another hash.
    // The article's fnv1a_64, then another hash and a hash_tag.
    let fnv = "  hash: fnv1a_64\n";
    let sets: Vec<(Vec<String>, &str)> = vec![
        (vec![format!("{}:1", b[0]), format!("{}:1", b[1]), format!("{}:1", b[2])], fnv),
        ((0..5).map(|i| format!("{}:1", b[i])).collect(), fnv),
        (vec![format!("{}:1", b[0]), format!("{}:1", b[2]), format!("{}:1", b[4])], fnv),
        (vec![format!("{}:1", b[0]), format!("{}:3", b[2]), format!("{}:2", b[4]), format!("{}:1", b[5])], fnv),
        ((0..6).map(|i| format!("{}:1 shard-{i}", b[i])).collect(), fnv),
        ((0..6).map(|i| format!("{}:1 shard-{i}", b[i])).collect(), "  hash: murmur\n  hash_tag: \"{}\"\n"),
    ];
    let port = free_port().expect("port");
    let file = dir.join("pool.yml");
    std::fs::write(&file, pool_yaml("p", port, &sets[0].0, sets[0].1)).expect("write");
    let proxy = start(&file, None, 2).await;
    let ours_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let seen = || -> HashMap<Vec<u8>, usize> { recorders.drain().into_iter().collect() };
    let mut compared = 0;
    for (step, (servers, extra)) in sets.iter().enumerate() {
        if step > 0 {
            // Without the settle: during one, a key that misses on its new
            // server is also asked of its old one, and would be seen twice.
            let ours = format!("{extra}  ring_change_settle: 0\n");
            std::fs::write(&file, pool_yaml("p", port, servers, &ours)).expect("write");
            proxy.reload_to(step as u64 + 1).await;
        }
        seen();
        send_keys(ours_addr, &keys).await;
        let ours = seen();
        // nutcracker, fresh, on the same file content (its own port).
        let nc_port = free_port().expect("port");
        let nc_file = dir.join(format!("nc-{step}.yml"));
        std::fs::write(&nc_file, pool_yaml("p", nc_port, servers, extra)).expect("write");
        let stats_port = free_port().expect("port");
        let child = std::process::Command::new(&nutcracker)
            .args(["-c", &nc_file.to_string_lossy(), "-s", &stats_port.to_string(), "-a", "127.0.0.1"])
            .args(["-o", &dir.join(format!("nc-{step}.log")).to_string_lossy()])
            .spawn()
            .expect("nutcracker starts");
        let _guard = ChildGuard::new(child);
        let nc_addr: SocketAddr = format!("127.0.0.1:{nc_port}").parse().expect("addr");
        wait_for_listen(nc_addr, Duration::from_secs(5)).expect("nutcracker listens");
        seen();
        send_keys(nc_addr, &keys).await;
        let theirs = seen();
        assert_eq!(ours.len(), keys.len(), "step {step}: every key reached a backend");
        assert_eq!(ours, theirs, "step {step}: placement differs from nutcracker's under the new file");
        compared += ours.len();
    }
    assert_eq!(proxy.stats().await["reloads"], 5);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{compared} placements identical to nutcracker's across 5 reloads");
}

/// What a get may answer after `set key = last`: that value, or a miss (the
/// key moved to a server that has not seen it). Anything else is wrong.
fn check_get(key: &str, last: &str, reply: &[u8]) -> Result<bool, String> {
    if reply == b"END\r\n" {
        return Ok(false);
    }
    let want = format!("VALUE {key} 0 {}\r\n{last}\r\nEND\r\n", last.len());
    if reply == want.as_bytes() {
        Ok(true)
    } else {
        Err(format!("{key}: wanted {last:?} or a miss, got {:?}", String::from_utf8_lossy(reply)))
    }
}

#[test]
fn the_value_checker_sees_a_wrong_value() {
    assert_eq!(check_get("k", "v1", b"VALUE k 0 2\r\nv1\r\nEND\r\n"), Ok(true));
    assert_eq!(check_get("k", "v1", b"END\r\n"), Ok(false));
    assert!(check_get("k", "v2", b"VALUE k 0 2\r\nv1\r\nEND\r\n").is_err(), "a stale value is caught");
    assert!(check_get("k", "v1", b"SERVER_ERROR Connection timed out\r\n").is_err(), "an error is caught");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_pipelined_load_loses_nothing() {
    let dir = scratch("load");
    let (trigger, sd) = ShutdownTrigger::new();
    let servers = start_servers(4, &sd).await;
    let entry = |a: &SocketAddr| format!("{a}:1");
    let three: Vec<String> = servers[..3].iter().map(entry).collect();
    let four: Vec<String> = servers.iter().map(entry).collect();
    let port = free_port().expect("port");
    let file = dir.join("pool.yml");
    std::fs::write(&file, pool_yaml("p", port, &three, "")).expect("write");
    // One worker: it holds exactly one connection to each server.
    let proxy = start(&file, None, 1).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // Warm: every backend connection of the kept servers exists.
    let mut warm = TcpStream::connect(addr).await.expect("connect");
    for i in 0..200 {
        ask(&mut warm, format!("set warm{i} 0 0 1\r\nw\r\n").as_bytes(), b"STORED\r\n").await;
    }
    // The proxy's one connection to each server, and this stats connection.
    let accepted_before = accepted(&servers[..3]).await;
    assert_eq!(accepted_before, [2, 2, 2], "one connection to each server");

    // 24 clients, each pipelining 8 set+get pairs per round until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..24 {
        let stop = stop.clone();
        clients.spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let (mut hits, mut misses, mut rounds) = (0u64, 0u64, 0u64);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let mut req = Vec::new();
                let mut want = Vec::new();
                for j in 0..8 {
                    let key = format!("c{c}k{}", (rounds * 8 + j) % 64);
                    let val = format!("v{rounds}x{j}");
                    req.extend_from_slice(format!("set {key} 0 0 {}\r\n{val}\r\nget {key}\r\n", val.len()).as_bytes());
                    want.push((key, val));
                }
                s.write_all(&req).await.expect("write (connection kept)");
                for (key, val) in &want {
                    let stored = read_reply(&mut s, b"\r\n").await;
                    assert_eq!(stored, b"STORED\r\n", "client {c}: set {key}");
                    let got = read_reply(&mut s, b"END\r\n").await;
                    match check_get(key, val, &got) {
                        Ok(true) => hits += 1,
                        Ok(false) => misses += 1,
                        Err(e) => panic!("client {c}: {e}"),
                    }
                }
                rounds += 1;
            }
            (hits, misses, rounds)
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A change of settings only, then a scale-out, then a weight change.
    std::fs::write(&file, pool_yaml("p", port, &three, "  server_retry_timeout: 5000\n")).expect("write");
    proxy.reload_to(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&file, pool_yaml("p", port, &four, "  server_retry_timeout: 5000\n")).expect("write");
    proxy.reload_to(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every client still connected, none refused.
    let doc = proxy.stats().await;
    assert_eq!(doc["p"]["client_connections"], 25, "{doc}");
    assert_eq!(doc["p"]["client_eof"], 0, "{doc}");
    assert_eq!(doc["p"]["client_err"], 0, "{doc}");
    assert_eq!(doc["p"]["forward_error"], 0, "{doc}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut hits, mut misses, mut rounds) = (0, 0, 0);
    while let Some(r) = clients.join_next().await {
        let (h, m, n) = r.expect("client ran without an error, a closed connection or a wrong value");
        hits += h;
        misses += m;
        rounds += n;
    }
    assert!(rounds >= 24 * 5, "the load ran through the reloads ({rounds} rounds)");
    // A key that moved to the new server misses once; the rest hit.
    assert!(hits > misses * 10, "{hits} hits, {misses} misses");
    // The kept servers' connections were not replaced: the new connections
    // to each are the two that list its keys and delete those about to move
    // to it before the scale-out, and the stats connection asking.
    let accepted_after = accepted(&servers[..3]).await;
    assert_eq!(accepted_after, [5, 5, 5], "backend connections made across the reloads");
    // The new server: the two connections that cleared it of the keys it
    // was about to own (it could hold old ones), one for requests, and stats.
    assert_eq!(accepted(&servers[3..]).await, [4], "the new server took requests on one connection");
    let doc = proxy.stats().await;
    assert_eq!(doc["reloads"], 2);
    assert_eq!(doc["reloads_failed"], 0);
    eprintln!("{rounds} rounds through 2 reloads: {hits} hits, {misses} misses, 0 errors");
    drop(proxy);
    trigger.trigger();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each server's `total_connections` (the stats connection asking, and
/// every earlier one, included).
async fn accepted(servers: &[SocketAddr]) -> Vec<u64> {
    let mut out = Vec::new();
    for s in servers {
        out.push(common::server_stat(*s, "total_connections").await);
    }
    out
}

/// Reads one reply ending with `until`.
async fn read_reply(s: &mut TcpStream, until: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(until) {
        let n = tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(s, &mut b))
            .await
            .expect("reply in time")
            .expect("read (connection kept)");
        assert!(n > 0, "the proxy closed the connection; got {:?}", String::from_utf8_lossy(&got));
        got.push(b[0]);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_style_configmap_update_is_noticed_without_a_signal() {
    let dir = scratch("kubelet");
    let (recorders, b) = recorders(2);
    let port = free_port().expect("port");
    // What the kubelet writes: FILE -> ..data/FILE, ..data -> ..<timestamp>/.
    let publish = |version: &str, servers: &[String]| {
        let folder = dir.join(format!("..{version}"));
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join("pool.yml"), pool_yaml("p", port, servers, "")).expect("write");
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("..{version}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, dir.join("..data")).expect("atomic swap");
    };
    publish("2026_12_07_01", &b[..1]);
    std::os::unix::fs::symlink("..data/pool.yml", dir.join("pool.yml")).expect("file symlink");
    let proxy = start(&dir.join("pool.yml"), Some(Duration::from_millis(100)), 2).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    send_keys(addr, &keys).await;
    assert!(recorders.drain().iter().all(|(_, i)| *i == 0), "one server first");
    let sha1 = proxy.stats().await["config_sha256"].as_str().expect("sha").to_string();
    assert_eq!(sha1.len(), 64);

    publish("2026_12_07_02", &b);
    eventually(10, "the swapped ..data to be applied", async || proxy.generation().await == 2).await;
    send_keys(addr, &keys).await;
    let reached: std::collections::HashSet<usize> = recorders.drain().into_iter().map(|(_, i)| i).collect();
    assert_eq!(reached.len(), 2, "keys now reach both servers");
    let doc = proxy.stats().await;
    assert_ne!(doc["config_sha256"].as_str(), Some(sha1.as_str()));
    assert_eq!(doc["last_reload"], "ok");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_half_written_file_keeps_the_running_pool() {
    let dir = scratch("broken");
    let (recorders, b) = recorders(3);
    let port = free_port().expect("port");
    let file = dir.join("pool.yml");
    std::fs::write(&file, pool_yaml("p", port, &b[..2], "")).expect("write");
    let proxy = start(&file, Some(Duration::from_millis(100)), 2).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut client = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut client, b"get a b c\r\n", b"END\r\n").await, b"END\r\n");

    // A bad directive: refused with the file and line, counted once.
    std::fs::write(&file, pool_yaml("p", port, &b, "  timeout: soon\n")).expect("write");
    eventually(10, "the bad file to be refused", async || proxy.stats().await["reloads_failed"] == 1).await;
    let doc = proxy.stats().await;
    let why = doc["last_reload"].as_str().expect("last_reload");
    assert!(why.starts_with(&format!("{}:6:", file.display())), "{why}");
    assert_eq!(doc["config_generation"], 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(proxy.stats().await["reloads_failed"], 1, "the same bad content is reported once");
    // The running pool still serves, on its two servers, on the same connection.
    recorders.drain();
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    assert_eq!(ask(&mut client, format!("get {}\r\n", keys.join(" ")).as_bytes(), b"END\r\n").await, b"END\r\n");
    assert!(recorders.drain().iter().all(|(_, i)| *i < 2), "still the old two servers");

    // A SIGHUP on the bad file is refused again (asked, so reported).
    proxy.reload.notify_one();
    eventually(10, "the asked reload to be refused", async || proxy.stats().await["reloads_failed"] == 2).await;

    // Half-written: the file cut inside its server list, then completed.
    let whole = pool_yaml("p", port, &b, "");
    let cut = &whole[..whole.len() - b[2].len() / 2 - 2];
    std::fs::write(&file, cut).expect("write half");
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&file, &whole).expect("write whole");
    eventually(10, "the complete file to be applied", async || proxy.generation().await == 2).await;
    let doc = proxy.stats().await;
    assert_eq!(doc["reloads"], 1, "only the complete file was applied: {doc}");
    recorders.drain();
    assert_eq!(ask(&mut client, format!("get {}\r\n", keys.join(" ")).as_bytes(), b"END\r\n").await, b"END\r\n");
    let doc = proxy.stats().await;
    assert!(recorders.drain().iter().any(|(_, i)| *i == 2), "the third server is in the ring: {doc}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_are_added_removed_and_moved_without_touching_the_others() {
    let dir = scratch("pools");
    let (_backends, b) = recorders(2);
    let (pa, pb, pc, pb2) = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    let at = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().expect("addr") };
    let file = dir.join("pool.yml");
    std::fs::write(&file, pool_yaml("a", pa, &b, "") + &pool_yaml("b", pb, &b, "")).expect("write");
    let proxy = start(&file, None, 2).await;
    let mut on_a = TcpStream::connect(at(pa)).await.expect("connect a");
    assert_eq!(ask(&mut on_a, b"get x\r\n", b"END\r\n").await, b"END\r\n");

    // b moves to a new port, c is added.
    std::fs::write(&file, pool_yaml("a", pa, &b, "") + &pool_yaml("b", pb2, &b, "") + &pool_yaml("c", pc, &b, ""))
        .expect("write");
    proxy.reload_to(2).await;
    for p in [pb2, pc] {
        let mut s = TcpStream::connect(at(p)).await.expect("new listener");
        assert_eq!(ask(&mut s, b"get y\r\n", b"END\r\n").await, b"END\r\n");
    }
    eventually(10, "b's old address to stop accepting", async || TcpStream::connect(at(pb)).await.is_err()).await;
    // c is removed.
    std::fs::write(&file, pool_yaml("a", pa, &b, "") + &pool_yaml("b", pb2, &b, "")).expect("write");
    proxy.reload_to(3).await;
    eventually(10, "the removed pool to stop accepting", async || TcpStream::connect(at(pc)).await.is_err()).await;
    let doc = proxy.stats().await;
    assert!(doc.get("c").is_none() && doc.get("a").is_some() && doc.get("b").is_some(), "{doc}");
    // The client of the untouched pool went on, on the same connection.
    assert_eq!(ask(&mut on_a, b"get z\r\n", b"END\r\n").await, b"END\r\n");
    // A listen address that cannot be bound refuses the whole reload.
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    std::fs::write(&file, pool_yaml("a", pa, &b, "") + &pool_yaml("b", pb2, &b, "") + &pool_yaml("d", busy, &b, ""))
        .expect("write");
    proxy.reload.notify_one();
    eventually(10, "the unbindable reload to be refused", async || proxy.stats().await["reloads_failed"] == 1).await;
    let doc = proxy.stats().await;
    assert_eq!(doc["config_generation"], 3);
    assert!(doc.get("d").is_none());
    assert!(doc["last_reload"].as_str().expect("why").contains("pool d"), "{doc}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server removed by a reload and added back by another holds the values
/// it had: its keys were written elsewhere meanwhile. It rejoins only after
/// the prober has flushed it (`flush_on_return`, the default), so no old
/// value is served again; the control (`flush_on_return: false`) shows the
/// checker would see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_comes_back_by_reload_serves_no_old_value() {
    for flush in [true, false] {
        let dir = scratch(&format!("return-{flush}"));
        let (trigger, sd) = ShutdownTrigger::new();
        let servers = start_servers(2, &sd).await;
        let entry = |a: &SocketAddr| format!("{a}:1");
        let both: Vec<String> = servers.iter().map(entry).collect();
        let one = vec![entry(&servers[0])];
        // The control is twemproxy's behaviour: no flush, no settle (during
        // one, the writes of the removed server's keys still reach it).
        let extra = if flush { "" } else { "  flush_on_return: false\n  ring_change_settle: 0\n" };
        let port = free_port().expect("port");
        let file = dir.join("pool.yml");
        std::fs::write(&file, pool_yaml("p", port, &both, extra)).expect("write");
        let proxy = start(&file, None, 2).await;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let keys: Vec<String> = (0..60).map(|i| format!("back-{i}")).collect();
        for k in &keys {
            ask(&mut c, format!("set {k} 0 0 3\r\nold\r\n").as_bytes(), b"STORED\r\n").await;
        }
        std::fs::write(&file, pool_yaml("p", port, &one, extra)).expect("write");
        proxy.reload_to(2).await;
        for k in &keys {
            ask(&mut c, format!("set {k} 0 0 3\r\nnew\r\n").as_bytes(), b"STORED\r\n").await;
        }
        std::fs::write(&file, pool_yaml("p", port, &both, extra)).expect("write");
        proxy.reload_to(3).await;
        // Give the prober its tick, then read every key back.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut old = 0;
        for k in &keys {
            let r = ask(&mut c, format!("get {k}\r\n").as_bytes(), b"END\r\n").await;
            match check_get(k, "new", &r) {
                Ok(_) => {}
                Err(_) if r == format!("VALUE {k} 0 3\r\nold\r\nEND\r\n").as_bytes() => old += 1,
                Err(e) => panic!("{e}"),
            }
        }
        let flushed = common::server_stat(servers[1], "cmd_flush").await;
        if flush {
            assert_eq!(old, 0, "old values served after the server came back");
            assert_eq!(flushed, 1, "the returning server was flushed once");
        } else {
            assert!(old > 0, "control: without the flush the old values come back");
            assert_eq!(flushed, 0);
        }
        drop(proxy);
        trigger.trigger();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A unix socket's new permissions apply in place: its clients stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_socket_permissions_keep_the_clients() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("perm");
    let (_backend, b) = recorders(1);
    let b = &b[0];
    let sock = dir.join("p.sock");
    let yaml = |perm: &str| format!("p:\n  listen: {} {perm}\n  hash: md5\n  servers:\n   - {}\n", sock.display(), b);
    let file = dir.join("pool.yml");
    std::fs::write(&file, yaml("0600")).expect("write");
    let proxy = start(&file, None, 2).await;
    let mut c = tokio::net::UnixStream::connect(&sock).await.expect("connect");
    assert_eq!(ask(&mut c, b"get a\r\n", b"END\r\n").await, b"END\r\n");
    let mode = || std::fs::metadata(&sock).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode(), 0o600);
    std::fs::write(&file, yaml("0660")).expect("write");
    proxy.reload_to(2).await;
    assert_eq!(mode(), 0o660, "the socket's permissions changed in place");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ask(&mut c, b"get b\r\n", b"END\r\n").await, b"END\r\n", "the client goes on");
    let _ = std::fs::remove_dir_all(&dir);
}
