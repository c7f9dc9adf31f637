//! Many clients pipelining mixed requests through one worker, so that their
//! single-key gets share backend lines and their answers come back
//! interleaved: every client must still see its own requests take effect in
//! the order it sent them, and its answers in that order. The same again
//! with the clients moved between two workers every few milliseconds, each
//! with its own backend connections: a client's noreply sets must still be
//! executed before its next requests, wherever those go. And all of it
//! again in a replicated pool, where each write goes to both servers and
//! each read to the key's first owner.

use crate::{ProxyConfig, pools, serve};
use memshard_config::Config;
use memshard_net::{ShutdownTrigger, Spread};
use memshard_server::ServerConfig;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENTS: usize = 24;
const ROUNDS: usize = 150;

/// One client: keys of its own (so the expected answers are exact whatever
/// the others do), random pipelined batches, every answer checked.
async fn client(proxy: std::net::SocketAddr, id: usize, run: &'static str) {
    let mut rng = SmallRng::seed_from_u64(id as u64);
    let mut c = TcpStream::connect(proxy).await.expect("connect");
    let mut model: HashMap<String, String> = HashMap::new();
    for round in 0..ROUNDS {
        let (mut req, mut want) = (Vec::new(), Vec::new());
        for _ in 0..rng.random_range(1..12) {
            let key = format!("{run}c{id}:k{}", rng.random_range(0..6));
            match rng.random_range(0..11) {
                // A multi-get over keys that usually live on both servers.
                10 => {
                    let keys: Vec<String> = (0..3).map(|_| format!("{run}c{id}:k{}", rng.random_range(0..6))).collect();
                    req.extend_from_slice(format!("get {}\r\n", keys.join(" ")).as_bytes());
                    for k in &keys {
                        if let Some(v) = model.get(k) {
                            want.extend_from_slice(format!("VALUE {k} 0 {}\r\n{v}\r\n", v.len()).as_bytes());
                        }
                    }
                    want.extend_from_slice(b"END\r\n");
                }
                0..=5 => {
                    req.extend_from_slice(format!("get {key}\r\n").as_bytes());
                    if let Some(v) = model.get(&key) {
                        want.extend_from_slice(format!("VALUE {key} 0 {}\r\n{v}\r\n", v.len()).as_bytes());
                    }
                    want.extend_from_slice(b"END\r\n");
                }
                6 | 7 => {
                    let v = format!("v{round}-{}", rng.random_range(0..1000));
                    req.extend_from_slice(format!("set {key} 0 0 {}\r\n{v}\r\n", v.len()).as_bytes());
                    want.extend_from_slice(b"STORED\r\n");
                    model.insert(key, v);
                }
                8 => {
                    let v = format!("n{round}");
                    req.extend_from_slice(format!("set {key} 0 0 {} noreply\r\n{v}\r\n", v.len()).as_bytes());
                    model.insert(key, v);
                }
                _ => {
                    req.extend_from_slice(format!("delete {key}\r\n").as_bytes());
                    want.extend_from_slice(if model.remove(&key).is_some() {
                        b"DELETED\r\n"
                    } else {
                        b"NOT_FOUND\r\n"
                    });
                }
            }
        }
        c.write_all(&req).await.expect("write");
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut got))
            .await
            .unwrap_or_else(|_| panic!("client {id} round {round}: no answer in time"))
            .expect("read");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "client {id} round {round}, sent {:?}",
            String::from_utf8_lossy(&req)
        );
    }
}

