//! Where a backend's answers go, and how they are cut out of its byte
//! stream.
//!
//! Answers are forwarded as the backend wrote them: a backend connection
//! only finds where each reply unit ends (the data block of a `VALUE` or
//! `VA` included) and hands the bytes of a whole answer to its [`Sink`],
//! which copies them into the client's output. Nothing is re-encoded, and no
//! reply unit becomes an object of its own.
//!
//! Single-key `get`s (and `gets`) that follow each other on one backend
//! connection travel as one multi-key `get` (see `upstream`); a [`Batch`]
//! then splits that answer back: memcached answers the keys of a multi-get
//! in the order asked and leaves misses out, so each `VALUE` belongs to the
//! first get still waiting whose key it names, and the gets skipped on the
//! way missed.

use crate::control::pool::Pool;
use crate::control::stats;
use crate::data::backend::quiet::suppressed;
use crate::data::slots::merge::Merge;
use crate::data::slots::order::Queue;
use memshard_proto::{Reply, ReplyError};
use std::ops::Range;
use std::rc::Rc;

/// The end of a get's answer, after its value (or alone for a miss).
pub(crate) const END: &[u8] = b"END\r\n";

/// Who gets one backend answer.
pub(crate) enum Sink {
    /// A client's answer slot.
    Client(Queue, u64),
    /// A quiet meta command's slot (the command word): the answers memcached
    /// would not have sent become nothing.
    Quiet(Queue, u64, &'static [u8]),
    /// One fragment of an answer assembled from several servers.
    Part(Rc<Merge>, usize),
    /// One step of a request that decides what to do next from the answer
    /// (a replicated pool's reads and writes), with its tag.
    Step(Rc<dyn Step>, usize),
}

/// A request in several steps: told each answer (or failure) it waits for.
///
/// Called while the backend connection that answered is busy handing out
/// answers: a step that sends more requests defers them (see
/// `replica`), never queuing on a connection from inside this call.
pub(crate) trait Step {
    /// The answer to the request tagged `tag`: its bytes (in parts, to be
    /// read as one), or the proxy's failure.
    fn answered(self: Rc<Self>, tag: usize, got: Got<'_>);
    /// The client the step answers, if any: one of its gets waiting in an
    /// open get line goes before its later requests.
    fn client(&self) -> Option<&Queue>;
}

/// What a [`Step`] is told.
pub(crate) enum Got<'a> {
    /// The server's answer, as consecutive parts.
    Answer(&'a [&'a [u8]]),
    /// No answer: the connection failed, timed out or refused.
    Failed(&'a Failure),
}

impl Sink {
    /// Hands over a whole answer.
    pub(crate) fn deliver(&self, answer: &[u8]) {
        self.deliver_parts(&[answer]);
    }

    /// Hands over a whole answer made of consecutive `parts`.
    pub(crate) fn deliver_parts(&self, parts: &[&[u8]]) {
        match self {
            Sink::Client(q, seq) => q.fill(*seq, parts),
            Sink::Quiet(q, seq, cmd) => {
                let answer = parts.concat();
                let shown: &[u8] = if suppressed(cmd, &answer) { &[] } else { &answer };
                q.fill(*seq, &[shown]);
            }
            Sink::Part(m, i) => m.part(*i, Ok(&parts.concat())),
            Sink::Step(s, tag) => s.clone().answered(*tag, Got::Answer(parts)),
        }
    }

    /// The request failed: the client gets `SERVER_ERROR <reason>`.
    pub(crate) fn fail(&self, f: &Failure, pool: &Pool) {
        match self {
            Sink::Client(q, seq) | Sink::Quiet(q, seq, _) => {
                stats::add(&pool.stats.forward_error, 1);
                q.fill(*seq, &[&f.line]);
            }
            Sink::Part(m, i) => m.part(*i, Err(&f.line)),
            Sink::Step(s, tag) => s.clone().answered(*tag, Got::Failed(f)),
        }
    }

