//! One load-generating connection: its socket, buffers, random generator and
//! the queue of requests awaiting replies, plus the prefill.
//!
//! Deliberately not built on `memshard-client`: a generic client pays for a
//! writer task, a reader task, channels and an allocation per reply, which
//! would make the generator compete with the server for the CPU. Here one task
//! owns the raw socket, and buffers are reused for the whole run. Reading is
//! split into a cancel-safe single read ([`BenchConn::fill`]) and synchronous
//! decoding of whatever complete answers arrived ([`BenchConn::drain`]), so
//! the open loop can wait for "a reply or the next send time" in one
//! `select!` without losing a half-decoded answer.

use crate::mix::Op;
use crate::progress::Live;
use crate::stats::{Answer, ConnStats, ReplyFault};
use crate::workload::Workload;
use bytes::{Buf, BytesMut};
use memshard_proto::{MetaCode, Reply, ReplyError};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const READ_CHUNK: usize = 64 * 1024;

/// Sets per prefill batch.
const PREFILL_BATCH: usize = 64;

/// A request written (or about to be) and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Pending {
    op: Op,
    /// Keys a read asks for.
    keys: u32,
    /// When it was meant to be sent: latency runs from here.
    intended: Instant,
    /// When it was written.
    sent: Instant,
    /// Whether it belongs to the measured window.
    record: bool,
}

/// A connection-ending failure.
#[derive(Debug)]
pub(crate) enum ConnError {
    Io(io::Error),
    Protocol(ReplyError),
    /// Reply bytes with no request waiting for them.
    Unsolicited,
    Timeout,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Protocol(e) => write!(f, "protocol: {e}"),
            ConnError::Unsolicited => f.write_str("protocol: reply with no request outstanding"),
            ConnError::Timeout => f.write_str("timed out"),
        }
    }
}

impl ConnError {
    /// Counts the failure under its kind.
    pub(crate) fn count(&self, stats: &mut ConnStats) {
        let e = &mut stats.errors;
        match self {
            ConnError::Io(_) => e.disconnected += 1,
            ConnError::Protocol(_) | ConnError::Unsolicited => e.protocol += 1,
            ConnError::Timeout => e.timeout += 1,
        }
    }
}

/// A connection's socket, bare or under TLS: one branch per call, the same
/// for both, so a comparison of the two measures the target.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<memshard_tls::ClientStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

pub(crate) struct BenchConn {
    stream: Stream,
    wbuf: Vec<u8>,
    rbuf: BytesMut,
    rng: SmallRng,
    /// Requests awaiting replies, oldest first (replies come in order).
    pending: VecDeque<Pending>,
    /// Requests queued in `wbuf` but not yet written (the tail of `pending`).
    unwritten: usize,
    /// `VALUE` units seen so far of the answer to `pending.front()`.
    values_seen: u32,
    /// Whether send lag is recorded (open loop only: it is zero by
    /// construction in the closed loop).
    record_lag: bool,
}

