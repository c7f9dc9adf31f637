//! Observing where the real nutcracker sends keys, without real memcached backends.
//!
//! Every server entry of a pool points at a tiny fake backend of ours (TCP on loopback, or a unix
//! socket) that answers any `get` with `END` and records which keys reached it. Sending keys
//! through a nutcracker pool with multi-key `get`s and reading the backends' records gives the
//! exact key → server placement, for any hash, distribution and server set. Pools listen on unix
//! sockets in a private directory, so no port can collide.
//!
//! Shared by the golden-file generator (`examples/golden/main.rs`) and the differential test
//! (`tests/nutcracker.rs`), which includes this file with `#[path]`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;

/// Keys per multi-key `get` sent through nutcracker.
const BATCH: usize = 100;
/// How long nutcracker gets to open its pool sockets.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout on every socket we use, so nothing can hang forever.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Finds the nutcracker binary on `PATH` or in `/usr/sbin` (Debian's location).
pub(crate) fn find_nutcracker() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nutcracker"))
        .find(|candidate| candidate.is_file())
}

/// Where a fake backend listens (testkit's key-recording backends).
pub(crate) use memshard_testkit::BackendAddr as Addr;
/// The fake backends: each records the keys it is asked for.
pub(crate) use memshard_testkit::KeyRecorders as Backends;

/// A pool of a nutcracker configuration.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    /// Pool name (a YAML key).
    pub(crate) name: String,
    /// `hash:` value.
    pub(crate) hash: String,
    /// `distribution:` value.
    pub(crate) distribution: String,
    /// `hash_tag:` value, if any.
    pub(crate) hash_tag: Option<String>,
    /// `servers:` entries, in config order; entry `i` must point at backend `i`.
    pub(crate) servers: Vec<String>,
    /// `auto_eject_hosts: true` with a failure limit of 1 and a 10-minute retry timeout, so one
    /// failed request ejects a dead server for the rest of the run.
    pub(crate) auto_eject: bool,
}

/// A running nutcracker; dropping it kills the process and removes its directory.
pub(crate) struct Nutcracker {
    child: Child,
    dir: PathBuf,
    sockets: HashMap<String, PathBuf>,
    stats_port: u16,
}