    /// The client this answer is for, if it is one's.
    pub(crate) fn client(&self) -> Option<&Queue> {
        match self {
            Sink::Client(q, _) | Sink::Quiet(q, _, _) => Some(q),
            Sink::Part(..) => None,
            Sink::Step(s, _) => s.client(),
        }
    }
}

/// Why a backend connection broke, said once for every request on it.
pub(crate) struct Failure {
    /// `SERVER_ERROR <reason>\r\n`, twemproxy's words.
    pub(crate) line: Vec<u8>,
    /// Which server counter it bumps.
    pub(crate) kind: Fault,
}

/// The kinds of backend failure the stats tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No answer within `timeout` (or no connection within it).
    Timeout,
    /// The server closed the connection.
    Eof,
    /// Connecting, reading or writing failed, or the server spoke garbage.
    Error,
}

impl Failure {
    pub(crate) fn timeout() -> Failure {
        Failure::new(Fault::Timeout, "Connection timed out")
    }

    /// The server said goodbye (see `memshard_proto::msg::GOODBYE`): what
    /// it did not answer fails. (Not the goodbye's own words: a proxy in
    /// front of this one must not take the answer for a goodbye.)
    pub(crate) fn goodbye() -> Failure {
        Failure::new(Fault::Eof, "server restarting")
    }

    pub(crate) fn eof() -> Failure {
        Failure::new(Fault::Eof, "Connection closed by server")
    }

    pub(crate) fn protocol(e: &ReplyError) -> Failure {
        tracing::debug!(error = %e, "backend sent an invalid reply");
        Failure::new(Fault::Error, "Invalid reply from server")
    }

    /// An I/O error in twemproxy's words (strerror, without std's
    /// ` (os error N)`: a missing socket is `No such file or directory`).
    pub(crate) fn io(e: &std::io::Error) -> Failure {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => return Failure::new(Fault::Error, "Connection refused"),
            std::io::ErrorKind::ConnectionReset => return Failure::new(Fault::Error, "Connection reset by peer"),
            _ => {}
        }
        let text = e.to_string();
        let reason = match (e.raw_os_error(), text.rfind(" (os error ")) {
            (Some(_), Some(at)) => &text[..at],
            _ => &text,
        };
        Failure::new(Fault::Error, reason)
    }

    fn new(kind: Fault, reason: &str) -> Failure {
        let mut line = Vec::with_capacity(reason.len() + 15);
        line.extend_from_slice(b"SERVER_ERROR ");
        line.extend_from_slice(reason.as_bytes());
        line.extend_from_slice(b"\r\n");
        Failure { line, kind }
    }
}

/// One reply unit at the front of a backend's buffer.
pub(crate) struct Unit {
    /// Bytes it takes, data block included.
    pub(crate) len: usize,
    pub(crate) kind: UnitKind,
}

/// What a reply unit means for the answer it is part of.
pub(crate) enum UnitKind {
    /// `VALUE`: the key's place in the unit; more units follow.
    Value(Range<usize>),
    /// `END`.
    End,
    /// Any other unit that ends an answer (status lines, errors, meta).
    Last,
    /// Any other unit that does not (`STAT`).
    More,
}

/// Finds the reply unit at the start of `buf`: `Ok(None)` until it is all
/// there.
pub(crate) fn unit(buf: &[u8]) -> Result<Option<Unit>, ReplyError> {
    // The two answers of the usual traffic, recognised without a parse.
    if buf.starts_with(END) {
        return Ok(Some(Unit { len: END.len(), kind: UnitKind::End }));
    }
    if buf.starts_with(b"STORED\r\n") {
        return Ok(Some(Unit { len: 8, kind: UnitKind::Last }));
    }
    let Some((reply, len)) = Reply::decode(buf)? else { return Ok(None) };
    let kind = match reply {
        Reply::Value { key, .. } => {
            let at = key.as_ptr() as usize - buf.as_ptr() as usize;
            UnitKind::Value(at..at + key.len())
        }
        Reply::End => UnitKind::End,
        r if r.is_terminal() => UnitKind::Last,
        _ => UnitKind::More,
    };
    Ok(Some(Unit { len, kind }))
}

/// How a backend request's answer is taken apart.
pub(crate) enum Expect {
    /// Units up to the first that ends an answer, handed whole to the sink.
    Whole(Sink),
    /// A multi-key get made of single-key gets of several requests.
    Gets(Box<Batch>),
}

/// The single-key gets that travel as one multi-key get.
pub(crate) struct Batch {
    subs: Vec<Sub>,
    /// Every sub's key, back to back.
    keys: Vec<u8>,
    /// The first sub not answered yet.
    next: usize,
}

