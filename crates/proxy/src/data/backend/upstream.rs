//! One pipelined backend connection of one worker thread: its queue.
//!
//! Client tasks queue requests on it synchronously: the request bytes are
//! appended to the connection's output buffer (forwarded as the client sent
//! them, except where the proxy must rewrite), and a waiter saying where the
//! answer goes joins the connection's FIFO — memcached answers in order, so
//! the FIFO is all the matching there is. The connection's own task (see
//! `link`) is woken once per batch: it runs after the client tasks that were
//! ready at the same time, so every request they queued leaves in one
//! `write`. It then reads answers, cuts them out of its read buffer and
//! copies each straight into its client's output (see `answer` and
//! `order`): one task per connection, no channel, no task per request, no
//! copy in between.
//!
//! Single-key `get`s (and `gets`) queued while a get line is open join that
//! line, so memcached answers N of them with one multi-key reply instead of
//! N replies. The line is placed in the output only when it is written (or
//! when it must go first, below), after requests other clients queued
//! meanwhile: those are unanswered and unsent, so nothing orders them
//! against these gets. A client's own later request that is not a get
//! closes the line first, and a key already in the line starts a new one,
//! so each backend sees every client's operations in the client's order.
//!
//! One deadline per connection rather than a timer per request: the task
//! sleeps until the deadline of the request at the front of the FIFO and
//! re-arms when it wakes early. A request unanswered after `timeout` breaks the connection: it
//! and every other request on it get `SERVER_ERROR Connection timed out`,
//! because a late answer is still owed and would be taken for the next
//! request's. Any I/O error, EOF or undecodable reply breaks it the same
//! way; a broken connection is never repaired, the next request opens a new
//! one (see `conns`).

use crate::control::pool::Pool;
use crate::control::servers::Server;
use crate::control::stats;
use crate::data::backend::answer::{Batch, Expect, Failure, Fault, Sink, Tally, UnitKind, unit};
use crate::data::slots::order::Queue;
use memshard_proto::GetCmd;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;
use tokio::time::Instant;

/// Most single-key gets in one coalesced line, and its longest length
/// (memcached reads longer get lines too; this bounds each answer).
const MAX_BATCH_KEYS: usize = 64;
const MAX_BATCH_LINE: usize = 4096;

/// One backend connection (see the module docs).
pub(crate) struct Upstream {
    st: RefCell<State>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) server: Arc<Server>,
    /// The pool's `timeout`: per request, and for connecting.
    /// (A reload that changes it updates it, see `conns`.)
    timeout: Cell<Duration>,
}

#[derive(Default)]
struct State {
    /// Requests not written yet.
    out: Vec<u8>,
    /// Requests written or queued whose answers are owed, oldest first.
    fifo: VecDeque<Waiter>,
    /// A get line that more single-key gets may join, not in `out` yet.
    open: Option<OpenGet>,
    /// The open line's bytes, without its `\r\n` (kept across lines).
    line: Vec<u8>,
    /// Bytes of the front answer found so far (an answer of several units
    /// stays in the read buffer until it is whole).
    scanned: usize,
    /// Values in the front answer found so far (a get's hits).
    values: u32,
    broken: bool,
    /// Dropped from the table: finish what is owed, then close.
    retired: bool,
    /// The connection task, once it serves the socket.
    task: Option<Waker>,
    /// The task was woken and has not run since.
    kicked: bool,
    tally: Tally,
    /// Requests placed in the output so far (a request's number is its
    /// place in the byte stream).
    queued: u64,
    /// Number of the last request answered: the server has executed every
    /// request up to it, noreply ones included.
    answered: u64,
    /// Requests taken so far, gets that joined a line included (the
    /// connection's task watches it to see whether waiting gathers more).
    taken: u64,
}

struct Waiter {
    expect: Expect,
    /// Its request's number (see `State::queued`).
    seq: u64,
    deadline: Instant,
    /// When it was queued (the latency histogram).
    since: Instant,
    /// Keys of a get answered whole (hits and misses); 0 for other requests.
    keys: u32,
    /// Request bytes (stats).
    len: u32,
}

