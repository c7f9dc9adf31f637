//! Test support: a tiny in-process memcached (get/set only) and a
//! real-memcached launcher.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(unreachable_pub)] // shared by several test binaries, not an API

use memshard_proto::{Decoder, Reply, Request};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
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

/// A real memcached on a free loopback port (killed on drop), or `None` after a
/// loud `SKIPPED` line when it is not installed (a panic under
/// `MEMSHARD_REQUIRE_PEERS=1`).
pub fn memcached_or_skip(_test: &str) -> Option<memshard_testkit::MemcachedProcess> {
    memshard_testkit::peer_or_skip("memcached")?;
    Some(memshard_testkit::spawn_memcached(&["-t", "1", "-m", "64"]).expect("memcached starts"))
}
