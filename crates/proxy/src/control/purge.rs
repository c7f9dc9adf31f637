//! Keys that move on a ring change: cleared where they arrive before the
//! change (`moving_in`), and where they left once it settled (`sweeper`).
//!
//! When a reload or a discovery changes the ring, some keys get a new
//! owner. That owner may still hold a copy of such a key from an earlier
//! time it owned it (a pool switched from 3 servers to 4 and back: the key
//! went to the fourth server, was written there, and came back to a server
//! that kept the value it had before). Before the new ring takes effect,
//! every server kept across the change is asked for its keys (`lru_crawler
//! metadump all`, which memcached and memshard both answer) and the keys it
//! is about to own but did not own under the ring in force are deleted on
//! it: under that ring nobody reads or writes them there, so no live value
//! is lost, and when the new ring is published a moved key is either
//! missing on its new owner or written there since. A server that cannot be
//! scanned is flushed instead (it is about to own keys it may hold stale
//! copies of); one that cannot be reached either is failing, and rejoins
//! through the prober and its flush. Servers added by the change rejoin that
//! way too (see `Pool::prepare`), and replicated pools keep their owners
//! alike by other means, so neither is scanned here. `flush_on_return:
//! false` turns this off with the flush (twemproxy's behaviour: a server
//! serves whatever it holds).

use crate::control::pool::Pool;
use crate::control::refresh;
use crate::control::resolve::Dest;
use crate::control::servers::{Server, ServerSet};
use memshard_client::ClientConfig;
use memshard_tls::ClientTls;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

/// Longest a server's scan and deletes may take before it is flushed instead
/// (servers are scanned at once: this bounds how long a change waits).
const SCAN_LIMIT: Duration = Duration::from_secs(30);

/// Longest wait for the next line of a listing or of the deletes' answers.
const IDLE_LIMIT: Duration = Duration::from_secs(3);

/// Deletes sent per write while clearing.
const DELETE_BATCH: usize = 1024;

/// Clears, on every server of `new`, the keys that move to it (see the
/// module docs); servers scanned at once, each within [`SCAN_LIMIT`]. A
/// server new to the pool (no server of `old` had its ring name) is cleared
/// of every key it will own (unless the prober is to flush it first); one
/// kept, of those it did not own under `old`. If a server's health changes meanwhile (the ring `new` is
/// published with moves), the scan is made again, twice at most. Returns the
/// keys deleted.
pub(crate) async fn moving_in(pool: &Arc<Pool>, old: &ServerSet, new: &ServerSet) -> u64 {
    // `flush_on_return: false` trusts what servers hold, as twemproxy does.
    if !new.cfg.extensions.flush_on_return
        || old.replicas() > 1
        || new.replicas() > 1
        || new.cfg.distribution == memshard_config::Distribution::Random
        || old.places_like(new)
    {
        return 0;
    }
    let Some(old_ring) = old.ring() else { return 0 };
    let started = std::time::Instant::now();
    let (mut deleted, mut scanned) = (0u64, 0usize);
    for _ in 0..3 {
        // The ring as it will be published: from the servers' health now.
        if !new.ring_follows_health() {
            let _ = new.rebuild();
        }
        let Some(new_ring) = new.ring() else { return deleted };
        let mut scans = tokio::task::JoinSet::new();
        for (j, s) in new.servers[..new.ring_len].iter().enumerate() {
            if !s.health.is_live() {
                continue;
            }
            // The same server, or one under the same ring name (a static
            // list turned to discovery names the same pods by other
            // addresses): it owned the same points of the ring.
            let before = old.servers[..old.ring_len].iter().position(|o| o.id == s.id || o.name == s.name);
            let (pool, s, old_ring, new_ring) = (pool.clone(), s.clone(), old_ring.clone(), new_ring.clone());
            scanned += 1;
            scans.spawn(async move {
                let moves_in = move |key: &[u8]| {
                    new_ring.server_for(key) == j && before.is_none_or(|i| old_ring.server_for(key) != i)
                };
                match tokio::time::timeout(SCAN_LIMIT, clear(&pool, &s, &moves_in)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(why)) => {
                        flush_instead(&pool, &s, &why).await;
                        0
                    }
                    Err(_) => {
                        flush_instead(&pool, &s, "took too long").await;
                        0
                    }
                }
            });
        }
        while let Some(n) = scans.join_next().await {
            deleted += n.unwrap_or(0);
        }
        if new.ring_follows_health() {
            break;
        }
    }
    tracing::info!(pool = %pool.name, servers = scanned, deleted, ms = started.elapsed().as_millis() as u64,
        "ring change: keys arriving at a new owner deleted there (copies from an earlier time it owned them)");
    deleted
}