struct OpenGet {
    cmd: GetCmd,
    /// Its answer's waiter, queued when the line is.
    waiter: Waiter,
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Upstream {
    /// The pool's `timeout` now.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout.get()
    }

    /// A reload changed the pool's `timeout`: requests queued from now on
    /// get the new one.
    pub(crate) fn set_timeout(&self, timeout: Duration) {
        self.timeout.set(timeout);
    }

    /// The queue of a new connection to `server` of `pool`; requests may be
    /// queued at once, before its socket task (`link::run`) has connected.
    pub(crate) fn new(pool: &Arc<Pool>, server: &Arc<Server>, timeout: Duration) -> Rc<Upstream> {
        Rc::new(Upstream {
            st: RefCell::default(),
            pool: pool.clone(),
            server: server.clone(),
            timeout: Cell::new(timeout),
        })
    }

    /// Whether the connection failed; a broken connection takes no requests.
    pub(crate) fn is_broken(&self) -> bool {
        self.st.borrow().broken
    }

    /// Takes no more requests: closes once everything owed is answered.
    pub(crate) fn retire(&self) {
        let mut st = self.st.borrow_mut();
        st.retired = true;
        kick(&mut st);
    }

    /// Queues the request `write` appends to the output; `sink` gets its
    /// answer (`None`: noreply, nothing comes back). Returns the request's
    /// number, for [`Upstream::has_executed`].
    /// `client` is whose request it is: one of its gets waiting in the open
    /// line must reach the server first.
    pub(crate) fn send(
        &self,
        client: &Queue,
        write: impl FnOnce(&mut Vec<u8>),
        sink: Option<Sink>,
        now: Instant,
    ) -> u64 {
        let mut guard = self.st.borrow_mut();
        let st = &mut *guard;
        if st.broken {
            drop(guard);
            if let Some(s) = sink {
                self.refuse(Expect::Whole(s));
            }
            return 0;
        }
        if st.open.as_ref().is_some_and(|o| asks(&o.waiter, client)) {
            close_line(st);
        }
        let before = st.out.len();
        write(&mut st.out);
        let len = len32(st.out.len() - before);
        st.tally.sent(len, sink.is_some());
        st.taken += 1;
        st.queued += 1;
        let seq = st.queued;
        if let Some(s) = sink {
            st.fifo.push_back(Waiter {
                expect: Expect::Whole(s),
                seq,
                deadline: now + self.timeout.get(),
                since: now,
                keys: 0,
                len,
            });
        }
        kick(st);
        seq
    }

    /// Whether the server has executed request `seq` of this connection (a
    /// later one was answered), or nothing can overtake it any more: the
    /// connection broke, or was retired because the server's name moved to a
    /// new address, where every later request goes.
    pub(crate) fn has_executed(&self, seq: u64) -> bool {
        let st = self.st.borrow();
        st.answered > seq || st.broken || st.retired
    }

    /// Queues a single-key get (or gets) of `len` request bytes whose
    /// answer goes to `sink` (a client's slot or a step), joining the open
    /// get line when it can.
    pub(crate) fn get(&self, cmd: GetCmd, key: &[u8], mut sink: Sink, len: u32, now: Instant) {
        let mut guard = self.st.borrow_mut();
        let st = &mut *guard;
        if st.broken {
            drop(guard);
            self.refuse(Expect::Whole(sink));
            return;
        }
        st.tally.sent(len, true);
        st.taken += 1;
        if let Some(open) = &mut st.open {
            if open.cmd == cmd && st.line.len() + key.len() < MAX_BATCH_LINE {
                match join(&st.line, open, key, sink, len) {
                    Ok(()) => {
                        st.line.push(b' ');
                        st.line.extend_from_slice(key);
                        return;
                    }
                    Err(s) => sink = s,
                }
            }
            close_line(st);
        }
        st.line.extend_from_slice(cmd.as_str().as_bytes());
        st.line.push(b' ');
        st.line.extend_from_slice(key);
        // Numbered when the line goes into the output.
        let waiter = Waiter {
            expect: Expect::Whole(sink),
            seq: 0,
            deadline: now + self.timeout.get(),
            since: now,
            keys: 1,
            len,
        };
        st.open = Some(OpenGet { cmd, waiter });
        kick(st);
    }

