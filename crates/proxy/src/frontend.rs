//! One client connection: decode its requests, route each, and write the
//! replies strictly in request order (pipelined requests to different
//! servers are in flight at the same time).

use crate::forward::{Route, Work, route};
use crate::stats;
use memshard_net::{ReadBuf, Shutdown};
use memshard_proto::{Decoder, Request};
use std::collections::VecDeque;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Most requests of one client routed but not yet answered; beyond it the
/// proxy stops reading from that client until replies drain.
const MAX_PENDING: usize = 1024;

/// Keeps the pool's `client_connections` gauge right however the task ends.
struct ClientGauge(std::sync::Arc<crate::pool::Pool>);
impl Drop for ClientGauge {
    fn drop(&mut self) {
        stats::gauge(&self.0.stats.client_connections, -1);
    }
}

/// Serves one client, over TCP or a unix socket: generic, so each kind of
/// stream gets its own copy of this loop and reads and writes are direct
/// calls on it.
pub(crate) async fn handle<S>(mut stream: S, r: Route, decoder: Decoder, mut shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    stats::gauge(&r.pool.stats.client_connections, 1);
    let _gauge = ClientGauge(r.pool.clone());
    let mut rbuf = ReadBuf::new();
    let mut pending: VecDeque<Work> = VecDeque::new();
    loop {
        let mut close = false;
        loop {
            if pending.len() >= MAX_PENDING || !rbuf.ready() {
                break;
            }
            // A rejected data block to discard after this request's bytes.
            let mut swallow = 0;
            let (used, work) = match decoder.decode(rbuf.bytes()) {
                Ok(None) => break,
                Ok(Some((Request::Quit, used))) => {
                    close = true;
                    (used, None)
                }
                Ok(Some((req, used))) => (used, Some(route(&r, req).await)),
                Err(e) => {
                    let mut out = Vec::new();
                    if let Some(l) = e.reply_line() {
                        out.extend_from_slice(l.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    swallow = e.swallow;
                    close = e.close;
                    (e.consumed, Some(Work::Ready(out)))
                }
            };
            rbuf.consume(used);
            rbuf.swallow(swallow);
            if let Some(w) = work {
                pending.push_back(w);
            }
            if close {
                break;
            }
        }
        // Answer everything routed so far, in order.
        let mut out = Vec::new();
        while let Some(w) = pending.pop_front() {
            match w {
                Work::Ready(b) => out.extend_from_slice(&b),
                Work::Pending(h) => match h.await {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(_) => out.extend_from_slice(b"SERVER_ERROR internal error\r\n"),
                },
                Work::Backend(b) => b.finish(&mut out).await,
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
        if close || shutdown.is_triggered() {
            let _ = stream.shutdown().await;
            return;
        }
        tokio::select! {
            res = rbuf.fill(&mut stream) => match res {
                Ok(0) => {
                    stats::add(&r.pool.stats.client_eof, 1);
                    return;
                }
                Err(_) => {
                    stats::add(&r.pool.stats.client_err, 1);
                    return;
                }
                Ok(_) => {}
            },
            _ = shutdown.wait() => {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}
