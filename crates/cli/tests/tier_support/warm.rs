//! A tier of real processes for warm restarts: shards with memory files
//! (`-e`), two proxies with the system's pool settings, and a load whose
//! writers go through one proxy and readers through the other, every read
//! checked against the versions acknowledged before it was sent.

use super::checker::value;
use super::tier::{bin, signal, start_shard_with, stats_at, system_pool};
use memshard_client::{Client, ClientConfig};
use memshard_config::Config;
use memshard_proxy::placement;
use memshard_testkit::{RoleProcess, free_port, spawn_role};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shards with memory files and two proxies in front of them.
pub(crate) struct WarmTier {
    dir: PathBuf,
    /// Shard processes (`None` while stopped).
    pub(crate) shards: Vec<Option<RoleProcess>>,
    /// Each shard's address, kept across restarts.
    pub(crate) shard_addrs: Vec<SocketAddr>,
    /// The proxies (writers use the first, readers the second).
    pub(crate) proxies: Vec<RoleProcess>,
    /// The pool as listed now.
    config: Config,
    /// The proxies' listen ports.
    ports: Vec<u16>,
    /// Keys added to the pool.
    extra: String,
}

fn start_shard(port: u16, file: &Path) -> RoleProcess {
    start_shard_with(port, &["-e", file.to_str().expect("utf-8 path")])
}

impl WarmTier {
    /// `n` shards and two proxies; `extra` is appended to the pool's keys.
    pub(crate) fn start(name: &str, n: usize, extra: &str) -> WarmTier {
        WarmTier::start_listing(name, n, n, extra)
    }

