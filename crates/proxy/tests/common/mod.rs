//! Helpers shared by the proxy's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use memshard_config::Config;
use memshard_net::Shutdown;
use memshard_proxy::{ProxyConfig, run};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts the proxy on a loopback port for the single pool of `yaml` (its
/// `listen` line only has to be valid: the listener is passed in).
pub(crate) async fn start_proxy(yaml: &str, proxy: ProxyConfig, shutdown: Shutdown) -> SocketAddr {
    let config = Config::from_yaml(yaml).expect("config");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Err(e) = run(config, vec![l], None, proxy, shutdown).await {
            panic!("proxy failed: {e}");
        }
    });
    addr
}

/// Sends `req` (over TCP or a unix socket), reads until the reply ends with
/// `until` (bounded in time).
pub(crate) async fn ask<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8], until: &[u8]) -> Vec<u8> {
    s.write_all(req).await.expect("write");
    let mut buf = Vec::new();
    // On the heap: tests nest many of these futures, and a 64 KiB array in
    // each would overflow a test thread's stack.
    let mut chunk = vec![0u8; 65536];
    while !buf.ends_with(until) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no reply in time; got {:?}", String::from_utf8_lossy(&buf)))
            .expect("read");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    buf
}

/// Polls `cond` every 20 ms until it holds, failing after `secs`.
pub(crate) async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut cond: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `STAT name value` of a memcached-speaking server's `stats`.
pub(crate) async fn server_stat(server: SocketAddr, name: &str) -> u64 {
    let mut s = tokio::net::TcpStream::connect(server).await.expect("connect for stats");
    let r = ask(&mut s, b"stats\r\n", b"END\r\n").await;
    let text = String::from_utf8(r).expect("utf8");
    let prefix = format!("STAT {name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text:?}"))
}
