//! The cache tier as separate processes on 127.0.0.1: N `memshard server`
//! shards and one `memshard proxy` with the system's pool settings (fnv1a_64,
//! ketama, auto_eject_hosts, timeout 400, server_retry_timeout 2000,
//! server_failure_limit 1), and faults applied to them.

use memshard_client::Client;
use memshard_config::Config;
use memshard_proxy::placement;
use memshard_testkit::{RoleProcess, free_port, spawn_role};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::io::AsyncReadExt;

/// The system's pool settings, as deployed.
pub(crate) const TIMEOUT_MS: u64 = 400;
/// `server_retry_timeout` of the system's pool.
pub(crate) const RETRY_MS: u64 = 2000;

pub(crate) fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_memshard"))
}

/// Runs `kill -SIG pid`.
pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().expect("kill").success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// A running tier; every process is killed when it is dropped.
pub(crate) struct Tier {
    dir: PathBuf,
    conf: PathBuf,
    /// The shard processes (`None` while killed).
    pub(crate) shards: Vec<Option<RoleProcess>>,
    /// Each shard's address (kept across restarts).
    pub(crate) shard_addrs: Vec<SocketAddr>,
    /// The proxy process (`None` while killed).
    pub(crate) proxy: Option<RoleProcess>,
    /// The proxy's client address (kept across restarts).
    pub(crate) proxy_addr: SocketAddr,
    /// The proxy's stats address.
    pub(crate) stats_addr: SocketAddr,
    config: Config,
}

fn start_shard(port: u16) -> RoleProcess {
    start_shard_with(port, &[])
}

/// A shard as every fault suite runs one (`-t 1 -m 32`) on `port`, with
/// `extra` flags.
pub(crate) fn start_shard_with(port: u16, extra: &[&str]) -> RoleProcess {
    let port = port.to_string();
    let mut args = vec!["server", "-l", "127.0.0.1", "-p", &port, "-t", "1", "-m", "32"];
    args.extend_from_slice(extra);
    spawn_role(bin(), &args, 1).expect("start shard")
}

/// The system's pool file, listening on `port`, with `extra` keys and one
/// `shard-N` server per address.
pub(crate) fn system_pool(port: u16, extra: &str, servers: &[SocketAddr]) -> String {
    let mut yaml = format!(
        "memcached:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: true\n  \
         timeout: {TIMEOUT_MS}\n  server_retry_timeout: {RETRY_MS}\n  server_failure_limit: 1\n{extra}  servers:\n"
    );
    for (i, a) in servers.iter().enumerate() {
        yaml.push_str(&format!("   - {a}:1 shard-{i}\n"));
    }
    yaml
}

/// The JSON document of the stats port at `addr`.
pub(crate) async fn stats_at(addr: SocketAddr) -> serde_json::Value {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("stats connect");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("stats read");
    serde_json::from_str(&text).expect("stats JSON")
}

impl Tier {
    /// Starts `n` shards and the proxy; `extra` is appended to the pool's
    /// keys (e.g. `"  flush_on_return: false\n"`).
    pub(crate) fn start(name: &str, n: usize, extra: &str) -> Tier {
        Tier::start_with(name, n, extra, |_, a| a)
    }