struct Sub {
    /// A client's slot, or a step.
    sink: Sink,
    key: Range<usize>,
    /// The client's request bytes (stats).
    len: u32,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch { subs: Vec::with_capacity(8), keys: Vec::with_capacity(128), next: 0 }
    }

    /// Adds the next get.
    pub(crate) fn push(&mut self, sink: Sink, key: &[u8], len: u32) {
        let start = self.keys.len();
        self.keys.extend_from_slice(key);
        self.subs.push(Sub { sink, key: start..self.keys.len(), len });
    }

    /// Whether one of `client`'s gets is in the batch.
    pub(crate) fn asks(&self, client: &Queue) -> bool {
        self.subs.iter().any(|s| s.sink.client().is_some_and(|q| Rc::ptr_eq(q, client)))
    }

    /// Gets in the batch.
    pub(crate) fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether `key` is asked for already: a key asked twice in one
    /// multi-get is looked up twice, and a write landing between the two
    /// lookups would make the answers impossible to tell apart.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.subs.iter().any(|s| s.key.len() == key.len() && &self.keys[s.key.clone()] == key)
    }

    /// Takes one unit of the batch's answer (counting what it answers in
    /// `answered`); `Ok(true)` once the batch's answer is complete.
    pub(crate) fn take(&mut self, buf: &[u8], u: &Unit, answered: &mut Tally) -> Result<bool, ReplyError> {
        let unit = &buf[..u.len];
        match &u.kind {
            UnitKind::Value(k) => {
                let key = &unit[k.clone()];
                // The gets before the one this value answers missed.
                let Some(hit) = self.subs[self.next..].iter().position(|s| &self.keys[s.key.clone()] == key) else {
                    let what = String::from_utf8_lossy(key).into_owned();
                    return Err(ReplyError::Malformed(format!("value for a key not asked: {what}")));
                };
                for _ in 0..hit {
                    self.answer(&[END], answered);
                }
                self.answer(&[unit, END], answered);
                Ok(false)
            }
            UnitKind::End => {
                while self.next < self.subs.len() {
                    self.answer(&[END], answered);
                }
                Ok(true)
            }
            // An error line answers every get still waiting.
            UnitKind::Last => {
                while self.next < self.subs.len() {
                    self.answer(&[unit], answered);
                }
                Ok(true)
            }
            UnitKind::More => Err(ReplyError::Malformed("a STAT line in a get's answer".into())),
        }
    }

    fn answer(&mut self, parts: &[&[u8]], answered: &mut Tally) {
        let s = &self.subs[self.next];
        answered.lookup(parts[0]);
        s.sink.deliver_parts(parts);
        answered.answer(parts.iter().map(|p| p.len()).sum(), s.len);
        self.next += 1;
    }

    /// The request bytes of the gets not answered yet (stats).
    pub(crate) fn waiting(&self) -> impl Iterator<Item = u32> + '_ {
        self.subs[self.next..].iter().map(|s| s.len)
    }

    /// The connection broke: every get still waiting gets the error.
    pub(crate) fn fail(&mut self, f: &Failure, pool: &Pool) {
        for s in self.subs.drain(self.next..) {
            s.sink.fail(f, pool);
        }
    }
}

/// Counter changes of one backend connection, gathered on its thread and
/// added to the shared atomics once per pass instead of once per request.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) request_bytes: u64,
    pub(crate) responses: u64,
    pub(crate) response_bytes: u64,
    pub(crate) in_queue: i64,
    pub(crate) in_queue_bytes: i64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    /// Answers per latency bucket, and their sum in µs.
    pub(crate) latency: [u32; stats::LATENCY_BUCKETS],
    pub(crate) latency_us: u64,
}

impl Tally {
    /// A request was queued; `waits` when an answer is expected.
    pub(crate) fn sent(&mut self, len: u32, waits: bool) {
        self.requests += 1;
        self.request_bytes += u64::from(len);
        if waits {
            self.in_queue += 1;
            self.in_queue_bytes += i64::from(len);
        }
    }

    /// A request of `len` bytes got an answer of `bytes`.
    pub(crate) fn answer(&mut self, bytes: usize, len: u32) {
        self.responses += 1;
        self.response_bytes += bytes as u64;
        self.done(len);
    }

