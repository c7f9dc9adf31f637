//! Helpers shared by the proxy's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use memshard_config::Config;
use memshard_net::Shutdown;
use memshard_proxy::{Ports, ProxyConfig, run};
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
        if let Err(e) = run(config, vec![l], Ports::default(), proxy, shutdown).await {
            panic!("proxy failed: {e}");
        }
    });
    addr
}

/// Starts `n` memshard servers on loopback (one thread each); their addresses.
pub(crate) async fn start_servers(n: usize, shutdown: &Shutdown) -> Vec<SocketAddr> {
    let mut addrs = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.push(l.local_addr().expect("addr"));
        let cfg = memshard_server::ServerConfig { threads: 1, ..memshard_server::ServerConfig::default() };
        tokio::spawn(memshard_server::run(l, cfg, shutdown.clone()));
    }
    addrs
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

/// The JSON document of the stats port at `addr`.
pub(crate) async fn stats_doc(addr: SocketAddr) -> serde_json::Value {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("stats port");
    let mut doc = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut doc))
        .await
        .expect("stats in time")
        .expect("read stats");
    serde_json::from_slice(&doc).expect("stats JSON")
}

/// A proxy running from a pool file as `memshard proxy -c FILE` runs: each
/// pool bound on its `listen` (port 0: any), a stats port, reloads of the
/// file on request (SIGHUP's effect) or by its watch.
pub(crate) struct FileProxy {
    /// Where each pool listens, in file order.
    pub(crate) pools: Vec<SocketAddr>,
    pub(crate) stats: SocketAddr,
    /// The admin port (hot keys tracked).
    pub(crate) admin: SocketAddr,
    pub(crate) reload: std::sync::Arc<tokio::sync::Notify>,
    stop: memshard_net::ShutdownTrigger,
}

impl FileProxy {
    /// Starts the proxy on `file` with `proxy`'s settings (its file and
    /// reload trigger are set here).
    pub(crate) async fn start(file: &std::path::Path, proxy: ProxyConfig) -> FileProxy {
        let config = Config::load(file).expect("config");
        let (mut listeners, mut pools) = (Vec::new(), Vec::new());
        for (_, cfg) in &config.pools {
            let l = memshard_proxy::bind(cfg).await.expect("bind pool");
            if let memshard_net::Listener::Tcp(t) = &l {
                pools.push(t.local_addr().expect("addr"));
            }
            listeners.push(l);
        }
        let stats = TcpListener::bind("127.0.0.1:0").await.expect("bind stats");
        let stats_addr = stats.local_addr().expect("addr");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let admin_addr = admin.local_addr().expect("addr");
        let reload = std::sync::Arc::new(tokio::sync::Notify::new());
        let proxy = ProxyConfig { config_file: Some(file.to_path_buf()), reload: reload.clone(), ..proxy };
        let (stop, sd) = memshard_net::ShutdownTrigger::new();
        tokio::spawn(async move {
            if let Err(e) = run(config, listeners, Ports { stats: Some(stats), admin: Some(admin) }, proxy, sd).await {
                panic!("proxy failed: {e}");
            }
        });
        FileProxy { pools, stats: stats_addr, admin: admin_addr, reload, stop }
    }

    /// The stats document.
    pub(crate) async fn stats(&self) -> serde_json::Value {
        stats_doc(self.stats).await
    }

    /// The configuration generation in force.
    pub(crate) async fn generation(&self) -> u64 {
        self.stats().await["config_generation"].as_u64().expect("config_generation")
    }

    /// Asks for a reload (SIGHUP's effect) and waits until generation `want`
    /// is in force.
    pub(crate) async fn reload_to(&self, want: u64) {
        self.reload.notify_one();
        eventually(10, &format!("config generation {want}"), async || self.generation().await >= want).await;
        assert_eq!(self.generation().await, want, "one generation per reload");
    }
}

impl Drop for FileProxy {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}
