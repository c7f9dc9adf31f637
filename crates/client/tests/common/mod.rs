//! Test support: a scriptable fake memcached and a real-memcached launcher.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(unreachable_pub)] // shared by several test binaries, not an API

use memshard_proto::{Decoder, Request};
use std::net::{Ipv4Addr, SocketAddr};
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

/// A real memcached on a free loopback port (killed on drop), or `None` after a
/// loud `SKIPPED` line when it is not installed (a panic under
/// `MEMSHARD_REQUIRE_PEERS=1`).
pub fn memcached_or_skip(_test: &str) -> Option<memshard_testkit::MemcachedProcess> {
    memshard_testkit::peer_or_skip("memcached")?;
    Some(memshard_testkit::spawn_memcached(&["-t", "1", "-m", "64"]).expect("memcached starts"))
}