    /// A get's answer (or a meta get's): a value is a hit, an empty answer
    /// a miss; any other answer is neither.
    pub(crate) fn lookup(&mut self, answer: &[u8]) {
        if answer.starts_with(b"VALUE ") || answer.starts_with(b"VA ") {
            self.hits += 1;
        } else if answer == END || answer == b"EN\r\n" {
            self.misses += 1;
        }
    }

    /// A get of `keys` keys answered whole with `values` values.
    pub(crate) fn got(&mut self, keys: u32, values: u32) {
        self.hits += u64::from(values);
        self.misses += u64::from(keys.saturating_sub(values));
    }

    /// A request was answered `waited` after it was queued.
    pub(crate) fn answered_after(&mut self, waited: std::time::Duration) {
        let us = waited.as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency[stats::latency_bucket(us)] += 1;
        self.latency_us += us;
    }

    /// A request of `len` bytes left the queue.
    pub(crate) fn done(&mut self, len: u32) {
        self.in_queue -= 1;
        self.in_queue_bytes -= i64::from(len);
    }

    /// Adds the gathered changes to `st` and starts over.
    pub(crate) fn flush(&mut self, st: &stats::ServerStats) {
        if self.requests != 0 {
            stats::add(&st.requests, self.requests);
            stats::add(&st.request_bytes, self.request_bytes);
        }
        if self.responses != 0 {
            stats::add(&st.responses, self.responses);
            stats::add(&st.response_bytes, self.response_bytes);
        }
        if self.in_queue != 0 || self.in_queue_bytes != 0 {
            stats::gauge(&st.in_queue, self.in_queue);
            stats::gauge(&st.in_queue_bytes, self.in_queue_bytes);
        }
        if self.hits != 0 {
            stats::add(&st.get_hits, self.hits);
        }
        if self.misses != 0 {
            stats::add(&st.get_misses, self.misses);
        }
        if self.latency_us != 0 || self.latency.iter().any(|n| *n != 0) {
            for (at, n) in self.latency.iter().enumerate().filter(|(_, n)| **n != 0) {
                stats::add(&st.latency.buckets[at], u64::from(*n));
            }
            stats::add(&st.latency.sum_us, self.latency_us);
        }
        *self = Tally::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::slots::order::ClientQueue;

    fn out(q: &Queue) -> String {
        let mut b = Vec::new();
        q.take_out(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    #[test]
    fn a_coalesced_answer_goes_back_to_each_get() {
        let (q1, q2) = (ClientQueue::new(), ClientQueue::new());
        let mut b = Batch::new();
        for (q, k) in [(&q1, "a"), (&q2, "b"), (&q1, "c"), (&q2, "d")] {
            let seq = q.reserve();
            b.push(Sink::Client(q.clone(), seq), k.as_bytes(), 7);
        }
        assert!(b.contains(b"c") && !b.contains(b"e"));
        let answer = b"VALUE b 0 1\r\nB\r\nVALUE c 5 2\r\nCC\r\nEND\r\n";
        let mut at = 0;
        let mut tally = Tally::default();
        loop {
            let u = unit(&answer[at..]).expect("valid").expect("complete");
            let done = b.take(&answer[at..], &u, &mut tally).expect("matches");
            at += u.len;
            if done {
                break;
            }
        }
        assert_eq!(at, answer.len());
        assert_eq!(out(&q1), "END\r\nVALUE c 5 2\r\nCC\r\nEND\r\n");
        assert_eq!(out(&q2), "VALUE b 0 1\r\nB\r\nEND\r\nEND\r\n");
        assert_eq!(tally.responses, 4);
    }

    #[test]
    fn units_are_found_whole() {
        assert!(unit(b"VALUE a 0 3\r\nab").expect("valid").is_none());
        let u = unit(b"VALUE a 0 3\r\nabc\r\nEND\r\n").expect("valid").expect("complete");
        assert_eq!(u.len, 18);
        assert!(matches!(u.kind, UnitKind::Value(ref k) if k.clone() == (6..7)));
        assert!(matches!(unit(b"SERVER_ERROR x\r\n").expect("valid").map(|u| u.kind), Some(UnitKind::Last)));
        assert!(unit(b"BOGUS\r\n").is_err());
        assert!(suppressed(b"mg", b"EN\r\n") && !suppressed(b"mg", b"HD\r\n") && suppressed(b"ma", b"VA 1\r\n1\r\n"));
    }
}
