//! Limits as a user meets them, on `memshard server` and `memshard proxy`
//! processes: the proxy's `client_connections` refusal, and clients that read
//! or write slowly, which must not grow either process's memory without
//! bound while everyone else is served. The RSS figures are printed for
//! docs/RELIABILITY.md.

use memshard_testkit::{RoleProcess, spawn_role};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_memshard"))
}

fn server() -> RoleProcess {
    spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "2", "-m", "64"], 1).expect("start server")
}

/// A proxy in front of `server`, with `client_connections` when given.
fn proxy(server: SocketAddr, client_connections: Option<u32>, dir: &Path) -> RoleProcess {
    let limit = client_connections.map_or(String::new(), |n| format!("  client_connections: {n}\n"));
    let yaml = format!(
        "p:\n  listen: 127.0.0.1:0\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n{limit}  servers:\n   - {server}:1\n"
    );
    std::fs::create_dir_all(dir).expect("dir");
    let conf = dir.join(format!("pool-{}.yml", client_connections.unwrap_or(0)));
    std::fs::write(&conf, yaml).expect("write config");
    let conf = conf.to_str().expect("utf-8").to_owned();
    spawn_role(bin(), &["proxy", "-c", &conf, "-a", "127.0.0.1", "-s", "0"], 2).expect("start proxy")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("memshard-limits-{name}-{}", std::process::id()))
}

async fn round_trip(addr: SocketAddr, key: &str) {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    ask(&mut c, key).await;
}

/// A set and a get on `c`, checked.
async fn ask(c: &mut TcpStream, key: &str) {
    c.write_all(format!("set {key} 0 0 2\r\nok\r\nget {key}\r\n").as_bytes()).await.expect("write");
    let want = format!("STORED\r\nVALUE {key} 0 2\r\nok\r\nEND\r\n");
    let mut got = vec![0; want.len()];
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut got)).await.expect("answered").expect("read");
    assert_eq!(String::from_utf8_lossy(&got), want);
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

#[allow(clippy::print_stderr)]
fn figure(text: String) {
    eprintln!("FIGURE {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_client_connections_refuses_the_one_over_and_serves_the_rest() {
    let backend = server();
    let dir = temp_dir("conns");
    let p = proxy(backend.addr(), Some(3), &dir);
    let mut held = Vec::new();
    for i in 0..3 {
        let mut c = TcpStream::connect(p.addr()).await.expect("connect");
        ask(&mut c, &format!("held{i}")).await;
        held.push(c);
    }
    let mut over = TcpStream::connect(p.addr()).await.expect("connect");
    let mut refused = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), over.read_to_end(&mut refused)).await.expect("closed").expect("read");
    assert_eq!(String::from_utf8_lossy(&refused), "SERVER_ERROR too many open connections\r\n");
    for (i, c) in held.iter_mut().enumerate() {
        ask(c, &format!("again{i}")).await;
    }
    // One leaves, the next one is let in.
    drop(held.pop());
    let mut admitted = false;
    for _ in 0..50 {
        let mut c = TcpStream::connect(p.addr()).await.expect("connect");
        c.write_all(b"mn\r\n").await.expect("write");
        let mut r = [0u8; 4];
        if c.read_exact(&mut r).await.is_ok() && &r == b"MN\r\n" {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a new client gets in once one has left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clients that ask for a 512 KiB value 2000 times (1 GB of replies) and
/// never read: each connection must stop being read once its replies back
/// up, so memory stays bounded and other clients are served.
async fn slow_readers(target: SocketAddr, procs: &[(&str, &RoleProcess)]) {
    let value = "v".repeat(512 * 1024);
    let mut c = TcpStream::connect(target).await.expect("connect");
    c.write_all(format!("set big 0 0 {}\r\n{value}\r\n", value.len()).as_bytes()).await.expect("write");
    let mut stored = [0u8; 8];
    c.read_exact(&mut stored).await.expect("stored");
    assert_eq!(&stored, b"STORED\r\n");
    let before: Vec<u64> = procs.iter().map(|(_, p)| p.rss_bytes().expect("rss")).collect();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(target).await.expect("connect");
        let burst = "get big\r\n".repeat(2000);
        // The write itself stalls once the peer stops reading: bound it.
        let _ = tokio::time::timeout(Duration::from_secs(2), s.write_all(burst.as_bytes())).await;
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    round_trip(target, "bystander").await;
    for ((name, p), before) in procs.iter().zip(before) {
        let after = p.rss_bytes().expect("rss");
        figure(format!(
            "slow readers (4 clients x 1 GB of unread replies) through {name}: RSS {:.1} MiB before, {:.1} MiB after",
            mib(before),
            mib(after)
        ));
        assert!(after < before + (64 << 20), "{name}: RSS grew from {before} to {after}");
    }
}

/// Clients that start a 1 MB value and stall half way: each holds at most
/// one item's worth of buffer.
async fn slow_writers(target: SocketAddr, procs: &[(&str, &RoleProcess)]) {
    let before: Vec<u64> = procs.iter().map(|(_, p)| p.rss_bytes().expect("rss")).collect();
    let mut stalled = Vec::new();
    for i in 0..16 {
        let mut s = TcpStream::connect(target).await.expect("connect");
        let head = format!("set half{i} 0 0 1000000\r\n{}", "w".repeat(500_000));
        s.write_all(head.as_bytes()).await.expect("write");
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    round_trip(target, "bystander2").await;
    for ((name, p), before) in procs.iter().zip(before) {
        let after = p.rss_bytes().expect("rss");
        figure(format!(
            "slow writers (16 clients stalled half way through a 1 MB value) at {name}: RSS {:.1} MiB before, \
             {:.1} MiB after",
            mib(before),
            mib(after)
        ));
        // At most one item (-I, 1 MB) per stalled client, plus slack.
        assert!(after < before + (16 << 20) + (32 << 20), "{name}: RSS grew from {before} to {after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_grow_the_server_without_bound() {
    let s = server();
    slow_readers(s.addr(), &[("the server", &s)]).await;
    slow_writers(s.addr(), &[("the server", &s)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_grow_the_proxy_without_bound() {
    let s = server();
    let dir = temp_dir("slow");
    let p = proxy(s.addr(), None, &dir);
    slow_readers(p.addr(), &[("the proxy", &p), ("the server behind it", &s)]).await;
    slow_writers(p.addr(), &[("the proxy", &p), ("the server behind it", &s)]).await;
    let _ = std::fs::remove_dir_all(&dir);
}