    /// `n` shards, of which the pool lists the first `listed`, and two
    /// proxies; `extra` is appended to the pool's keys.
    pub(crate) fn start_listing(name: &str, n: usize, listed: usize, extra: &str) -> WarmTier {
        let dir = std::env::temp_dir().join(format!("memshard-warm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let shards: Vec<Option<RoleProcess>> =
            (0..n).map(|i| Some(start_shard(0, &dir.join(format!("shard-{i}.mem"))))).collect();
        let shard_addrs: Vec<SocketAddr> = shards.iter().flatten().map(RoleProcess::addr).collect();
        let ports: Vec<u16> = (0..2).map(|_| free_port().expect("free port")).collect();
        let mut tier = WarmTier {
            dir,
            shards,
            shard_addrs,
            proxies: Vec::new(),
            config: Config::from_yaml("p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:1\n").expect("stub"),
            ports,
            extra: extra.to_owned(),
        };
        tier.write_pools(listed);
        tier.proxies = (0..2)
            .map(|p| {
                let conf = tier.dir.join(format!("proxy-{p}.yml"));
                let conf = conf.to_str().expect("utf-8 path").to_owned();
                spawn_role(bin(), &["proxy", "-c", &conf, "-a", "127.0.0.1", "-s", "0", "--workers", "2"], 2)
                    .expect("start proxy")
            })
            .collect();
        tier
    }

    /// Writes both proxies' pool files listing the first `listed` shards.
    fn write_pools(&mut self, listed: usize) {
        let listed = &self.shard_addrs[..listed];
        self.config = Config::from_yaml(&system_pool(1, &self.extra, listed)).expect("pool file loads");
        for (p, port) in self.ports.iter().enumerate() {
            let yaml = system_pool(*port, &self.extra, listed);
            std::fs::write(self.dir.join(format!("proxy-{p}.yml")), yaml).expect("write pool file");
        }
    }

    /// Lists the first `listed` shards in both pool files and has both
    /// proxies reload them (SIGHUP at once), waiting until both did.
    pub(crate) async fn relist(&mut self, listed: usize) {
        let before = [self.generation(0).await, self.generation(1).await];
        self.write_pools(listed);
        for p in &self.proxies {
            signal(p.child.id(), "HUP");
        }
        for (p, was) in before.into_iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.generation(p).await <= was {
                assert!(Instant::now() < deadline, "proxy {p} did not reload within 10 s");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Proxy `p`'s `config_generation`.
    async fn generation(&self, p: usize) -> u64 {
        self.stats(p).await["config_generation"].as_u64().expect("config_generation")
    }

    async fn stats(&self, p: usize) -> serde_json::Value {
        stats_at(self.proxies[p].addrs[1]).await
    }

    /// The shard `key` belongs to with every shard in the ring.
    pub(crate) fn home_of(&self, key: &str) -> usize {
        let (name, pool) = &self.config.pools[0];
        placement(name, pool).expect("placement").ring.server_for(key.as_bytes())
    }

    fn file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("shard-{i}.mem"))
    }

    /// Stops shard `i` with SIGTERM and waits for it to exit (it saves).
    pub(crate) fn stop_shard(&mut self, i: usize) {
        if let Some(mut s) = self.shards[i].take() {
            let code = tokio::task::block_in_place(|| s.stop()).expect("shard stops");
            assert_eq!(code, Some(0), "a graceful stop exits 0");
        }
    }

    /// SIGKILLs shard `i`.
    pub(crate) fn kill_shard(&mut self, i: usize) {
        if let Some(mut s) = self.shards[i].take() {
            signal(s.child.id(), "KILL");
            let _ = tokio::task::block_in_place(|| s.child.child_mut().wait());
        }
    }

    /// Starts shard `i` again on its port with its memory file.
    pub(crate) fn start_shard(&mut self, i: usize) {
        let file = self.file(i);
        self.shards[i] = Some(tokio::task::block_in_place(|| start_shard(self.shard_addrs[i].port(), &file)));
    }

    /// Whether shard `i`'s memory file exists.
    pub(crate) fn has_file(&self, i: usize) -> bool {
        self.file(i).exists()
    }

    /// Proxy `p`'s client address.
    pub(crate) fn proxy(&self, p: usize) -> SocketAddr {
        self.proxies[p].addrs[0]
    }

    /// `server_ejects` of proxy `p`'s pool.
    pub(crate) async fn ejections(&self, p: usize) -> u64 {
        self.stats(p).await["memcached"]["server_ejects"].as_u64().expect("server_ejects")
    }
}

impl Drop for WarmTier {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a writer knows of one key, shared with the readers.
#[derive(Debug, Default)]
struct Versions {
    /// The last version whose write was acknowledged.
    acked: AtomicU64,
    /// The highest version ever sent.
    sent: AtomicU64,
}

/// What the split load saw.
#[derive(Debug, Default)]
pub(crate) struct SplitReport {
    pub(crate) writes: u64,
    pub(crate) reads: u64,
    pub(crate) failed_writes: u64,
    pub(crate) failed_reads: u64,
    /// Reads that found a value.
    pub(crate) hits: u64,
    /// Reads of a version older than one acknowledged before the read was
    /// sent, or of something that is no version of the key.
    pub(crate) stale: Vec<String>,
}

/// Writers through one proxy, readers through another, on the same keys.
pub(crate) struct SplitLoad {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<SplitReport>>,
}

fn client_config() -> ClientConfig {
    ClientConfig {
        timeout: super::load::CLIENT_TIMEOUT,
        connect_timeout: super::load::CLIENT_TIMEOUT,
        max_in_flight: 1,
    }
}

impl SplitLoad {
    /// `tasks` writers on `writer` and as many readers on `reader`, over
    /// `keys` keys (see [`key_name`]).
    pub(crate) fn start(writer: SocketAddr, reader: SocketAddr, tasks: usize, keys: usize, prefix: &str) -> SplitLoad {
        let all_names: Arc<Vec<String>> = Arc::new((0..keys).map(|i| key_name(prefix, i)).collect());
        let all_versions: Arc<Vec<Versions>> = Arc::new((0..keys).map(|_| Versions::default()).collect());
        let stop_all = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for t in 0..tasks {
            // Writer t owns keys t, t + tasks, ...: one writer per key.
            let (names, versions, stop) = (all_names.clone(), all_versions.clone(), stop_all.clone());
            handles.push(tokio::spawn(async move {
                let mut r = SplitReport::default();
                let mut client: Option<Client> = None;
                let mine: Vec<usize> = (t..names.len()).step_by(tasks).collect();
                let mut step = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let Some(c) = usable(&mut client, writer).await else { continue };
                    let i = mine[step % mine.len()];
                    step += 1;
                    let v = versions[i].sent.fetch_add(1, Ordering::SeqCst) + 1;
                    r.writes += 1;
                    match c.set(&names[i], value(&names[i], v), 0, 0).await {
                        Ok(_) => versions[i].acked.store(v, Ordering::SeqCst),
                        Err(_) => r.failed_writes += 1,
                    }
                }
                r
            }));
            let (names, versions, stop) = (all_names.clone(), all_versions.clone(), stop_all.clone());
            handles.push(tokio::spawn(async move {
                let mut r = SplitReport::default();
                let mut client: Option<Client> = None;
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ t as u64;
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let Some(c) = usable(&mut client, reader).await else { continue };
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let i = (rng % names.len() as u64) as usize;
                    let acked_before = versions[i].acked.load(Ordering::SeqCst);
                    r.reads += 1;
                    match c.get(&names[i]).await {
                        Err(_) => r.failed_reads += 1,
                        Ok(None) => {}
                        Ok(Some(item)) => {
                            r.hits += 1;
                            let sent_after = versions[i].sent.load(Ordering::SeqCst);
                            let text = String::from_utf8_lossy(&item.value);
                            let version = text
                                .strip_prefix(names[i].as_str())
                                .and_then(|rest| rest.strip_prefix('='))
                                .and_then(|n| n.parse::<u64>().ok());
                            match version {
                                Some(v) if v >= acked_before && v <= sent_after => {}
                                _ => r.stale.push(format!(
                                    "at {:?}: {} read {text:?}, acknowledged before the read {acked_before}",
                                    started.elapsed(),
                                    names[i]
                                )),
                            }
                        }
                    }
                }
                r
            }));
        }
        SplitLoad { stop: stop_all, tasks: handles }
    }

    /// Stops every client after its request and sums what they saw.
    pub(crate) async fn stop(self) -> SplitReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = SplitReport::default();
        for t in self.tasks {
            let r = t.await.expect("load task");
            total.writes += r.writes;
            total.reads += r.reads;
            total.failed_writes += r.failed_writes;
            total.failed_reads += r.failed_reads;
            total.hits += r.hits;
            total.stale.extend(r.stale);
        }
        total
    }
}