    /// Like [`Tier::start`]; the proxy reaches shard `i` at `front(i, addr)`
    /// (a forwarder in front of it, say) instead of its own address.
    pub(crate) fn start_with(
        name: &str,
        n: usize,
        extra: &str,
        front: impl Fn(usize, SocketAddr) -> SocketAddr,
    ) -> Tier {
        let dir = std::env::temp_dir().join(format!("memshard-faults-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let shards: Vec<Option<RoleProcess>> = (0..n).map(|_| Some(start_shard(0))).collect();
        let shard_addrs: Vec<SocketAddr> = shards.iter().flatten().map(RoleProcess::addr).collect();
        let fronts: Vec<SocketAddr> = shard_addrs.iter().enumerate().map(|(i, a)| front(i, *a)).collect();
        let yaml = system_pool(free_port().expect("free port"), extra, &fronts);
        let conf = dir.join("pool.yml");
        std::fs::write(&conf, &yaml).expect("write pool file");
        let config = Config::from_yaml(&yaml).expect("pool file loads");
        let proxy = start_proxy(&conf);
        let (proxy_addr, stats_addr) = (proxy.addrs[0], proxy.addrs[1]);
        Tier { dir, conf, shards, shard_addrs, proxy: Some(proxy), proxy_addr, stats_addr, config }
    }

    /// The shard `key` belongs to with every shard in the ring.
    pub(crate) fn home_of(&self, key: &str) -> usize {
        let (name, pool) = &self.config.pools[0];
        let p = placement(name, pool).expect("placement");
        p.ring.server_for(key.as_bytes())
    }

    /// Every owner of `key` with every shard in the ring (the pool's
    /// `replicas`), first owner first.
    pub(crate) fn owners_of(&self, key: &str) -> Vec<usize> {
        let (name, pool) = &self.config.pools[0];
        placement(name, pool).expect("placement").owners(key.as_bytes()).collect()
    }

    /// SIGKILL shard `i`.
    pub(crate) fn kill_shard(&mut self, i: usize) {
        if let Some(mut s) = self.shards[i].take() {
            s.child.kill();
        }
    }

    /// Starts shard `i` again on its old port, empty.
    pub(crate) fn restart_shard(&mut self, i: usize) {
        self.shards[i] = Some(start_shard(self.shard_addrs[i].port()));
    }

    /// Sends `sig` (`STOP`, `CONT`) to shard `i`.
    pub(crate) fn signal_shard(&self, i: usize, sig: &str) {
        let s = self.shards[i].as_ref().expect("shard running");
        signal(s.child.id(), sig);
    }

    /// SIGKILL the proxy.
    pub(crate) fn kill_proxy(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            p.child.kill();
        }
    }

    /// Starts the proxy again on its old port.
    pub(crate) fn restart_proxy(&mut self) {
        let p = start_proxy(&self.conf);
        assert_eq!(p.addrs[0], self.proxy_addr, "the proxy came back on its port");
        self.stats_addr = p.addrs[1];
        self.proxy = Some(p);
    }

    /// The proxy's stats document.
    pub(crate) async fn stats(&self) -> serde_json::Value {
        stats_at(self.stats_addr).await
    }

    /// When shard `i` was last ejected (`server_ejected_at`), as a time since
    /// the Unix epoch; `None` if never.
    pub(crate) async fn ejected_at(&self, i: usize) -> Option<std::time::Duration> {
        let us = self.stats().await["memcached"][format!("shard-{i}")]["server_ejected_at"].as_u64()?;
        (us > 0).then(|| std::time::Duration::from_micros(us))
    }

    /// `server_ejects` of the pool.
    pub(crate) async fn ejections(&self) -> u64 {
        self.pool_stat("server_ejects").await
    }

    /// One counter of the pool in the proxy's stats.
    pub(crate) async fn pool_stat(&self, name: &str) -> u64 {
        self.stats().await["memcached"][name].as_u64().unwrap_or_else(|| panic!("no {name} in the stats"))
    }

    /// Whether shard `i` is in the proxy's ring: a fresh value written
    /// through the proxy for a key whose home is `i` is found on `i` itself.
    pub(crate) async fn in_ring(&self, i: usize) -> bool {
        let key =
            (0..).map(|n| format!("marker:{n}")).find(|k| self.home_of(k) == i).expect("a key homed at the shard");
        let value = format!("{:?}", std::time::Instant::now());
        let (Ok(proxy), Ok(shard)) =
            (Client::connect(self.proxy_addr).await, Client::connect(self.shard_addrs[i]).await)
        else {
            return false;
        };
        if proxy.set(&key, &value, 0, 0).await.is_err() {
            return false;
        }
        shard.get(&key).await.is_ok_and(|item| item.is_some_and(|it| it.value.as_ref() == value.as_bytes()))
    }
}

fn start_proxy(conf: &Path) -> RoleProcess {
    let conf = conf.to_str().expect("utf-8 path");
    spawn_role(bin(), &["proxy", "-c", conf, "-a", "127.0.0.1", "-s", "0", "--workers", "2"], 2).expect("start proxy")
}

impl Drop for Tier {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
