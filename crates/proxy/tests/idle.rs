//! Idle clients park (see memshard_net's parking lot) and come back
//! unaware: after a few seconds of silence a client's next requests are
//! answered in order, pipelined ones included, and the stats keep counting
//! it as connected.

mod common;

use common::ask;
use memshard_config::Config;
use memshard_net::{PARK_TICK, ShutdownTrigger};
use memshard_proxy::{Ports, ProxyConfig, run};
use memshard_server::ServerConfig;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

async fn client_connections(stats: std::net::SocketAddr) -> u64 {
    let mut s = TcpStream::connect(stats).await.expect("stats");
    let mut doc = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut doc)).await.expect("in time").expect("read");
    let v: serde_json::Value = serde_json::from_str(&doc).expect("JSON");
    v["mc"]["client_connections"].as_u64().expect("client_connections")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_client_is_answered_in_order_and_stays_counted() {
    let (trigger, sd) = ShutdownTrigger::new();
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend = server.local_addr().expect("addr");
    tokio::spawn(memshard_server::run(server, ServerConfig { threads: 1, ..ServerConfig::default() }, sd.clone()));
    let yaml = format!("mc:\n  listen: 127.0.0.1:22121\n  servers:\n   - {backend}:1\n");
    let (l, stats_l) =
        (TcpListener::bind("127.0.0.1:0").await.expect("bind"), TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    let (proxy, stats) = (l.local_addr().expect("addr"), stats_l.local_addr().expect("addr"));
    let cfg = ProxyConfig { workers: 2, ..ProxyConfig::default() };
    tokio::spawn(run(
        Config::from_yaml(&yaml).expect("config"),
        vec![l],
        Ports { stats: Some(stats_l), admin: None },
        cfg,
        sd.clone(),
    ));
    let mut clients = Vec::new();
    for i in 0..8 {
        let mut c = TcpStream::connect(proxy).await.expect("connect");
        let r = ask(&mut c, format!("set k{i} 0 0 2\r\nv{i}\r\n").as_bytes(), b"\r\n").await;
        assert_eq!(r, b"STORED\r\n");
        clients.push(c);
    }
    // Silent for three park ticks: every client is parked now.
    tokio::time::sleep(PARK_TICK * 3).await;
    assert_eq!(client_connections(stats).await, 8, "parked clients are still connected");
    for (i, c) in clients.iter_mut().enumerate() {
        // A pipelined batch right away: each answer in its place.
        let req = format!("get k{i}\r\nset k{i} 0 0 3\r\nnew\r\nget k{i}\r\nmn\r\n");
        let r = ask(c, req.as_bytes(), b"MN\r\n").await;
        let want = format!("VALUE k{i} 0 2\r\nv{i}\r\nEND\r\nSTORED\r\nVALUE k{i} 0 3\r\nnew\r\nEND\r\nMN\r\n");
        assert_eq!(String::from_utf8_lossy(&r), want);
    }
    assert_eq!(client_connections(stats).await, 8);
    drop(clients);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client_connections(stats).await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "closed clients are still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
}
