//! What a connection counts: answers by kind, errors by kind, and latency
//! histograms.

use crate::error::BenchError;
use crate::mix::Op;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// Largest latency the histograms hold (larger ones saturate), in nanoseconds.
pub(crate) const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Failures by kind. Reply errors count requests; `connect`, `disconnected`
/// and `protocol` count connections; `timeout` counts requests still
/// unanswered (or, in the open loop, not even sent) when the run gave up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// `ERROR` replies (the server did not know the command).
    pub error: u64,
    /// `CLIENT_ERROR …` replies.
    pub client_error: u64,
    /// `SERVER_ERROR …` replies (out of memory, backend down behind a proxy, …).
    pub server_error: u64,
    /// `NOT_STORED` / `NS` to a set.
    pub not_stored: u64,
    /// Well-formed replies that do not answer the request sent.
    pub unexpected_reply: u64,
    /// Connections that could not be established.
    pub connect: u64,
    /// Connections closed or reset by the peer during the run.
    pub disconnected: u64,
    /// Connections dropped because the reply stream was not memcached's protocol.
    pub protocol: u64,
    /// Measured requests unanswered `timeout` after the end of the window.
    pub timeout: u64,
}

impl ErrorCounts {
    /// The sum of every kind.
    pub fn total(&self) -> u64 {
        let ErrorCounts {
            error,
            client_error,
            server_error,
            not_stored,
            unexpected_reply,
            connect,
            disconnected,
            protocol,
            timeout,
        } = *self;
        error
            + client_error
            + server_error
            + not_stored
            + unexpected_reply
            + connect
            + disconnected
            + protocol
            + timeout
    }

    pub(crate) fn add(&mut self, o: &ErrorCounts) {
        self.error += o.error;
        self.client_error += o.client_error;
        self.server_error += o.server_error;
        self.not_stored += o.not_stored;
        self.unexpected_reply += o.unexpected_reply;
        self.connect += o.connect;
        self.disconnected += o.disconnected;
        self.protocol += o.protocol;
        self.timeout += o.timeout;
    }

    /// The non-zero kinds as `name n` pairs, for the text report.
    pub(crate) fn nonzero(&self) -> Vec<(&'static str, u64)> {
        let all = [
            ("error", self.error),
            ("client_error", self.client_error),
            ("server_error", self.server_error),
            ("not_stored", self.not_stored),
            ("unexpected_reply", self.unexpected_reply),
            ("connect", self.connect),
            ("disconnected", self.disconnected),
            ("protocol", self.protocol),
            ("timeout", self.timeout),
        ];
        all.into_iter().filter(|&(_, n)| n > 0).collect()
    }
}

/// A reply that is an error, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyFault {
    Error,
    ClientError,
    ServerError,
    NotStored,
    Unexpected,
}

/// How one request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A read: how many of its keys came back, and how many did not.
    Read { hits: u32, misses: u32 },
    /// A write that was stored.
    Stored,
    /// An error reply.
    Failed(ReplyFault),
}

/// Counters of one connection; merged into the report at the end.
#[derive(Debug, Clone)]
pub(crate) struct ConnStats {
    /// Answered reads (`get`, `mg`) and writes (`set`, `ms`).
    pub(crate) gets: u64,
    pub(crate) sets: u64,
    /// Keys found and not found by the reads.
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) errors: ErrorCounts,
    /// Per-request latency, nanoseconds: from the batch's write (closed loop)
    /// or the scheduled send time (open loop) to the reply's arrival.
    pub(crate) latency: Histogram<u64>,
    /// Open loop: how late each request was written after its scheduled time
    /// (waiting for a free pipeline slot, or a busy generator), nanoseconds.
    pub(crate) send_lag: Histogram<u64>,
    /// Arrival of the last answer recorded.
    pub(crate) last_answer: Option<Instant>,
}

impl ConnStats {
    pub(crate) fn new() -> Result<Self, BenchError> {
        let hist = |digits| {
            Histogram::new_with_bounds(1, MAX_LATENCY_NS, digits).map_err(|e| BenchError::Histogram(e.to_string()))
        };
        Ok(ConnStats {
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            errors: ErrorCounts::default(),
            latency: hist(3)?,
            // Two digits are plenty to tell "on time" from "late", at a tenth of the memory.
            send_lag: hist(2)?,
            last_answer: None,
        })
    }

    /// Records one measured answer.
    pub(crate) fn count(&mut self, op: Op, answer: Answer, latency: Duration, lag: Option<Duration>, at: Instant) {
        self.last_answer = Some(self.last_answer.map_or(at, |t| t.max(at)));
        match answer {
            Answer::Failed(fault) => {
                // Errors are not latency samples: a fast refusal is not service.
                let e = &mut self.errors;
                *match fault {
                    ReplyFault::Error => &mut e.error,
                    ReplyFault::ClientError => &mut e.client_error,
                    ReplyFault::ServerError => &mut e.server_error,
                    ReplyFault::NotStored => &mut e.not_stored,
                    ReplyFault::Unexpected => &mut e.unexpected_reply,
                } += 1;
                return;
            }
            Answer::Read { hits, misses } => {
                self.hits += u64::from(hits);
                self.misses += u64::from(misses);
            }
            Answer::Stored => {}
        }
        if op.is_read() {
            self.gets += 1;
        } else {
            self.sets += 1;
        }
        self.latency.saturating_record(nanos(latency));
        if let Some(lag) = lag {
            self.send_lag.saturating_record(nanos(lag));
        }
    }
}

/// Nanoseconds within the histograms' range (0 is recorded as 1 ns).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_kind_not_timed() {
        let mut s = ConnStats::new().unwrap();
        let now = Instant::now();
        let us = Duration::from_micros;
        s.count(Op::Get, Answer::Read { hits: 2, misses: 1 }, us(10), None, now);
        s.count(Op::Set, Answer::Failed(ReplyFault::ServerError), us(1), None, now);
        s.count(Op::MetaSet, Answer::Failed(ReplyFault::NotStored), us(1), None, now);
        s.count(Op::MetaGet, Answer::Read { hits: 0, misses: 1 }, Duration::ZERO, Some(us(3)), now);
        s.count(Op::MetaSet, Answer::Stored, us(5), Some(us(1)), now);
        assert_eq!((s.gets, s.sets, s.hits, s.misses), (2, 1, 2, 2));
        assert_eq!((s.errors.server_error, s.errors.not_stored, s.errors.total()), (1, 1, 2));
        assert_eq!((s.latency.len(), s.send_lag.len()), (3, 2));
        assert_eq!(s.errors.nonzero(), vec![("server_error", 1), ("not_stored", 1)]);
    }
}