impl BenchConn {
    pub(crate) async fn connect(
        addr: &str,
        timeout: Duration,
        seed: u64,
        pipeline: usize,
        tls: Option<&crate::BenchTls>,
    ) -> io::Result<Self> {
        let timed_out = |_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr)).await.map_err(timed_out)??;
        stream.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Tcp(stream),
            Some(t) => Stream::Tls(Box::new(
                tokio::time::timeout(timeout, t.config.connect(&t.name, stream)).await.map_err(timed_out)??,
            )),
        };
        Ok(BenchConn {
            stream,
            wbuf: Vec::with_capacity(READ_CHUNK),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            rng: SmallRng::seed_from_u64(seed),
            pending: VecDeque::with_capacity(pipeline.max(PREFILL_BATCH)),
            unwritten: 0,
            values_seen: 0,
            record_lag: false,
        })
    }

    pub(crate) fn set_record_lag(&mut self, on: bool) {
        self.record_lag = on;
    }

    /// Requests written or queued and not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Measured requests written or queued and not yet answered.
    pub(crate) fn measured_in_flight(&self) -> u64 {
        self.pending.iter().filter(|p| p.record).count() as u64
    }

    /// Picks the next request and queues it for [`flush`](Self::flush).
    pub(crate) fn queue(&mut self, wl: &Workload, intended: Instant, record: bool) {
        let (op, keys) = wl.next(&mut self.rng, &mut self.wbuf);
        self.pending.push_back(Pending { op, keys, intended, sent: intended, record });
        self.unwritten += 1;
    }

    /// Writes every queued request.
    pub(crate) async fn flush(&mut self) -> Result<(), ConnError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        for p in self.pending.iter_mut().rev().take(self.unwritten) {
            p.sent = now;
        }
        self.unwritten = 0;
        let r = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        }
        .await
        .map_err(ConnError::Io);
        self.wbuf.clear();
        r
    }

    /// One read from the socket. Cancel-safe: if the future is dropped before
    /// it completes, no bytes were consumed. Returns when the bytes arrived.
    pub(crate) async fn fill(&mut self) -> Result<Instant, ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => Ok(Instant::now()),
            Err(e) => Err(ConnError::Io(e)),
        }
    }

    /// Decodes every complete answer in the read buffer and records the
    /// measured ones as arriving at `arrived` (one clock read per socket read,
    /// not per reply). Takes the stats lock once, and never across an await.
    pub(crate) fn drain(&mut self, arrived: Instant, stats: &Mutex<ConnStats>, live: &Live) -> Result<(), ConnError> {
        let mut stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut answered, mut failed) = (0, 0);
        let result = loop {
            match self.next_answer() {
                Ok(Some((p, answer))) => {
                    answered += 1;
                    if matches!(answer, Answer::Failed(_)) {
                        failed += 1;
                    }
                    if p.record {
                        let lag = self.record_lag.then(|| p.sent.saturating_duration_since(p.intended));
                        let latency = arrived.saturating_duration_since(p.intended);
                        stats.count(p.op, answer, latency, lag, arrived);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        drop(stats);
        live.ops.fetch_add(answered, Ordering::Relaxed);
        if failed > 0 {
            live.errors.fetch_add(failed, Ordering::Relaxed);
        }
        result
    }

    /// The next complete answer in the read buffer, if there is one.
    fn next_answer(&mut self) -> Result<Option<(Pending, Answer)>, ConnError> {
        loop {
            let Some(&front) = self.pending.front() else {
                return if self.rbuf.is_empty() { Ok(None) } else { Err(ConnError::Unsolicited) };
            };
            let (step, used) = match Reply::decode(&self.rbuf) {
                Ok(Some((reply, used))) => (classify(front.op, front.keys, &reply, &mut self.values_seen), used),
                Ok(None) => return Ok(None),
                Err(e) => return Err(ConnError::Protocol(e)),
            };
            self.rbuf.advance(used);
            if let Some(answer) = step {
                self.values_seen = 0;
                self.pending.pop_front();
                return Ok(Some((front, answer)));
            }
        }
    }

    /// Sets every key in `keys` once, in pipelined batches, with the
    /// workload's value sizes. Returns `(stored, not stored or error
    /// replies)`; a connection failure or a batch slower than `timeout` ends it.
    pub(crate) async fn prefill(
        &mut self,
        wl: &Workload,
        keys: impl Iterator<Item = usize>,
        timeout: Duration,
    ) -> Result<(u64, u64), ConnError> {
        let op = wl.prefill_op();
        let mut keys = keys.peekable();
        let (mut stored, mut failed) = (0, 0);
        while keys.peek().is_some() {
            let now = Instant::now();
            for k in keys.by_ref().take(PREFILL_BATCH) {
                let size = wl.size(&mut self.rng);
                wl.encode_store(op, k, size, &mut self.wbuf);
                self.pending.push_back(Pending { op, keys: 0, intended: now, sent: now, record: false });
                self.unwritten += 1;
            }
            let exchange = async {
                self.flush().await?;
                while !self.pending.is_empty() {
                    while let Some((_, answer)) = self.next_answer()? {
                        if answer == Answer::Stored { stored += 1 } else { failed += 1 }
                    }
                    if !self.pending.is_empty() {
                        self.fill().await?;
                    }
                }
                Ok::<_, ConnError>(())
            };
            tokio::time::timeout(timeout, exchange).await.map_err(|_| ConnError::Timeout)??;
        }
        Ok((stored, failed))
    }
}

/// Maps one reply unit to the answer of the request `op` (asking for `keys`
/// keys), or `None` when the answer goes on (a `VALUE` before `END`).
fn classify(op: Op, keys: u32, reply: &Reply<'_>, values_seen: &mut u32) -> Option<Answer> {
    if !reply.is_terminal() {
        *values_seen += 1;
        return None;
    }
    let fault = |f| Some(Answer::Failed(f));
    match (op, reply) {
        (_, Reply::Error) => fault(ReplyFault::Error),
        (_, Reply::ClientError(_)) => fault(ReplyFault::ClientError),
        (_, Reply::ServerError(_)) => fault(ReplyFault::ServerError),
        (Op::Get, Reply::End) if *values_seen <= keys => {
            Some(Answer::Read { hits: *values_seen, misses: keys - *values_seen })
        }
        _ if *values_seen > 0 => fault(ReplyFault::Unexpected),
        (Op::MetaGet, Reply::Meta { code: MetaCode::Va | MetaCode::Hd, .. }) => {
            Some(Answer::Read { hits: 1, misses: 0 })
        }
        (Op::MetaGet, Reply::Meta { code: MetaCode::En, .. }) => Some(Answer::Read { hits: 0, misses: 1 }),
        (Op::Set, Reply::Stored) | (Op::MetaSet, Reply::Meta { code: MetaCode::Hd, .. }) => Some(Answer::Stored),
        (Op::Set, Reply::NotStored) | (Op::MetaSet, Reply::Meta { code: MetaCode::Ns, .. }) => {
            fault(ReplyFault::NotStored)
        }
        _ => fault(ReplyFault::Unexpected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(op: Op, keys: u32, replies: &[Reply<'_>]) -> Vec<Option<Answer>> {
        let mut seen = 0;
        replies.iter().map(|r| classify(op, keys, r, &mut seen)).collect()
    }

    #[test]
    fn classification() {
        let value = || Reply::Value { key: b"k", flags: 0, cas: None, data: b"v" };
        let read = |hits, misses| Some(Answer::Read { hits, misses });
        assert_eq!(answer(Op::Get, 1, &[value(), Reply::End]), vec![None, read(1, 0)]);
        assert_eq!(answer(Op::Get, 3, &[value(), value(), Reply::End]), vec![None, None, read(2, 1)]);
        assert_eq!(answer(Op::Get, 1, &[Reply::End]), vec![read(0, 1)]);
        let va = Reply::Meta { code: MetaCode::Va, flags: b"", data: Some(b"v") };
        let en = Reply::Meta { code: MetaCode::En, flags: b"", data: None };
        let hd = Reply::Meta { code: MetaCode::Hd, flags: b"", data: None };
        let ns = Reply::Meta { code: MetaCode::Ns, flags: b"", data: None };
        assert_eq!(answer(Op::MetaGet, 1, &[va]), vec![read(1, 0)]);
        assert_eq!(answer(Op::MetaGet, 1, &[en]), vec![read(0, 1)]);
        assert_eq!(answer(Op::MetaSet, 0, &[hd]), vec![Some(Answer::Stored)]);
        assert_eq!(answer(Op::Set, 0, &[Reply::Stored]), vec![Some(Answer::Stored)]);
        let f = |k| Some(Answer::Failed(k));
        assert_eq!(answer(Op::MetaSet, 0, &[ns]), vec![f(ReplyFault::NotStored)]);
        assert_eq!(answer(Op::Set, 0, &[Reply::NotStored]), vec![f(ReplyFault::NotStored)]);
        assert_eq!(answer(Op::Set, 0, &[Reply::ServerError(b"oom")]), vec![f(ReplyFault::ServerError)]);
        assert_eq!(answer(Op::Get, 1, &[Reply::ClientError(b"x")]), vec![f(ReplyFault::ClientError)]);
        assert_eq!(answer(Op::MetaGet, 1, &[Reply::Error]), vec![f(ReplyFault::Error)]);
        assert_eq!(answer(Op::Get, 1, &[Reply::Stored]), vec![f(ReplyFault::Unexpected)]);
        assert_eq!(answer(Op::Set, 0, &[value(), Reply::End]), vec![None, f(ReplyFault::Unexpected)]);
        assert_eq!(answer(Op::Get, 1, &[value(), value(), Reply::End]), vec![None, None, f(ReplyFault::Unexpected)]);
    }
}