/// The client, connected again if it broke; `None` after a failed connect
/// (which waits 20 ms, so a loop around it stays bounded in rate).
async fn usable(client: &mut Option<Client>, addr: SocketAddr) -> Option<Client> {
    if let Some(c) = client.as_ref().filter(|c| !c.is_broken()) {
        return Some(c.clone());
    }
    match Client::connect_with(addr, client_config()).await {
        Ok(c) => {
            *client = Some(c.clone());
            Some(c)
        }
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            None
        }
    }
}

/// Key `i` of a set: `{prefix}` and 16 scrambled hex digits. (twemproxy's
/// fnv1a_64 is a 32-bit FNV whose last bytes barely move the hash: keys
/// that differ only in a short counter bunch on one or two servers, and
/// would hardly move when the ring changes.)
pub(crate) fn key_name(prefix: &str, i: usize) -> String {
    let x = (i as u64 + 1).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    format!("{prefix}{:016x}", x ^ (x >> 29))
}

/// Writes `n` keys (see [`key_name`]) = their version-1 value through `addr`.
pub(crate) async fn prefill(addr: SocketAddr, prefix: &str, n: usize) {
    let c = Client::connect_with(addr, client_config()).await.expect("connect");
    for i in 0..n {
        let k = key_name(prefix, i);
        c.set(&k, value(&k, 1), 0, 0).await.expect("prefill");
    }
}

/// How many of the `n` prefilled keys read back, through `addr`, with the
/// value they were given (any other value is returned as wrong).
pub(crate) async fn hits(addr: SocketAddr, prefix: &str, n: usize) -> (usize, Vec<String>) {
    let c = Client::connect_with(addr, client_config()).await.expect("connect");
    let (mut hit, mut wrong) = (0, Vec::new());
    for i in 0..n {
        let k = key_name(prefix, i);
        match c.get(&k).await {
            Ok(Some(item)) if item.value.as_ref() == value(&k, 1).as_bytes() => hit += 1,
            Ok(Some(item)) => wrong.push(format!("{k}: {:?}", String::from_utf8_lossy(&item.value))),
            Ok(None) | Err(_) => {}
        }
    }
    (hit, wrong)
}