impl Nutcracker {
    /// Writes a configuration with `pools` into `dir` (created, and removed on drop) and starts
    /// nutcracker on it with its stats port on loopback; waits until every pool accepts.
    pub(crate) fn start(bin: &Path, dir: &Path, pools: &[Pool]) -> io::Result<Nutcracker> {
        std::fs::create_dir_all(dir)?;
        let mut yaml = String::new();
        let mut sockets = HashMap::new();
        for pool in pools {
            let socket = dir.join(format!("{}.sock", pool.name));
            let _ = std::fs::remove_file(&socket);
            let _ = writeln!(yaml, "{}:", pool.name);
            let _ = writeln!(yaml, "  listen: {}", socket.display());
            let _ = writeln!(yaml, "  hash: {}", pool.hash);
            let _ = writeln!(yaml, "  distribution: {}", pool.distribution);
            if let Some(tag) = &pool.hash_tag {
                let _ = writeln!(yaml, "  hash_tag: \"{tag}\"");
            }
            yaml.push_str("  timeout: 5000\n  server_connections: 1\n");
            if pool.auto_eject {
                yaml.push_str("  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n");
            } else {
                yaml.push_str("  auto_eject_hosts: false\n");
            }
            yaml.push_str("  servers:\n");
            for server in &pool.servers {
                let _ = writeln!(yaml, "   - {server}");
            }
            sockets.insert(pool.name.clone(), socket);
        }
        let conf = dir.join("nutcracker.yml");
        std::fs::write(&conf, yaml)?;
        // The stats port cannot be turned off; a port free a moment ago, on loopback only.
        let stats_port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-o")
            .arg(dir.join("nutcracker.log"))
            .args(["-a", "127.0.0.1", "-s", &stats_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut running = Nutcracker { child, dir: dir.to_path_buf(), sockets, stats_port };
        let deadline = Instant::now() + START_TIMEOUT;
        for socket in running.sockets.values() {
            while UnixStream::connect(socket).is_err() {
                if let Ok(Some(status)) = running.child.try_wait() {
                    let log = std::fs::read_to_string(dir.join("nutcracker.log")).unwrap_or_default();
                    return Err(io::Error::other(format!("nutcracker exited with {status}:\n{log}")));
                }
                if Instant::now() > deadline {
                    return Err(io::Error::other("nutcracker did not open its pool sockets in time"));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(running)
    }

    /// The identity strings of `pool`'s servers as nutcracker itself reports them on its stats
    /// port, in its internal server order (it lists servers in that order).
    pub(crate) fn server_names(&self, pool: &str) -> io::Result<Vec<String>> {
        let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, self.stats_port))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut json = String::new();
        conn.read_to_string(&mut json)?;
        let start = json
            .find(&format!("\"{pool}\": {{"))
            .ok_or_else(|| io::Error::other(format!("pool {pool} missing from stats: {json}")))?;
        // Skip the pool's own first counter; its object ends where the next pool's first counter
        // appears.
        let body = &json[start + pool.len()..];
        let first = body.find("\"client_eof\"").map_or(0, |at| at + 1);
        let body = &body[..body[first..].find("\"client_eof\"").map_or(body.len(), |at| first + at)];
        const SERVER_OPEN: &str = "\": {\"server_eof\"";
        let mut names = Vec::new();
        for (at, _) in body.match_indices(SERVER_OPEN) {
            let quote = body[..at].rfind('"').ok_or_else(|| io::Error::other("malformed stats"))?;
            names.push(body[quote + 1..at].to_owned());
        }
        Ok(names)
    }

    /// Makes `pool` eject its dead server: sends `keys` one `get` at a time until one of them
    /// reaches the dead server and fails, which (with a failure limit of 1) ejects it. Returns
    /// false when no key reaches it (ketama with `crc32` sends nearly every key to one server).
    pub(crate) fn eject_dead(&mut self, backends: &Backends, pool: &str, keys: &[Vec<u8>]) -> io::Result<bool> {
        let socket = self.sockets.get(pool).ok_or_else(|| io::Error::other(format!("no pool {pool}")))?;
        let conn = UnixStream::connect(socket)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut reader = BufReader::new(conn);
        for key in keys {
            reader.get_mut().write_all(&[b"get ".as_slice(), key, b"\r\n"].concat())?;
            let mut reply = Vec::new();
            reader.read_until(b'\n', &mut reply)?;
            if reply.starts_with(b"SERVER_ERROR") {
                let _ = backends.drain();
                return Ok(true);
            }
            if reply != b"END\r\n" {
                return Err(io::Error::other(format!(
                    "pool {pool}: unexpected reply {:?}",
                    String::from_utf8_lossy(&reply)
                )));
            }
        }
        let _ = backends.drain();
        Ok(false)
    }

    /// Sends `keys` (distinct, each a valid memcached key) through `pool` and returns, for each,
    /// the index of the backend that received it.
    pub(crate) fn route(&mut self, backends: &Backends, pool: &str, keys: &[Vec<u8>]) -> io::Result<Vec<usize>> {
        let socket = self.sockets.get(pool).ok_or_else(|| io::Error::other(format!("no pool {pool}")))?;
        let _ = backends.drain();
        let conn = UnixStream::connect(socket)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut reader = BufReader::new(conn);
        for batch in keys.chunks(BATCH) {
            let mut request = b"get".to_vec();
            for key in batch {
                request.push(b' ');
                request.extend_from_slice(key);
            }
            request.extend_from_slice(b"\r\n");
            reader.get_mut().write_all(&request)?;
            let mut reply = Vec::new();
            reader.read_until(b'\n', &mut reply)?;
            if reply != b"END\r\n" {
                return Err(io::Error::other(format!(
                    "pool {pool}: unexpected reply {:?}",
                    String::from_utf8_lossy(&reply)
                )));
            }
        }
        // Every backend has answered before nutcracker sends END, so the records are complete.
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        for (key, backend) in backends.drain() {
            if let Some(previous) = seen.insert(key.clone(), backend) {
                return Err(io::Error::other(format!("pool {pool}: key {key:?} reached {previous} and {backend}")));
            }
        }
        keys.iter()
            .map(|key| seen.get(key).copied().ok_or_else(|| io::Error::other(format!("pool {pool}: key {key:?} lost"))))
            .collect()
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `n` distinct random keys of 1..=60 bytes drawn from every byte a memcached key line can carry
/// through nutcracker (no space, CR, LF or other control byte), half of them with bytes ≥ 0x80
/// (where the signed-`char` hashes differ from the textbook ones), some valid UTF-8.
pub(crate) fn random_keys(rng: &mut impl Rng, n: usize) -> Vec<Vec<u8>> {
    const WORDS: [&str; 8] = ["café", "ключ", "日本語", "😀", "user", "naïve", "Ωmega", "straße"];
    let mut keys = Vec::with_capacity(n);
    let mut distinct = std::collections::HashSet::new();
    // Bounded: collisions among random keys are rare, 10n draws are plenty.
    for _ in 0..n * 10 {
        if keys.len() == n {
            break;
        }
        let len = rng.random_range(1..=60usize);
        let key: Vec<u8> = match rng.random_range(0..4) {
            0 => (0..len).map(|_| rng.random_range(0x21..=0x7eu8)).collect(),
            1 => (0..len)
                .map(|_| {
                    if rng.random_bool(0.5) { rng.random_range(0x80..=0xffu8) } else { rng.random_range(0x21..=0x7eu8) }
                })
                .collect(),
            2 => {
                let mut key = String::new();
                for _ in 0..rng.random_range(1..=4) {
                    key.push_str(WORDS[rng.random_range(0..WORDS.len())]);
                    let _ = write!(key, "{}", rng.random_range(0..10_000u32));
                }
                key.into_bytes()
            }
            _ => format!("key:{}", rng.random_range(0..1_000_000u32)).into_bytes(),
        };
        if distinct.insert(key.clone()) {
            keys.push(key);
        }
    }
    keys
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