async fn flush_instead(pool: &Pool, s: &Server, why: &str) {
    tracing::warn!(pool = %pool.name, server = %s.addr, reason = why,
        "cannot list the keys moving to this server; flushing it instead");
    let t = pool.servers().timeout().min(Duration::from_secs(2));
    let cfg = ClientConfig { timeout: t, connect_timeout: t, max_in_flight: 1 };
    let flushed = match refresh::destination(pool, s, false).await {
        Ok((dest, _)) => match dest.connect(cfg, &pool.servers().tls_for(s)).await {
            Ok(c) => c.flush_all().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = flushed {
        tracing::warn!(pool = %pool.name, server = %s.addr, error = %e, "flush failed too: the server is failing");
    }
}

/// Once a ring change has settled (`ring_change_settle`), every live server
/// is cleared of the keys it no longer owns: what a key left behind where
/// it was (its value as the settle ended) cannot be found there if the key
/// moves back later (a second ejection of the same server, a pool scaled
/// out and in again). Checked every 250 ms; one sweep per settle.
pub(crate) async fn sweeper(pool: std::sync::Arc<Pool>, mut shutdown: memshard_net::Shutdown) -> std::io::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tick.tick() => {}
        }
        let set = pool.servers();
        if !set.settle_ended(tokio::time::Instant::now()) || !set.cfg.extensions.flush_on_return {
            continue;
        }
        let Some(ring) = set.ring() else { continue };
        let started = std::time::Instant::now();
        let mut deleted = 0u64;
        for j in 0..set.ring_len {
            let s = &set.servers[j];
            // A change since the sweep began: its own settle sweeps later.
            let current = pool.servers();
            if current.generation != set.generation || !current.ring().is_some_and(|r| Arc::ptr_eq(&r, &ring)) {
                break;
            }
            if !s.health.is_live() {
                continue;
            }
            let not_owned = |key: &[u8]| ring.server_for(key) != j;
            match tokio::time::timeout(SCAN_LIMIT, clear(&pool, s, &not_owned)).await {
                Ok(Ok(n)) => deleted += n,
                Ok(Err(why)) => tracing::warn!(pool = %pool.name, server = %s.addr, reason = why,
                    "cannot list the keys this server no longer owns; they stay until a move back clears them"),
                Err(_) => tracing::warn!(pool = %pool.name, server = %s.addr, "listing its keys took too long"),
            }
        }
        tracing::info!(pool = %pool.name, deleted, ms = started.elapsed().as_millis() as u64,
            "ring change settled: keys deleted where they no longer belong");
    }
}

/// A connection to a server, whichever kind.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Writes `bytes` and flushes them (a TLS stream holds back its last record).
async fn send(io: &mut Box<dyn Io>, bytes: &[u8]) -> Result<(), String> {
    io.write_all(bytes).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())
}

/// Opens a connection to `dest` (over TLS when the pool's servers speak it),
/// or fails within `t`.
async fn open(dest: &Dest, t: Duration, tls: &Option<(Arc<ClientTls>, String)>) -> Result<Box<dyn Io>, String> {
    let timed_out = |_| "connect timed out".to_string();
    Ok(match dest {
        Dest::Tcp(addrs) => {
            let s = tokio::time::timeout(t, TcpStream::connect(&addrs[..])).await.map_err(timed_out)?;
            let s = s.map_err(|e| e.to_string())?;
            match tls {
                None => Box::new(s),
                Some((tls, name)) => {
                    let handshake = tokio::time::timeout(t, tls.connect(name, s)).await;
                    Box::new(handshake.map_err(|_| "TLS handshake timed out".to_string())?.map_err(|e| e.to_string())?)
                }
            }
        }
        Dest::Unix(path) => {
            let s = tokio::time::timeout(t, UnixStream::connect(&**path)).await.map_err(timed_out)?;
            Box::new(s.map_err(|e| e.to_string())?)
        }
    })
}