/// Runs every client against the proxy in front of `backends`, with
/// `proxy`'s workers and `replicas` owners per key.
async fn clients_through_proxy(backends: &[std::net::SocketAddr], proxy: ProxyConfig, replicas: usize) {
    let (trigger, sd) = ShutdownTrigger::new();
    let mut yaml = String::from("mc:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n");
    yaml.push_str(&format!("  timeout: 5000\n  replicas: {replicas}\n  servers:\n"));
    for b in backends {
        yaml.push_str(&format!("   - {b}:1\n"));
    }
    let config = Config::from_yaml(&yaml).expect("config");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let moves = proxy.spread != Spread::All && proxy.workers > 1;
    // Keys of their own per run: the backends keep the previous run's.
    let run = match (moves, replicas > 1) {
        (false, false) => "",
        (true, false) => "moving:",
        (false, true) => "replicated:",
        (true, true) => "replicated-moving:",
    };
    let pools = pools(&config, &proxy).expect("pools");
    let stats = pools[0].conns.clone();
    tokio::spawn(serve(pools, vec![l], crate::Ports::default(), proxy, sd.clone()));
    let clients: Vec<_> = (0..CLIENTS).map(|id| tokio::spawn(client(addr, id, run))).collect();
    for c in clients {
        c.await.expect("client passed");
    }
    if moves {
        // Not a vacuous pass: clients did move between workers meanwhile.
        let moved = stats.moved_connections.load(std::sync::atomic::Ordering::Relaxed);
        assert!(moved >= CLIENTS as u64, "only {moved} moves");
    }
    trigger.trigger();
}

/// Two memshard servers on loopback.
async fn two_backends(sd: &memshard_net::Shutdown) -> Vec<std::net::SocketAddr> {
    let mut backends = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        backends.push(l.local_addr().expect("addr"));
        tokio::spawn(memshard_server::run(l, ServerConfig { threads: 1, ..ServerConfig::default() }, sd.clone()));
    }
    backends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_clients_sharing_backend_lines_see_their_own_order() {
    let (trigger, sd) = ShutdownTrigger::new();
    let backends = two_backends(&sd).await;
    clients_through_proxy(&backends, one_worker(), 1).await;
    clients_through_proxy(&backends, moving(), 1).await;
    trigger.trigger();
}

/// The same in a replicated pool (every key on both servers), and both
/// servers then hold every client's last values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_replicated_pool_too() {
    let (trigger, sd) = ShutdownTrigger::new();
    let backends = two_backends(&sd).await;
    clients_through_proxy(&backends, one_worker(), 2).await;
    clients_through_proxy(&backends, moving(), 2).await;
    // Each backend alone answers what the other does, key by key.
    let mut conns = Vec::new();
    for b in &backends {
        conns.push(TcpStream::connect(b).await.expect("backend"));
    }
    for id in 0..CLIENTS {
        for k in 0..6 {
            let req = format!("mg replicated-moving:c{id}:k{k} v\r\nmn\r\n");
            let mut seen = Vec::new();
            for c in conns.iter_mut() {
                c.write_all(req.as_bytes()).await.expect("write");
                let mut got = Vec::new();
                while !got.ends_with(b"MN\r\n") {
                    let mut buf = [0u8; 512];
                    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.expect("in time");
                    let n = n.expect("read");
                    assert!(n > 0, "closed");
                    got.extend_from_slice(&buf[..n]);
                }
                seen.push(got);
            }
            assert_eq!(seen[0], seen[1], "client {id} key {k}: the two owners differ");
        }
    }
    trigger.trigger();
}

/// One worker: every client's requests share the same backend connections.
fn one_worker() -> ProxyConfig {
    ProxyConfig { workers: 1, ..ProxyConfig::default() }
}

/// Two workers, every client moved from one to the other every few
/// milliseconds (at its pauses between batches).
fn moving() -> ProxyConfig {
    ProxyConfig { workers: 2, spread: Spread::Alternate(Duration::from_millis(3)), ..ProxyConfig::default() }
}

/// The same against memcached itself: its multi-get answers are what the
/// proxy splits back (skipped without memcached, unless peers are required).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_holds_in_front_of_memcached() {
    if memshard_testkit::peer_or_skip("memcached").is_none() {
        return;
    }
    let servers: Vec<_> =
        (0..2).map(|_| memshard_testkit::spawn_memcached(&["-t", "1", "-m", "64"]).expect("memcached")).collect();
    let addrs: Vec<_> = servers.iter().map(|m| m.addr()).collect();
    clients_through_proxy(&addrs, one_worker(), 1).await;
    clients_through_proxy(&addrs, moving(), 1).await;
    clients_through_proxy(&addrs, moving(), 2).await;
}
