//! Test support: a scriptable fake memcached and a real-memcached launcher.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(unreachable_pub)] // shared by several test binaries, not an API

use memshard_proto::{Decoder, Request};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the fake server does with one request. Requests on a connection are
/// handled strictly in order, like memcached.
pub enum Action {
    /// Write these bytes.
    Reply(Vec<u8>),
    /// Wait, then write these bytes (later requests wait too).
    Delay(Duration, Vec<u8>),
    /// Answer nothing and carry on.
    Silent,
    /// Write these bytes (possibly a partial reply), then hang up.
    ReplyThenClose(Vec<u8>),
}

type Handler = dyn Fn(&Request<'_>) -> Action + Send + Sync;

/// A fake memcached on 127.0.0.1; stops (with all its connections) on drop.
pub struct FakeServer {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Most requests decoded from one read: > 1 proves the client pipelines.
    pub max_batch: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub async fn start(handler: impl Fn(&Request<'_>) -> Action + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        Self::start_on(listener, handler)
    }

    pub fn start_on(
        listener: TcpListener,
        handler: impl Fn(&Request<'_>) -> Action + Send + Sync + 'static,
    ) -> FakeServer {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let max_batch = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (acc, mb) = (Arc::clone(&accepted), Arc::clone(&max_batch));
        let task = tokio::spawn(async move {
            // Owning the connection tasks here means aborting this task ends them.
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve(sock, Arc::clone(&handler), Arc::clone(&mb)));
            }
        });
        FakeServer { addr, accepted, max_batch, task }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until `n` connections were accepted; the accept loop
    /// may lag behind the client's completed connect.
    pub async fn wait_accepted(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.accepted() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.accepted()
    }
}

async fn serve(mut sock: TcpStream, handler: Arc<Handler>, max_batch: Arc<AtomicUsize>) {
    let dec = Decoder::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut actions = Vec::new();
        let mut off = 0;
        loop {
            match dec.decode(&buf[off..]) {
                Ok(Some((req, used))) => {
                    actions.push(handler(&req));
                    off += used;
                }
                Ok(None) => break,
                Err(e) => {
                    let line = e.reply_line().map(|l| format!("{l}\r\n").into_bytes()).unwrap_or_default();
                    actions.push(Action::Reply(line));
                    off += e.consumed;
                }
            }
        }
        buf.drain(..off);
        max_batch.fetch_max(actions.len(), Ordering::SeqCst);
        for a in actions {
            match a {
                Action::Reply(b) => {
                    if sock.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Action::Delay(d, b) => {
                    tokio::time::sleep(d).await;
                    if sock.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Action::Silent => {}
                Action::ReplyThenClose(b) => {
                    let _ = sock.write_all(&b).await;
                    return;
                }
            }
        }
    }
}

/// A well-behaved canned answer: every get hits with the key as its value.
pub fn echo(req: &Request<'_>) -> Action {
    Action::Reply(echo_bytes(req))
}

pub fn echo_bytes(req: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match req {
        Request::Get(g) => {
            for k in g.keys.iter() {
                out.extend_from_slice(format!("VALUE {} 7 {}\r\n", String::from_utf8_lossy(k), k.len()).as_bytes());
                out.extend_from_slice(k);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"END\r\n");
        }
        Request::Store(s) if s.noreply => {}
        Request::Store(_) => out.extend_from_slice(b"STORED\r\n"),
        Request::Delete(_) => out.extend_from_slice(b"DELETED\r\n"),
        Request::Version => out.extend_from_slice(b"VERSION fake-1.0\r\n"),
        Request::MetaNoop => out.extend_from_slice(b"MN\r\n"),
        _ => out.extend_from_slice(b"ERROR\r\n"),
    }
    out
}

/// The key of a single-key get, for handlers that script per key.
pub fn get_key(req: &Request<'_>) -> Option<Vec<u8>> {
    match req {
        Request::Get(g) => g.keys.iter().next().map(<[u8]>::to_vec),
        _ => None,
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
    // Another process may take the probed port before memcached binds it: retry.
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
                // Another test's memcached may own this port (two probes can
                // return the same free port): make sure it is ours.
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

/// The `pid` stat of the server behind `sock`.
fn server_pid(mut sock: std::net::TcpStream) -> Option<u32> {
    use std::io::{Read, Write};
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.write_all(b"stats\r\n").ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
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