    /// A request for a connection that already broke.
    fn refuse(&self, expect: Expect) {
        self.st.borrow_mut().tally.sent(0, true);
        let now = Instant::now();
        self.fail_all(vec![Waiter { expect, seq: 0, deadline: now, since: now, keys: 0, len: 0 }], &Failure::eof());
    }

    /// Hands out every whole answer at the start of `buf`; returns the bytes
    /// used.
    pub(crate) fn dispatch(&self, buf: &[u8]) -> Result<usize, Failure> {
        let mut guard = self.st.borrow_mut();
        let st = &mut *guard;
        let mut pos = 0;
        let mut answered = false;
        let mut goodbye = false;
        let mut arrived: Option<Instant> = None;
        let res = loop {
            // Between answers, a restarting memshard server's last words.
            if st.scanned == 0 {
                match goodbye_line(&buf[pos..]) {
                    Some(true) => {
                        goodbye = true;
                        break Err(Failure::goodbye());
                    }
                    // Its start: wait for the rest before reading it as an answer.
                    None => break Ok(()),
                    Some(false) => {}
                }
            }
            let Some(front) = st.fifo.front_mut() else {
                if pos < buf.len() {
                    break Err(Failure::protocol(&memshard_proto::ReplyError::Malformed("unsolicited reply".into())));
                }
                break Ok(());
            };
            let rest = &buf[pos..];
            let done = match &mut front.expect {
                Expect::Whole(sink) => match scan(rest, &mut st.scanned, &mut st.values) {
                    Err(e) => break Err(Failure::protocol(&e)),
                    Ok(false) => break Ok(()),
                    Ok(true) => {
                        let answer = &rest[..st.scanned];
                        sink.deliver(answer);
                        match front.keys {
                            0 => st.tally.lookup(answer),
                            keys => st.tally.got(keys, std::mem::take(&mut st.values)),
                        }
                        st.values = 0;
                        st.tally.answer(answer.len(), front.len);
                        pos += st.scanned;
                        st.scanned = 0;
                        true
                    }
                },
                Expect::Gets(batch) => match unit(rest) {
                    Err(e) => break Err(Failure::protocol(&e)),
                    Ok(None) => break Ok(()),
                    Ok(Some(u)) => match batch.take(rest, &u, &mut st.tally) {
                        Err(e) => break Err(Failure::protocol(&e)),
                        Ok(done) => {
                            pos += u.len;
                            done
                        }
                    },
                },
            };
            answered = true;
            if done {
                if let Some(w) = st.fifo.pop_front() {
                    st.answered = w.seq;
                    // One clock read per pass: the answers in one read came together.
                    let now = *arrived.get_or_insert_with(Instant::now);
                    st.tally.answered_after(now.saturating_duration_since(w.since));
                }
            }
        };
        drop(guard);
        if answered {
            self.pool.record_success(&self.server);
        }
        if goodbye {
            self.pool.record_goodbye(&self.server);
        }
        res.map(|()| pos)
    }

    /// Breaks the connection: every request owed gets `f`.
    /// (A goodbye was recorded first, so these failures do not count.)
    pub(crate) fn break_with(&self, f: &Failure) {
        let fifo = {
            let mut st = self.st.borrow_mut();
            st.broken = true;
            close_line(&mut st);
            st.out = Vec::new();
            std::mem::take(&mut st.fifo)
        };
        tracing::debug!(pool = %self.pool.name, server = %self.server.addr, waiters = fifo.len(),
            reason = %String::from_utf8_lossy(&f.line).trim_end(), "backend connection broken");
        self.fail_all(fifo.into(), f);
    }

