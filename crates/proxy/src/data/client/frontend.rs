//! One client connection: decode its requests, route each, and write the
//! replies strictly in request order (pipelined requests to different
//! servers are in flight at the same time).
//!
//! A batch is what one read brought: every complete request in it is routed
//! (queued on its backend connection, which writes them all once this task
//! yields), then the task sleeps until the last answer of the batch is in
//! and writes them all with one call. No task, timer or channel per request.
//!
//! Between batches, with every answer written, nothing buffered and every
//! noreply request known to be executed, the connection may be asked to
//! move to another worker thread (see `memshard_net::Seat`): the handler
//! then returns its stream and the client goes on there, unaware.

use crate::control::hotkeys::HotKeys;
use crate::control::pool::Pool;
use crate::control::stats;
use crate::data::backend::conns;
use crate::data::client::forward::{Client, route};
use crate::data::replica;
use memshard_net::{Seat, Shutdown};
use memshard_proto::{Decoder, Request, RequestBuf, Step};
use std::future::poll_fn;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Most requests of one client routed but not yet answered; beyond it the
/// proxy stops reading from that client until replies drain.
const MAX_PENDING: usize = 1024;

/// What every client connection of a pool starts from: the pool and its
/// index (the key of each worker's connection table).
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) pool_id: usize,
    pub(crate) pool: std::sync::Arc<Pool>,
}

/// Where a batch stopped.
enum Batch {
    /// Every complete request is routed; more bytes are needed.
    Read,
    /// [`MAX_PENDING`] answers, or the client's memory budget, are owed:
    /// answer them, then go on routing.
    Full,
    /// The client quit or sent what closes a connection.
    Close,
}

/// Keeps the pool's `client_connections` gauge right however the task ends
/// (a client that parks stays counted).
struct ClientGauge {
    pool: std::sync::Arc<Pool>,
    counted: bool,
}
impl Drop for ClientGauge {
    fn drop(&mut self) {
        if self.counted {
            stats::gauge(&self.pool.stats.client_connections, -1);
        }
    }
}

/// Serves one client, over TCP or a unix socket: generic, so each kind of
/// stream gets its own copy of this loop and reads and writes are direct
/// calls on it. Returns the stream when the client is to go on on another
/// worker (`seat` asked, between requests), `None` when it is done.
pub(crate) async fn handle<S>(mut stream: S, r: Route, decoder: Decoder, shutdown: Shutdown, seat: Seat) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !seat.resumed() {
        stats::gauge(&r.pool.stats.client_connections, 1);
    }
    let mut gauge = ClientGauge { pool: r.pool.clone(), counted: true };
    let client = Client::new(conns::for_pool(r.pool_id, &r.pool));
    let mut rbuf = RequestBuf::new();
    let mut wbuf = Vec::new();
    // One shutdown watch for the connection's life, cheap to poll per read.
    let mut stopped = shutdown.signal();
    // Park ticks in a row with nothing read (see `idle` below).
    let mut idle_ticks = 0u8;
    loop {
        let batch = decode_batch(&client, &r, decoder, &mut rbuf);
        // Answer everything routed so far, in order: one write per batch
        // (or per FLUSH_AT bytes of a huge answer).
        loop {
            poll_fn(|cx| client.queue.poll_answered(cx)).await;
            client.queue.take_out(&mut wbuf);
            // The flush sends what a TLS stream holds back (a no-op on a socket).
            if !wbuf.is_empty() && (stream.write_all(&wbuf).await.is_err() || stream.flush().await.is_err()) {
                return None;
            }
            client.queue.give_back(std::mem::take(&mut wbuf));
            if client.queue.pending() == 0 {
                break;
            }
        }
        match batch {
            Batch::Close => {
                let _ = stream.shutdown().await;
                return None;
            }
            // On shutdown a connection closes once it is between requests; one
            // in the middle of a request reads on until the request is
            // complete and answered (the drain timeout bounds the wait).
            _ if shutdown.is_triggered() && !rbuf.mid_request() => {
                let _ = stream.shutdown().await;
                return None;
            }
            // Requests still buffered are routed before reading more.
            Batch::Full => continue,
            Batch::Read => {}
        }
        // Between requests: everything answered and written, nothing
        // buffered, every noreply executed. The seat is asked last: a yes
        // is a promise to go.
        if !rbuf.mid_request() && client.settled() && seat.should_move() {
            return Some(stream);
        }
        tokio::select! {
            biased;
            res = memshard_net::fill(&mut rbuf, &mut stream) => match res {
                Ok(0) => {
                    stats::add(&r.pool.stats.client_eof, 1);
                    return None;
                }
                Err(_) => {
                    stats::add(&r.pool.stats.client_err, 1);
                    return None;
                }
                Ok(_) => idle_ticks = 0,
            },
            () = &mut stopped, if !rbuf.mid_request() => {
                let _ = stream.shutdown().await;
                return None;
            }
            // Idle for a whole park tick (two rings with nothing read): the
            // connection parks as a bare socket until the client sends
            // again, and this task and its queues go (see memshard_net's
            // parking). Nothing is buffered or owed, so nothing is lost.
            () = seat.park_tick(), if !rbuf.mid_request() => {
                idle_ticks = idle_ticks.saturating_add(1);
                if idle_ticks >= 2 && client.queue.pending() == 0 && client.settled() {
                    seat.park();
                    gauge.counted = false;
                    return Some(stream);
                }
            }
        }
    }
}

