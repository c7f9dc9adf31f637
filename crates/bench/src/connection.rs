//! One load-generating connection: its socket, buffers, random generator and
//! counters, and the prefill and measuring loops.
//!
//! Deliberately not built on `memshard-client`: a generic client pays for a
//! writer task, a reader task, channels and an allocation per reply, which
//! would make the generator compete with the server for the CPU. Here one task
//! owns the raw socket and does batch-write / read-until-answered with buffers
//! that are reused for the whole run.

use crate::workload::{Op, Workload};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use memshard_proto::{Reply, ReplyError};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest latency the histograms hold (larger ones saturate), in nanoseconds.
pub(crate) const MAX_LATENCY_NS: u64 = 60_000_000_000;

const READ_CHUNK: usize = 64 * 1024;

/// Sets per prefill batch.
const PREFILL_BATCH: usize = 64;

/// Counters of one connection; merged into the report at the end.
#[derive(Debug, Clone)]
pub(crate) struct ConnStats {
    pub(crate) gets: u64,
    pub(crate) sets: u64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) errors: u64,
    pub(crate) lost: u64,
    /// Per-request latency from batch write to reply, nanoseconds.
    pub(crate) latency: Histogram<u64>,
}

impl ConnStats {
    pub(crate) fn new() -> Result<Self, hdrhistogram::CreationError> {
        Ok(ConnStats {
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            lost: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)?,
        })
    }

    /// A connection ended early: counted as one error and one lost connection.
    pub(crate) fn connection_lost(&mut self) {
        self.errors += 1;
        self.lost += 1;
    }
}

/// Counters read by the progress reporter while the run goes on.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) ops: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// The phases of the run, as instants every connection compares against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Batches written from here on are recorded.
    pub(crate) measure_from: Instant,
    /// No batch is written from here on.
    pub(crate) end: Instant,
}

/// How one request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
    Stored,
    Error,
}

/// A connection-ending failure.
#[derive(Debug)]
pub(crate) enum ConnError {
    Io(io::Error),
    Protocol(ReplyError),
    Timeout,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Protocol(e) => write!(f, "protocol: {e}"),
            ConnError::Timeout => f.write_str("timed out"),
        }
    }
}

pub(crate) struct BenchConn {
    stream: TcpStream,
    wbuf: Vec<u8>,
    rbuf: BytesMut,
    rng: SmallRng,
    /// The operations of the batch in flight, in order.
    batch: Vec<Op>,
    /// When the last socket read returned: the arrival time of every reply
    /// decoded from it (one clock read per read, not per reply).
    arrived: Instant,
}

