//! One client connection: read, decode, execute, write — in batches, so a
//! pipelining client gets all replies to one read in one write.

use crate::Shared;
use crate::conn_table::Peer;
use crate::exec::Exec;
use crate::reply::Outcome;
use crate::stats::Counters;
use memshard_net::Shutdown;
use memshard_proto::{Admin, AdminCmd, READ_CHUNK, Request, RequestBuf, Step, WatchFlags, binary};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Flush replies once this many bytes are waiting, even mid-batch, so a client
/// that pipelines big multi-gets cannot grow our memory without bound.
pub(crate) const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Serves one connection until the client leaves, sends `quit`, breaks framing
/// beyond repair, or the server shuts down.
pub(crate) async fn handle<S>(mut stream: S, shared: Arc<Shared>, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Peer,
{
    let me = shared.clients.register(&stream, shared.store.now() as u32);
    let cfd = me.fd;
    let mut rbuf = RequestBuf::new();
    let mut wbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let decoder = shared.decoder;
    // memcached decides a connection's protocol on its first byte: the
    // binary magic makes it a binary connection for good.
    let mut binary: Option<bool> = None;
    // Polled beside every read; cheap after the first poll.
    let mut stop = shutdown.signal();
    loop {
        // Process everything already buffered.
        let mut close = false;
        loop {
            let first = rbuf.bytes().first().copied();
            let Some(first) = first else { break };
            let next = if *binary.get_or_insert(first == binary::REQUEST_MAGIC) {
                match binary::decode(rbuf.bytes(), shared.cfg.max_item_size) {
                    Ok(None) => break,
                    Ok(Some((req, used))) => {
                        let outcome = crate::binary_exec::run(&shared, &req, &mut wbuf);
                        rbuf.advance(used, 0);
                        Next::Done(outcome)
                    }
                    Err(e) => {
                        let outcome = crate::binary_exec::refuse(&shared, &e, &mut wbuf);
                        rbuf.advance(e.consumed, e.swallow);
                        Next::Done(outcome)
                    }
                }
            } else {
                match rbuf.next(&decoder) {
                    Step::NeedMore => break,
                    Step::Request { req: Request::Get(g), .. } => {
                        // Multi-gets stream: flush whenever enough replies queued up.
                        let exec = Exec::new(&shared, cfd);
                        for key in g.keys.iter() {
                            exec.get_one(&g, key, &mut wbuf);
                            if wbuf.len() >= WRITE_HIGH_WATER
                                && write_out(&mut stream, &mut wbuf, &shared).await.is_err()
                            {
                                return;
                            }
                        }
                        wbuf.extend_from_slice(b"END\r\n");
                        Next::Done(Outcome::Continue)
                    }
                    Step::Request { req: Request::Admin(a), .. } if takes_over(&a) => Next::Takeover(match a.op {
                        Admin::LruCrawlerMetadump(classes) => Takeover::Metadump(classes.to_vec()),
                        Admin::Watch(flags) => Takeover::Watch(flags),
                        _ => Takeover::Watch(WatchFlags::default()),
                    }),
                    Step::Request { req, .. } => Next::Done(Exec::new(&shared, cfd).run(req, &mut wbuf)),
                    Step::Refused(e) => {
                        if let Some(line) = e.reply_line() {
                            wbuf.extend_from_slice(line.as_bytes());
                            wbuf.extend_from_slice(b"\r\n");
                        }
                        if let Some(key) = &e.unlink {
                            shared.store.delete(key, None);
                        }
                        if e.reply == Some(memshard_proto::msg::TOO_LARGE) {
                            Counters::bump(&shared.stats.store_too_large);
                        }
                        Next::Done(if e.close { Outcome::Close } else { Outcome::Continue })
                    }
                }
            };
            match next {
                Next::Done(Outcome::Close) => {
                    close = true;
                    break;
                }
                Next::Done(Outcome::Continue) => {}
                // The answers to the commands before it go out first.
                // (memcached refuses some such pipelines with "ERROR cannot
                // pipeline other commands before watch" and accepts others,
                // by the state of its response queue.)
                Next::Takeover(takeover) => {
                    rbuf.commit();
                    if !wbuf.is_empty() && write_out(&mut stream, &mut wbuf, &shared).await.is_err() {
                        return;
                    }
                    match takeover {
                        Takeover::Watch(flags) => {
                            me.info.watching.store(true, Ordering::Relaxed);
                            watch(&mut stream, &shared, flags, &shutdown).await;
                            return;
                        }
                        Takeover::Metadump(classes) => {
                            if metadump(&mut stream, &shared, &classes, &mut wbuf).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if wbuf.len() >= WRITE_HIGH_WATER && write_out(&mut stream, &mut wbuf, &shared).await.is_err() {
                return;
            }
        }
        if !wbuf.is_empty() && write_out(&mut stream, &mut wbuf, &shared).await.is_err() {
            return;
        }
        // On shutdown a connection closes once it is between requests; one in
        // the middle of a request reads on until the request is complete and
        // answered (the accept loop's drain timeout bounds the wait).
        if close || (shutdown.is_triggered() && !rbuf.mid_request()) {
            if !close {
                goodbye(&mut stream, &shared, binary).await;
            }
            let _ = stream.shutdown().await;
            return;
        }
        let n = tokio::select! {
            biased;
            r = memshard_net::fill(&mut rbuf, &mut stream) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = &mut stop, if !rbuf.mid_request() => {
                goodbye(&mut stream, &shared, binary).await;
                let _ = stream.shutdown().await;
                return;
            }
        };
        shared.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        me.info.last_cmd.store(shared.store.now() as u32, Ordering::Relaxed);
    }
}

/// A server that will come back with its items (`-e`) tells each text
/// connection it closes at a stop (see [`memshard_proto::msg::GOODBYE`]);
/// one that comes back empty closes silently, as memcached does.
async fn goodbye<S: AsyncWrite + Unpin>(stream: &mut S, shared: &Shared, binary: Option<bool>) {
    if shared.cfg.memory_file.is_some() && binary != Some(true) {
        let line = [memshard_proto::msg::GOODBYE.as_bytes(), b"\r\n"].concat();
        // Bounded: a client that reads nothing cannot hold the stop.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), async {
            stream.write_all(&line).await?;
            stream.flush().await
        })
        .await;
    }
}

/// What a decoded request led to.
enum Next {
    /// Answered (or refused); go on or close.
    Done(Outcome),
    /// The connection becomes something else.
    Takeover(Takeover),
}

/// A command that takes the connection over, detached from the read buffer.
enum Takeover {
    Watch(WatchFlags),
    Metadump(Vec<u8>),
}

/// The commands that take the connection over.
fn takes_over(a: &AdminCmd<'_>) -> bool {
    matches!(a.op, Admin::Watch(_) | Admin::LruCrawlerMetadump(_))
}

/// `watch`: the connection now only receives log lines, until the client
/// goes away or the server stops. What the client sends is read and
/// ignored (memcached stops reading a watcher altogether).
async fn watch<S>(stream: &mut S, shared: &Shared, flags: WatchFlags, shutdown: &Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut w = match shared.logger.add(flags) {
        Ok(w) => w,
        Err(_) => {
            let _ = stream.write_all(b"WATCHER_TOO_MANY log watcher limit reached\r\n").await;
            let _ = stream.flush().await;
            return;
        }
    };
    let mut stop = shutdown.signal();
    let mut out = b"OK\r\n".to_vec();
    let mut sink = [0u8; 1024];
    loop {
        let skipped = w.skipped.swap(0, Ordering::Relaxed);
        if skipped > 0 {
            out.extend_from_slice(format!("skipped={skipped}\n").as_bytes());
        }
        while let Ok(line) = w.rx.try_recv() {
            out.extend_from_slice(&line);
            if out.len() >= WRITE_HIGH_WATER {
                break;
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                break;
            }
            shared.stats.bytes_written.fetch_add(out.len() as u64, Ordering::Relaxed);
            out.clear();
        }
        tokio::select! {
            line = w.rx.recv() => match line {
                Some(line) => out.extend_from_slice(&line),
                None => break,
            },
            r = stream.read(&mut sink) => if matches!(r, Ok(0) | Err(_)) { break },
            () = &mut stop => break,
        }
    }
    shared.logger.remove(w.id);
    let _ = stream.shutdown().await;
}

/// `lru_crawler metadump <classes|all|hash>`: one line per live item of the
/// classes asked for (memcached's `key=… exp=… la=… cas=… fetch=… cls=…
/// size=…`), then `END`. Streamed a store shard at a time, so dumping a
/// large store holds neither the store's locks nor its size in memory.
async fn metadump<S>(stream: &mut S, shared: &Shared, classes: &[u8], out: &mut Vec<u8>) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    use std::io::Write;
    if !shared.settings.lru_crawler.load(Ordering::Relaxed) {
        out.extend_from_slice(b"CLIENT_ERROR lru crawler disabled\r\n");
    } else if !crate::admin_exec::valid_classes(classes) {
        out.extend_from_slice(b"BADCLASS invalid class id\r\n");
    } else {
        let all = classes == b"all" || classes == b"hash";
        let wanted: Vec<usize> = classes
            .split(|&b| b == b',')
            .filter_map(|c| memshard_proto::number::parse_u32(c).map(|c| c as usize))
            .collect();
        for shard in 0..shared.store.shard_count() {
            for item in shared.store.shard_items(shard) {
                let v = &item.view;
                let size = memshard_store::memcached_item_size(v.key().len(), v.value_len(), v.flags());
                let cls = memshard_store::classes::class_of(size);
                if !all && !wanted.contains(&cls) {
                    continue;
                }
                out.extend_from_slice(b"key=");
                crate::watch::uriencode(out, v.key());
                let exp = if item.exptime == 0 { -1 } else { item.exptime as i64 };
                let fetch = if item.fetched { "yes" } else { "no" };
                let _ = writeln!(
                    out,
                    " exp={exp} la={} cas={} fetch={fetch} cls={cls} size={size}",
                    item.last_access,
                    v.cas()
                );
                if out.len() >= WRITE_HIGH_WATER {
                    write_out(stream, out, shared).await?;
                }
            }
        }
        out.extend_from_slice(b"END\r\n");
    }
    write_out(stream, out, shared).await
}

async fn write_out<S: AsyncWrite + Unpin>(stream: &mut S, wbuf: &mut Vec<u8>, shared: &Shared) -> std::io::Result<()> {
    stream.write_all(wbuf).await?;
    // A TLS stream may keep the last record in its buffer until flushed (a
    // no-op on a bare socket).
    stream.flush().await?;
    shared.stats.bytes_written.fetch_add(wbuf.len() as u64, Ordering::Relaxed);
    wbuf.clear();
    if wbuf.capacity() > 4 * WRITE_HIGH_WATER {
        *wbuf = Vec::with_capacity(READ_CHUNK);
    }
    Ok(())
}