/// Routes every complete request in `rbuf` (up to [`MAX_PENDING`] awaiting
/// answers).
fn decode_batch(client: &Client, r: &Route, decoder: Decoder, rbuf: &mut RequestBuf) -> Batch {
    // One server set, one ring and one clock read per batch: a reload or
    // an ejection takes effect from the next batch, deadlines are stamped with the time the batch came.
    let set = r.pool.servers();
    let ring = set.ring();
    let now = Instant::now();
    // A replicated pool, or a ring change settling, goes through the
    // owners' path (`replica`); otherwise one server per key.
    let reads = (set.replicas() > 1 || set.settling(now).is_some()).then(|| client.reads(&set));
    let replicated = reads.as_ref().map(|reads| replica::Batch::new(&set, reads));
    loop {
        if rbuf.mid_request() && (client.queue.pending() >= MAX_PENDING || !client.queue.has_room()) {
            return Batch::Full;
        }
        match rbuf.next(&decoder) {
            Step::NeedMore => return Batch::Read,
            Step::Request { req: Request::Quit, .. } => return Batch::Close,
            Step::Request { req, raw } => {
                if let Some(hot) = &r.pool.hot_keys {
                    if HotKeys::sampled() {
                        offer_keys(hot, &req);
                    }
                }
                route(client, &set, ring.as_deref(), replicated.as_ref(), &req, raw, now);
            }
            Step::Refused(e) => {
                if let Some(l) = e.reply_line() {
                    let mut line = Vec::with_capacity(l.len() + 2);
                    line.extend_from_slice(l.as_bytes());
                    line.extend_from_slice(b"\r\n");
                    client.queue.ready(&line);
                }
                if e.close {
                    return Batch::Close;
                }
            }
        }
    }
}

/// Counts a sampled request's keys in the pool's hot-key sketch.
fn offer_keys(hot: &HotKeys, req: &Request<'_>) {
    match req {
        Request::Get(g) => g.keys.iter().for_each(|k| hot.offer(k)),
        Request::Store(s) => hot.offer(s.key),
        Request::Delete(d) => hot.offer(d.key),
        Request::Arith(a) => hot.offer(a.key),
        Request::Touch(t) => hot.offer(t.key),
        Request::MetaGet(m) => hot.offer(&m.key),
        Request::MetaSet(m) => hot.offer(&m.key),
        Request::MetaDelete(m) => hot.offer(&m.key),
        Request::MetaArith(m) => hot.offer(&m.key),
        _ => {}
    }
}
