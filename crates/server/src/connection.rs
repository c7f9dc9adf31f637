//! One client connection: read, decode, execute, write — in batches, so a
//! pipelining client gets all replies to one read in one write.

use crate::Shared;
use crate::exec::{Exec, Outcome};
use crate::stats::Counters;
use memshard_net::{READ_CHUNK, ReadBuf, Shutdown};
use memshard_proto::Request;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Flush replies once this many bytes are waiting, even mid-batch, so a client
/// that pipelines big multi-gets cannot grow our memory without bound.
pub(crate) const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Serves one connection until the client leaves, sends `quit`, breaks framing
/// beyond repair, or the server shuts down.
pub(crate) async fn handle<S>(mut stream: S, shared: Arc<Shared>, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut rbuf = ReadBuf::new();
    let mut wbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let decoder = shared.decoder;
    // Polled beside every read; cheap after the first poll.
    let mut stop = shutdown.signal();
    loop {
        // Process everything already buffered.
        let mut close = false;
        loop {
            if !rbuf.ready() {
                break;
            }
            // A rejected data block to discard after this request's bytes.
            let mut swallow = 0;
            let (used, next) = match decoder.decode(rbuf.bytes()) {
                Ok(None) => break,
                Ok(Some((Request::Get(g), used))) => {
                    // Multi-gets stream: flush whenever enough replies queued up.
                    let exec = Exec::new(&shared);
                    for key in g.keys.iter() {
                        exec.get_one(&g, key, &mut wbuf);
                        if wbuf.len() >= WRITE_HIGH_WATER && write_out(&mut stream, &mut wbuf, &shared).await.is_err() {
                            return;
                        }
                    }
                    wbuf.extend_from_slice(b"END\r\n");
                    (used, Outcome::Continue)
                }
                Ok(Some((req, used))) => (used, Exec::new(&shared).run(req, &mut wbuf)),
                Err(e) => {
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
                    swallow = e.swallow;
                    (e.consumed, if e.close { Outcome::Close } else { Outcome::Continue })
                }
            };
            rbuf.consume(used);
            rbuf.swallow(swallow);
            if next == Outcome::Close {
                close = true;
                break;
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
            let _ = stream.shutdown().await;
            return;
        }
        let n = tokio::select! {
            biased;
            r = rbuf.fill(&mut stream) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = &mut stop, if !rbuf.mid_request() => {
                let _ = stream.shutdown().await;
                return;
            }
        };
        shared.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
    }
}

async fn write_out<S: AsyncWrite + Unpin>(stream: &mut S, wbuf: &mut Vec<u8>, shared: &Shared) -> std::io::Result<()> {
    stream.write_all(wbuf).await?;
    shared.stats.bytes_written.fetch_add(wbuf.len() as u64, Ordering::Relaxed);
    wbuf.clear();
    if wbuf.capacity() > 4 * WRITE_HIGH_WATER {
        *wbuf = Vec::with_capacity(READ_CHUNK);
    }
    Ok(())
}