    fn fail_all(&self, waiters: Vec<Waiter>, f: &Failure) {
        let mut failed = 0;
        let mut tally = std::mem::take(&mut self.st.borrow_mut().tally);
        for mut w in waiters {
            match &mut w.expect {
                Expect::Whole(sink) => {
                    tally.done(w.len);
                    failed += 1;
                    sink.fail(f, &self.pool);
                }
                Expect::Gets(batch) => {
                    for len in batch.waiting() {
                        tally.done(len);
                        failed += 1;
                    }
                    batch.fail(f, &self.pool);
                }
            }
        }
        let st = &self.server.stats;
        tally.flush(st);
        let counter = match f.kind {
            Fault::Timeout => &st.server_timedout,
            Fault::Eof => &st.server_eof,
            Fault::Error => &st.server_err,
        };
        stats::add(counter, failed);
        for _ in 0..failed {
            self.pool.record_failure(&self.server);
        }
    }

    /// Gives every request queued while connecting its full `timeout` from
    /// now: the connect had its own bound.
    pub(crate) fn restamp(&self) {
        let deadline = Instant::now() + self.timeout.get();
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        for w in st.fifo.iter_mut().chain(st.open.as_mut().map(|o| &mut o.waiter)) {
            w.deadline = w.deadline.max(deadline);
        }
    }
}

/// What the connection's task sees of the queue.
impl Upstream {
    /// The task is running now, as `waker`: later requests wake it again.
    pub(crate) fn arm(&self, waker: &Waker) {
        let mut st = self.st.borrow_mut();
        st.kicked = false;
        if !st.task.as_ref().is_some_and(|w| w.will_wake(waker)) {
            st.task = Some(waker.clone());
        }
    }

    /// Requests taken so far (a count that only grows).
    pub(crate) fn taken(&self) -> u64 {
        self.st.borrow().taken
    }

    /// Whether anything waits to be written.
    pub(crate) fn has_output(&self) -> bool {
        let st = self.st.borrow();
        !st.out.is_empty() || st.open.is_some()
    }

    /// Runs `write` on everything queued to go out (the open get line
    /// included: nothing joins it any more once it is being written).
    pub(crate) fn with_output<R>(&self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut st = self.st.borrow_mut();
        close_line(&mut st);
        write(&mut st.out)
    }

    /// The request just sent is a get of `keys` keys answered whole: its
    /// answer counts as that many hits and misses.
    pub(crate) fn counts_keys(&self, keys: usize) {
        if let Some(w) = self.st.borrow_mut().fifo.back_mut() {
            w.keys = u32::try_from(keys).unwrap_or(u32::MAX);
        }
    }

    /// The oldest owed request's deadline.
    pub(crate) fn oldest_deadline(&self) -> Option<Instant> {
        self.st.borrow().fifo.front().map(|w| w.deadline)
    }

    /// Retired with nothing left to write or read: the task may end.
    pub(crate) fn finished(&self) -> bool {
        let st = self.st.borrow();
        st.retired && st.fifo.is_empty() && st.out.is_empty() && st.open.is_none()
    }

    /// Adds the counts gathered since the last call to the shared stats.
    pub(crate) fn flush_tally(&self) {
        self.st.borrow_mut().tally.flush(&self.server.stats);
    }
}

/// Wakes the connection task unless it is already due to run.
fn kick(st: &mut State) {
    if !st.kicked {
        st.kicked = true;
        if let Some(w) = &st.task {
            w.wake_by_ref();
        }
    }
}

