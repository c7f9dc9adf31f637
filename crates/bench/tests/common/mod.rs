//! Test support: a tiny in-process memcached (get/set only) and a
//! real-memcached launcher.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(unreachable_pub)] // shared by several test binaries, not an API

use memshard_proto::{Decoder, Reply, Request};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

type Map = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

/// A fake memcached serving get and set from a map; stops on drop.
pub struct FakeMemcached {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMemcached {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMemcached {
    /// Starts on the current runtime. `error_every`: answer every n-th
    /// request with `SERVER_ERROR` (0 = never).
    pub async fn start(error_every: u64) -> FakeMemcached {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let map = Map::default();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(serve(sock, Arc::clone(&map), error_every));
            }
        });
        FakeMemcached { addr, task }
    }
}

async fn serve(mut sock: TcpStream, map: Map, error_every: u64) {
    let dec = Decoder::default();
    let (mut buf, mut out, mut chunk) = (Vec::new(), Vec::new(), vec![0u8; 64 * 1024]);
    let mut seen = 0u64;
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut off = 0;
        while let Ok(Some((req, used))) = dec.decode(&buf[off..]) {
            off += used;
            seen += 1;
            if error_every > 0 && seen % error_every == 0 {
                Reply::ServerError(b"injected").encode(&mut out);
                continue;
            }
            let mut map = map.lock().unwrap();
            match req {
                Request::Get(g) => {
                    for k in g.keys.iter() {
                        if let Some(v) = map.get(k) {
                            Reply::Value { key: k, flags: 0, cas: None, data: v }.encode(&mut out);
                        }
                    }
                    Reply::End.encode(&mut out);
                }
                Request::Store(s) => {
                    map.insert(s.key.to_vec(), s.value.to_vec());
                    Reply::Stored.encode(&mut out);
                }
                _ => Reply::Error.encode(&mut out),
            }
        }
        buf.drain(..off);
        if sock.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

/// A real memcached on a free loopback port, killed on drop.
pub struct Memcached {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MEMCACHED: &str = "/usr/bin/memcached";

/// Starts memcached, or prints `SKIPPED: …` and returns `None` when it is not
/// installed (panics instead when `MEMSHARD_REQUIRE_PEERS=1`).
pub fn memcached_or_skip(test: &str) -> Option<Memcached> {
    if !Path::new(MEMCACHED).exists() {
        if std::env::var("MEMSHARD_REQUIRE_PEERS").is_ok_and(|v| v.trim() == "1") {
            panic!("{test}: {MEMCACHED} not installed and MEMSHARD_REQUIRE_PEERS=1");
        }
        #[allow(clippy::print_stderr)] // a skip must be visible in the test log
        {
            eprintln!("SKIPPED: {test}: {MEMCACHED} not installed");
        }
        return None;
    }
    for _ in 0..5 {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let child = Command::new(MEMCACHED)
            .args(["-u", "root", "-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-t", "1", "-m", "64"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut mc = Memcached { child, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = mc.child.try_wait() {
                break; // exited: port taken, retry
            }
            if let Ok(sock) = std::net::TcpStream::connect(mc.addr) {
                // Two probes can return the same port: make sure it is ours.
                if server_pid(sock) == Some(mc.child.id()) {
                    return Some(mc);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{test}: memcached did not start");
}

fn server_pid(mut sock: std::net::TcpStream) -> Option<u32> {
    use std::io::{Read, Write};
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.write_all(b"stats\r\n").ok()?;
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    while !buf.ends_with(b"END\r\n") {
        let n = sock.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    text.lines().find_map(|l| l.strip_prefix("STAT pid ")).and_then(|p| p.trim().parse().ok())
}