impl BenchConn {
    pub(crate) async fn connect(addr: &str, timeout: Duration, seed: u64, pipeline: usize) -> io::Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(BenchConn {
            stream,
            wbuf: Vec::with_capacity(READ_CHUNK),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            rng: SmallRng::seed_from_u64(seed),
            batch: Vec::with_capacity(pipeline.max(PREFILL_BATCH)),
            arrived: Instant::now(),
        })
    }

    /// Sets every key in `keys` once, in pipelined batches. Returns
    /// `(stored, not stored or error replies)`; a connection failure ends it.
    pub(crate) async fn prefill(
        &mut self,
        wl: &Workload,
        keys: impl Iterator<Item = usize>,
        timeout: Duration,
    ) -> Result<(u64, u64), ConnError> {
        let mut keys = keys.peekable();
        let (mut stored, mut failed) = (0, 0);
        while keys.peek().is_some() {
            self.wbuf.clear();
            self.batch.clear();
            for k in keys.by_ref().take(PREFILL_BATCH) {
                wl.encode(Op::Set, k, &mut self.wbuf);
                self.batch.push(Op::Set);
            }
            let exchange = async {
                self.stream.write_all(&self.wbuf).await.map_err(ConnError::Io)?;
                for _ in 0..self.batch.len() {
                    let (outcome, _) = self.answer(Op::Set).await?;
                    if outcome == Outcome::Stored { stored += 1 } else { failed += 1 }
                }
                Ok::<_, ConnError>(())
            };
            tokio::time::timeout(timeout, exchange).await.map_err(|_| ConnError::Timeout)??;
        }
        Ok((stored, failed))
    }

    /// The closed loop: batches of `pipeline` random requests until
    /// `window.end`, recording those written after `window.measure_from`.
    /// Returns when the window closes or the connection fails (counted).
    pub(crate) async fn measure(
        &mut self,
        wl: &Workload,
        pipeline: usize,
        window: Window,
        stats: &mut ConnStats,
        live: &Live,
    ) -> Result<(), ConnError> {
        loop {
            let sent = Instant::now();
            if sent >= window.end {
                return Ok(());
            }
            let record = sent >= window.measure_from;
            self.wbuf.clear();
            self.batch.clear();
            for _ in 0..pipeline {
                let (op, key) = wl.pick(&mut self.rng);
                wl.encode(op, key, &mut self.wbuf);
                self.batch.push(op);
            }
            self.stream.write_all(&self.wbuf).await.map_err(ConnError::Io)?;
            // Replies already buffered (none, with a well-behaved server) count
            // as arriving at the send.
            self.arrived = sent;
            let mut errors = 0;
            for i in 0..self.batch.len() {
                let op = self.batch[i];
                let (outcome, at) = self.answer(op).await?;
                if outcome == Outcome::Error {
                    errors += 1;
                }
                if record {
                    stats.count(op, outcome, at.saturating_duration_since(sent));
                }
            }
            live.ops.fetch_add(pipeline as u64, Ordering::Relaxed);
            if errors > 0 {
                live.errors.fetch_add(errors, Ordering::Relaxed);
            }
        }
    }

    /// Reads the complete answer to one request: its outcome, and when the
    /// bytes that completed it arrived (replies that arrive in one read share
    /// the instant).
    async fn answer(&mut self, op: Op) -> Result<(Outcome, Instant), ConnError> {
        let mut hit = false;
        loop {
            let step = match Reply::decode(&self.rbuf) {
                Ok(Some((reply, used))) => {
                    let step = classify(op, &reply, &mut hit);
                    self.rbuf.advance(used);
                    step
                }
                Ok(None) => {
                    if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                        self.rbuf.reserve(READ_CHUNK);
                    }
                    match self.stream.read_buf(&mut self.rbuf).await {
                        Ok(0) => return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into())),
                        Ok(_) => self.arrived = Instant::now(),
                        Err(e) => return Err(ConnError::Io(e)),
                    }
                    None
                }
                Err(e) => return Err(ConnError::Protocol(e)),
            };
            if let Some(outcome) = step {
                return Ok((outcome, self.arrived));
            }
        }
    }
}

/// Maps one reply unit to the request's outcome, or `None` when the answer
/// continues (a `VALUE` before `END`).
fn classify(op: Op, reply: &Reply<'_>, hit: &mut bool) -> Option<Outcome> {
    if !reply.is_terminal() {
        *hit |= matches!(reply, Reply::Value { .. });
        return None;
    }
    Some(match (op, reply) {
        (Op::Get, Reply::End) if *hit => Outcome::Hit,
        (Op::Get, Reply::End) => Outcome::Miss,
        (Op::Set, Reply::Stored) => Outcome::Stored,
        // Error lines, and well-formed replies that do not answer the request.
        _ => Outcome::Error,
    })
}

impl ConnStats {
    fn count(&mut self, op: Op, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Error => {
                // Errors are not latency samples: a fast refusal is not service.
                self.errors += 1;
                return;
            }
            Outcome::Hit => self.hits += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::Stored => {}
        }
        match op {
            Op::Get => self.gets += 1,
            Op::Set => self.sets += 1,
        }
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let mut hit = false;
        let value = Reply::Value { key: b"k", flags: 0, cas: None, data: b"v" };
        assert_eq!(classify(Op::Get, &value, &mut hit), None);
        assert_eq!(classify(Op::Get, &Reply::End, &mut hit), Some(Outcome::Hit));
        let mut hit = false;
        assert_eq!(classify(Op::Get, &Reply::End, &mut hit), Some(Outcome::Miss));
        assert_eq!(classify(Op::Set, &Reply::Stored, &mut hit), Some(Outcome::Stored));
        assert_eq!(classify(Op::Set, &Reply::ServerError(b"oom"), &mut hit), Some(Outcome::Error));
        assert_eq!(classify(Op::Get, &Reply::Stored, &mut hit), Some(Outcome::Error));
    }

    #[test]
    fn errors_are_counted_not_timed() {
        let mut s = ConnStats::new().unwrap();
        s.count(Op::Get, Outcome::Hit, Duration::from_micros(10));
        s.count(Op::Set, Outcome::Error, Duration::from_micros(1));
        s.count(Op::Get, Outcome::Miss, Duration::ZERO);
        assert_eq!((s.gets, s.sets, s.hits, s.misses, s.errors), (2, 0, 1, 1, 1));
        assert_eq!(s.latency.len(), 2);
    }
}
