//! Only a server that was ejected is ever flushed. Every path that connects
//! to a server outside the request path — the proxy's start, `preconnect`,
//! a reconnect after a broken connection, a server that failed without
//! being ejected — leaves its items alone (nutcracker never flushes); the
//! control shows the counter these tests read does see the one flush that
//! must happen, `flush_on_return` after an ejection. (A server whose name
//! moves to a new address is checked in `dns.rs`.)

mod common;

use common::{ask, eventually, server_stat as stat};
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_proxy::ProxyConfig;
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use memshard_server::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A memshard server on `addr` (port 0: any) that can be stopped alone.
async fn start_server(addr: SocketAddr) -> (SocketAddr, ShutdownTrigger) {
    let (trigger, sd) = ShutdownTrigger::new();
    let l = TcpListener::bind(addr).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(memshard_server::run(l, ServerConfig { threads: 1, ..ServerConfig::default() }, sd));
    (addr, trigger)
}

async fn start_proxy(yaml: &str, shutdown: Shutdown) -> SocketAddr {
    common::start_proxy(yaml, ProxyConfig { workers: 2, ..ProxyConfig::default() }, shutdown).await
}

fn yaml(backends: &[SocketAddr], extra: &str) -> String {
    let mut y = String::from("mc:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n");
    y.push_str(extra);
    y.push_str("  servers:\n");
    for b in backends {
        y.push_str(&format!("   - {b}:1\n"));
    }
    y
}

/// Stores `key` = `value` on `server` directly, not through the proxy.
async fn seed(server: SocketAddr, key: &str, value: &str) {
    let mut s = TcpStream::connect(server).await.expect("connect to seed");
    let r = ask(&mut s, format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(), b"\r\n").await;
    assert_eq!(r, b"STORED\r\n");
}