/// Lists `s`'s keys on one connection and deletes those `moves_in` picks on
/// another as they come (a batch at a time: however many keys the server
/// holds, only a batch of them is held here).
async fn clear(pool: &Pool, s: &Server, moves_in: &(dyn Fn(&[u8]) -> bool + Sync)) -> Result<u64, String> {
    let (dest, _) = refresh::destination(pool, s, false).await.map_err(|e| e.to_string())?;
    // A server that does not take the connection at once is not waited for.
    let t = pool.servers().timeout().min(Duration::from_secs(2));
    let tls = pool.servers().tls_for(s);
    let mut lister = BufReader::new(open(&dest, t, &tls).await?);
    let mut deleter = BufReader::new(open(&dest, t, &tls).await?);
    let mut batch = Vec::with_capacity(DELETE_BATCH * 48);
    let (mut in_batch, mut deleted) = (0usize, 0u64);
    let mut line = Vec::new();
    let mut listed = false;
    for _ in 0..20 {
        send(lister.get_mut(), b"lru_crawler metadump all\r\n").await?;
        loop {
            line.clear();
            if read_line(&mut lister, &mut line).await? == 0 {
                return Err("closed while listing keys".into());
            }
            if line.as_slice() == b"END\r\n" {
                listed = true;
                break;
            }
            // A busy crawler is asked again, 100 ms later.
            if line.starts_with(b"BUSY") {
                break;
            }
            let Some(rest) = line.strip_prefix(b"key=") else {
                return Err(format!("metadump answered {:?}", String::from_utf8_lossy(&line).trim_end()));
            };
            let encoded = rest.split(|&b| b == b' ' || b == b'\r').next().unwrap_or_default();
            let key = unescape(encoded);
            if moves_in(&key) {
                batch.extend_from_slice(&delete_line(&key));
                in_batch += 1;
                if in_batch == DELETE_BATCH {
                    send(deleter.get_mut(), &batch).await?;
                    deleted += in_batch as u64;
                    (in_batch, batch) = (0, Vec::with_capacity(DELETE_BATCH * 48));
                }
            }
        }
        if listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !listed {
        return Err("the LRU crawler stayed busy".into());
    }
    // Quiet deletes answer only errors; `mn` marks the end.
    batch.extend_from_slice(b"mn\r\n");
    send(deleter.get_mut(), &batch).await?;
    deleted += in_batch as u64;
    loop {
        line.clear();
        if read_line(&mut deleter, &mut line).await? == 0 {
            return Err("closed while deleting".into());
        }
        match line.as_slice() {
            b"MN\r\n" => return Ok(deleted),
            // A key the server cannot take back in a command (a binary
            // protocol key too long once base64-encoded) stays: the server
            // is not flushed for it.
            l if l.starts_with(b"HD") || l.starts_with(b"NF") || l.starts_with(b"CLIENT_ERROR") => {}
            l => return Err(format!("delete answered {:?}", String::from_utf8_lossy(l).trim_end())),
        }
    }
}

/// One line, or an error when the server sends nothing for [`IDLE_LIMIT`]
/// (a hung server does not hold a reload for the whole [`SCAN_LIMIT`]).
async fn read_line<S: AsyncRead + Unpin>(conn: &mut BufReader<S>, line: &mut Vec<u8>) -> Result<usize, String> {
    match tokio::time::timeout(IDLE_LIMIT, conn.read_until(b'\n', line)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the server stopped answering".into()),
    }
}

/// A metadump key: URL-encoded (`%XX`) as memcached prints it.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (s[i], s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A quiet meta delete of `key`; keys a text command cannot carry (spaces,
/// control bytes) go base64-encoded.
fn delete_line(key: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    if key.iter().all(|&b| b > b' ' && b != 0x7f) {
        [b"md ", key, b" q\r\n"].concat()
    } else {
        let enc = base64::engine::general_purpose::STANDARD.encode(key);
        [b"md ", enc.as_bytes(), b" b q\r\n"].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::{delete_line, unescape};

    #[test]
    fn metadump_keys_are_unescaped_and_deleted_in_a_form_the_server_reads() {
        assert_eq!(unescape(b"plain:key"), b"plain:key");
        assert_eq!(unescape(b"a%20b%2525"), b"a b%25");
        assert_eq!(unescape(b"bad%zz%4"), b"bad%zz%4", "a broken escape stays as it is");
        assert_eq!(delete_line(b"k:1"), b"md k:1 q\r\n");
        assert_eq!(delete_line(b"a b"), b"md YSBi b q\r\n");
    }
}
