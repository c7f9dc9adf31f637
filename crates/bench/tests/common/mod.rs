//! Test support: a tiny in-process memcached (get/set/mg/ms) that can inject
//! errors and stall once, the in-process memshard server, and a
//! real-memcached launcher.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(unreachable_pub)] // shared by several test binaries, not an API

use memshard_net::ShutdownTrigger;
use memshard_proto::{Decoder, MetaCode, Reply, Request};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the fake does besides answering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Answer every n-th request with `SERVER_ERROR` (0 = never).
    pub error_every: u64,
    /// Stall once: the first batch of requests read at or after this instant
    /// starts a stall of `stall_for`, during which no connection writes a
    /// reply (the requests of that batch included).
    pub stall_at: Option<Instant>,
    pub stall_for: Duration,
}

#[derive(Default)]
struct State {
    map: HashMap<Vec<u8>, Vec<u8>>,
    /// Every distinct value size stored.
    sizes: HashSet<usize>,
    /// End of the stall once it has started.
    stall_until: Option<Instant>,
}

type Shared = Arc<Mutex<State>>;

/// A fake memcached serving get, set, mg and ms from a map; stops on drop.
pub struct FakeMemcached {
    pub addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMemcached {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMemcached {
    /// Starts on the current runtime, answering every `error_every`-th
    /// request with `SERVER_ERROR` (0 = never).
    pub async fn start(error_every: u64) -> FakeMemcached {
        FakeMemcached::with(Faults { error_every, ..Faults::default() }).await
    }

    pub async fn with(faults: Faults) -> FakeMemcached {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Shared::default();
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(serve(sock, Arc::clone(&shared), faults));
            }
        });
        FakeMemcached { addr, state, task }
    }

    /// The distinct sizes of the values stored so far.
    pub fn value_sizes(&self) -> HashSet<usize> {
        self.state.lock().unwrap().sizes.clone()
    }

    /// When the stall ended, if it happened.
    pub fn stall_until(&self) -> Option<Instant> {
        self.state.lock().unwrap().stall_until
    }
}

async fn serve(mut sock: TcpStream, state: Shared, faults: Faults) {
    let dec = Decoder::default();
    let (mut buf, mut out, mut chunk) = (Vec::new(), Vec::new(), vec![0u8; 64 * 1024]);
    let mut seen = 0u64;
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let read_at = Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        let mut off = 0;
        let stall_until = {
            let mut st = state.lock().unwrap();
            while let Ok(Some((req, used))) = dec.decode(&buf[off..]) {
                off += used;
                seen += 1;
                if faults.error_every > 0 && seen % faults.error_every == 0 {
                    Reply::ServerError(b"injected").encode(&mut out);
                    continue;
                }
                answer(&mut st, req, &mut out);
            }
            if let (Some(at), None) = (faults.stall_at, st.stall_until) {
                if read_at >= at && off > 0 {
                    st.stall_until = Some(read_at + faults.stall_for);
                }
            }
            st.stall_until
        };
        buf.drain(..off);
        if let Some(until) = stall_until {
            tokio::time::sleep_until(until).await;
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

fn answer(st: &mut State, req: Request<'_>, out: &mut Vec<u8>) {
    match req {
        Request::Get(g) => {
            for k in g.keys.iter() {
                if let Some(v) = st.map.get(k) {
                    Reply::Value { key: k, flags: 0, cas: None, data: v }.encode(out);
                }
            }
            Reply::End.encode(out);
        }
        Request::Store(s) => {
            st.sizes.insert(s.value.len());
            st.map.insert(s.key.to_vec(), s.value.to_vec());
            Reply::Stored.encode(out);
        }
        Request::MetaGet(m) => match st.map.get(m.key.as_ref()) {
            Some(v) => Reply::Meta { code: MetaCode::Va, flags: b"", data: Some(v) }.encode(out),
            None => Reply::Meta { code: MetaCode::En, flags: b"", data: None }.encode(out),
        },
        Request::MetaSet(m) => {
            st.sizes.insert(m.value.len());
            st.map.insert(m.key.to_vec(), m.value.to_vec());
            Reply::Meta { code: MetaCode::Hd, flags: b"", data: None }.encode(out);
        }
        _ => Reply::Error.encode(out),
    }
}

/// The memshard server on a loopback port of the current runtime, stopped
/// on drop.
pub struct MemshardServer {
    pub addr: SocketAddr,
    _stop: ShutdownTrigger,
}

pub async fn memshard_server() -> MemshardServer {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = ShutdownTrigger::new();
    let cfg = memshard_server::ServerConfig { threads: 1, ..memshard_server::ServerConfig::default() };
    tokio::spawn(memshard_server::run(listener, cfg, shutdown));
    MemshardServer { addr, _stop: stop }
}

/// A real memcached on a free loopback port (killed on drop), or `None` after a
/// loud `SKIPPED` line when it is not installed (a panic under
/// `MEMSHARD_REQUIRE_PEERS=1`).
pub fn memcached_or_skip(_test: &str) -> Option<memshard_testkit::MemcachedProcess> {
    memshard_testkit::peer_or_skip("memcached")?;
    Some(memshard_testkit::spawn_memcached(&["-t", "1", "-m", "64"]).expect("memcached starts"))
}