/// The whole answer to `get key`: `END`, a value, or an error line.
async fn get(s: &mut TcpStream, key: &str) -> String {
    s.write_all(format!("get {key}\r\n").as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !(buf.ends_with(b"END\r\n") || (buf.starts_with(b"SERVER_ERROR") && buf.ends_with(b"\r\n"))) {
        let n =
            tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.expect("in time").expect("read");
        assert!(n > 0, "closed after {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).expect("utf8")
}

/// A key the proxy places on server `i` of `backends` (twemproxy's ring).
fn key_on(backends: &[SocketAddr], i: usize) -> String {
    let specs: Vec<ServerSpec> = backends.iter().map(|b| ServerSpec::tcp(b.ip().to_string(), b.port(), 1)).collect();
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    (0..10_000).map(|n| format!("key{n}x")).find(|k| ring.server_for(k.as_bytes()) == i).expect("a key on server i")
}

/// No server was flushed, and each still serves its seed, directly and
/// through the proxy.
async fn assert_every_seed_readable(proxy: SocketAddr, backends: &[SocketAddr]) {
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    for (i, b) in backends.iter().enumerate() {
        assert_eq!(stat(*b, "cmd_flush").await, 0, "{b} was flushed");
        let key = key_on(backends, i);
        let want = format!("VALUE {key} 0 6\r\nwarm-{i}\r\nEND\r\n");
        let mut s = TcpStream::connect(b).await.expect("backend");
        assert_eq!(get(&mut s, &key).await, want, "{b} lost its item");
        assert_eq!(get(&mut c, &key).await, want, "through the proxy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_start_flushes_no_server_with_or_without_preconnect() {
    for preconnect in [true, false] {
        let mut backends = Vec::new();
        let mut triggers = Vec::new();
        for _ in 0..3 {
            let (addr, t) = start_server("127.0.0.1:0".parse().expect("addr")).await;
            backends.push(addr);
            triggers.push(t);
        }
        for (i, b) in backends.iter().enumerate() {
            seed(*b, &key_on(&backends, i), &format!("warm-{i}")).await;
        }
        let before: Vec<u64> = {
            let mut v = Vec::new();
            for b in &backends {
                v.push(stat(*b, "total_connections").await);
            }
            v
        };
        let (trigger, sd) = ShutdownTrigger::new();
        let extra = format!("  preconnect: {preconnect}\n  auto_eject_hosts: true\n  server_failure_limit: 1\n");
        let proxy = start_proxy(&yaml(&backends, &extra), sd).await;
        if preconnect {
            // The start-up check has reached every server (one connection
            // each, beside this test's stats connections).
            for (b, n) in backends.iter().zip(&before) {
                let want = n + 2; // the check + the stats connection asking
                eventually(10, "preconnect reached every server", async || stat(*b, "total_connections").await >= want)
                    .await;
            }
            // Give a flush that would follow the check time to arrive.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_every_seed_readable(proxy, &backends).await;
        trigger.trigger();
        for t in triggers {
            t.trigger();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_after_a_failure_that_ejected_nothing_flushes_nothing() {
    // With auto-ejection off, and with it on below the failure limit: a
    // server that restarts is reconnected to, never flushed.
    for extra in ["  auto_eject_hosts: false\n", "  auto_eject_hosts: true\n  server_failure_limit: 3\n"] {
        let (addr, stop) = start_server("127.0.0.1:0".parse().expect("addr")).await;
        let (trigger, sd) = ShutdownTrigger::new();
        let extra = format!("{extra}  preconnect: true\n  timeout: 400\n  server_retry_timeout: 100\n");
        let proxy = start_proxy(&yaml(&[addr], &extra), sd).await;
        let mut c = TcpStream::connect(proxy).await.expect("proxy");
        assert_eq!(get(&mut c, "key-0").await, "END\r\n");
        // The server goes away: one request fails (a failure, no ejection).
        stop.trigger();
        eventually(10, "the stopped server's port refuses", async || TcpStream::connect(addr).await.is_err()).await;
        // The proxy's connection to it may still be closing: until it is,
        // the old server answers; then one request fails (one failure).
        eventually(10, "a request fails", async || get(&mut c, "key-0").await.starts_with("SERVER_ERROR ")).await;
        // It comes back warm (seeded before any proxy connection reaches it).
        let (_, stop) = start_server(addr).await;
        seed(addr, "key-0", "warm").await;
        eventually(10, "the proxy reconnected", async || get(&mut c, "key-0").await.starts_with("VALUE ")).await;
        // Wait out several retry periods and prober ticks: still no flush.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(get(&mut c, "key-0").await, "VALUE key-0 0 4\r\nwarm\r\nEND\r\n", "{extra}");
        assert_eq!(stat(addr, "cmd_flush").await, 0, "{extra}: the reconnect flushed the server");
        trigger.trigger();
        stop.trigger();
    }
}

/// The control: the counter above does see a flush, and the one flush that
/// must happen happens — a server that was ejected and returns is emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_an_ejected_server_is_flushed_before_it_returns() {
    let (addr, stop) = start_server("127.0.0.1:0".parse().expect("addr")).await;
    let (trigger, sd) = ShutdownTrigger::new();
    let extra = "  auto_eject_hosts: true\n  server_failure_limit: 1\n  timeout: 400\n  server_retry_timeout: 200\n";
    let proxy = start_proxy(&yaml(&[addr], extra), sd).await;
    let mut c = TcpStream::connect(proxy).await.expect("proxy");
    stop.trigger();
    eventually(10, "the stopped server's port refuses", async || TcpStream::connect(addr).await.is_err()).await;
    // Failure 1 of 1: ejected (once the proxy's old connection is gone).
    eventually(10, "a request fails", async || get(&mut c, "key-0").await.starts_with("SERVER_ERROR ")).await;
    let (_, stop) = start_server(addr).await;
    seed(addr, "key-0", "stale").await;
    eventually(10, "the server was flushed on its return", async || stat(addr, "cmd_flush").await == 1).await;
    eventually(10, "the returned server answers", async || get(&mut c, "key-0").await == "END\r\n").await;
    trigger.trigger();
    stop.trigger();
}