/// Makes a single-key get part of the open line `line`, when it has room
/// and does not ask for `key` already; gives `sink` back when it cannot.
fn join(line: &[u8], open: &mut OpenGet, key: &[u8], sink: Sink, len: u32) -> Result<(), Sink> {
    let w = &mut open.waiter;
    match &mut w.expect {
        Expect::Gets(batch) => {
            if batch.len() >= MAX_BATCH_KEYS || batch.contains(key) {
                return Err(sink);
            }
            batch.push(sink, key, len);
            Ok(())
        }
        Expect::Whole(Sink::Client(..) | Sink::Step(..)) => {
            // The line is `<cmd> <key>` so far.
            let first = &line[open.cmd.as_str().len() + 1..];
            if first == key {
                return Err(sink);
            }
            let mut batch = Batch::new();
            let Expect::Whole(first_sink) = std::mem::replace(&mut w.expect, Expect::Gets(Box::new(Batch::new())))
            else {
                return Err(sink);
            };
            batch.push(first_sink, first, w.len);
            batch.push(sink, key, len);
            w.expect = Expect::Gets(Box::new(batch));
            Ok(())
        }
        Expect::Whole(_) => Err(sink),
    }
}

/// Whether one of `client`'s gets waits in the open line of `w`.
fn asks(w: &Waiter, client: &Queue) -> bool {
    match &w.expect {
        Expect::Gets(batch) => batch.asks(client),
        Expect::Whole(sink) => sink.client().is_some_and(|q| Rc::ptr_eq(q, client)),
    }
}

/// Puts the open get line in the output, after every request queued so
/// far: the gets in it were queued earlier than some of those, but by other
/// clients, and nothing answered yet orders a client's requests against
/// another's. A client's own later request always closes the line first.
fn close_line(st: &mut State) {
    if let Some(mut open) = st.open.take() {
        st.out.extend_from_slice(&st.line);
        st.out.extend_from_slice(b"\r\n");
        st.line.clear();
        st.queued += 1;
        open.waiter.seq = st.queued;
        st.fifo.push_back(open.waiter);
    }
}

/// Finds the units of the answer at the start of `buf`, from `scanned` on:
/// `Ok(true)` once its last unit is there (`scanned` is then its length).
fn scan(buf: &[u8], scanned: &mut usize, values: &mut u32) -> Result<bool, memshard_proto::ReplyError> {
    while let Some(u) = unit(&buf[*scanned..])? {
        *scanned += u.len;
        if matches!(u.kind, UnitKind::Value(_)) {
            *values += 1;
        }
        if matches!(u.kind, UnitKind::End | UnitKind::Last) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `buf` starts with a memshard server's goodbye line: `None` while
/// it holds only a start of it (no real answer is a start of it but itself).
fn goodbye_line(buf: &[u8]) -> Option<bool> {
    const LINE: &[u8] = b"SERVER_ERROR restarting\r\n";
    debug_assert_eq!(&LINE[..LINE.len() - 2], memshard_proto::msg::GOODBYE.as_bytes());
    if buf.is_empty() {
        Some(false)
    } else if buf.len() < LINE.len() {
        if LINE.starts_with(buf) { None } else { Some(false) }
    } else {
        Some(buf.starts_with(LINE))
    }
}

#[cfg(test)]
mod goodbye_tests {
    use super::goodbye_line;

    #[test]
    fn the_goodbye_is_told_from_answers_and_waited_for_when_cut() {
        assert_eq!(goodbye_line(b"SERVER_ERROR restarting\r\n"), Some(true));
        assert_eq!(goodbye_line(b"SERVER_ERROR restarting\r\nEND\r\n"), Some(true));
        for cut in 1..25 {
            assert_eq!(goodbye_line(&b"SERVER_ERROR restarting\r\n"[..cut]), None, "{cut} bytes");
        }
        for answer in
            [&b""[..], b"END\r\n", b"SERVER_ERROR out of memory\r\n", b"SERVER_ERROR restarting now\r\n", b"S"]
        {
            let want = if answer == b"S" { None } else { Some(false) };
            assert_eq!(goodbye_line(answer), want, "{:?}", String::from_utf8_lossy(answer));
        }
    }
}
