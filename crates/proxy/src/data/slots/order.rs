//! One client's answers, put back in request order.
//!
//! Each request routed for a client takes the next sequence number. Answers
//! are filled in as they arrive — by the client's own task for local
//! answers, by backend connection tasks for forwarded ones — and go straight
//! into the client's output buffer when every earlier answer is there
//! already, so the usual case copies each answer once (from the backend's
//! read buffer to the client's write buffer). An answer that arrives ahead of
//! an earlier one waits in one shared side buffer, not an allocation of its
//! own.
//!
//! The client task is woken once, when the last outstanding answer of what
//! it routed arrives (or when enough output piled up to be worth a write),
//! not once per answer: a pipelined batch costs one wake-up and one write.
//!
//! Memory per client is bounded by a budget rather than by a request count
//! alone: a client may have answers outstanding while their expected size
//! (an estimate that jumps up to the largest answer seen and decays slowly)
//! plus the output already waiting stays under [`BUDGET`]. A client that
//! asks for large values and does not read its replies stops being served
//! once its budget is used, instead of making the proxy hold every answer.
//!
//! Everything lives on the client's worker thread: `Rc<RefCell<…>>`, no
//! locks.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Output worth writing before the rest of the batch is answered (a large
/// multi-get streams instead of piling up).
const FLUSH_AT: usize = 256 * 1024;

/// Bytes of answers one client may have coming or waiting to be written.
const BUDGET: usize = 4 << 20;

/// The answer size a new client is assumed to ask for until it has been
/// answered: large, so that a first pipeline of big values stays within the
/// budget; small answers bring the estimate down within a few dozen.
const FIRST_GUESS: usize = 256 << 10;

/// Shared handle to one client's answers.
pub(crate) type Queue = Rc<ClientQueue>;

/// A client's ordered answers (see the module docs).
pub(crate) struct ClientQueue {
    inner: RefCell<Inner>,
}

struct Inner {
    /// Answers ready to write, in request order.
    out: Vec<u8>,
    /// Answers not yet in `out`, in request order: `None` while awaited, or
    /// the range of `parked` holding an answer that came early.
    slots: VecDeque<Option<Range<usize>>>,
    /// Sequence number of `slots[0]`.
    head: u64,
    /// Answers that arrived before an earlier one; emptied whenever no slot
    /// is left.
    parked: Vec<u8>,
    /// The client task, while it waits for answers.
    waker: Option<Waker>,
    /// Expected bytes of one answer (see the module docs).
    guess: usize,
}

impl ClientQueue {
    /// A new, empty queue.
    pub(crate) fn new() -> Queue {
        let inner = Inner {
            out: Vec::new(),
            slots: VecDeque::new(),
            head: 0,
            parked: Vec::new(),
            waker: None,
            guess: FIRST_GUESS,
        };
        Rc::new(ClientQueue { inner: RefCell::new(inner) })
    }

    /// Answers routed but not yet in the output buffer.
    pub(crate) fn pending(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    /// Whether another request may be routed now: nothing is outstanding,
    /// or the answers outstanding and the output waiting fit the budget.
    pub(crate) fn has_room(&self) -> bool {
        let q = self.inner.borrow();
        q.slots.is_empty() || q.slots.len() * q.guess + q.out.len() + q.parked.len() < BUDGET
    }

    /// An answer known now (local replies, refusals): appended at once when
    /// nothing earlier is outstanding.
    pub(crate) fn ready(&self, bytes: &[u8]) {
        let mut q = self.inner.borrow_mut();
        if q.slots.is_empty() {
            q.out.extend_from_slice(bytes);
        } else {
            drop(q);
            let seq = self.reserve();
            self.fill(seq, &[bytes]);
        }
    }

    /// Takes the next sequence number for an answer that will come later.
    pub(crate) fn reserve(&self) -> u64 {
        let mut q = self.inner.borrow_mut();
        q.slots.push_back(None);
        q.head + q.slots.len() as u64 - 1
    }

    /// The answer of request `seq`, as the concatenation of `parts`. Filling
    /// a slot twice, or one that does not exist, is ignored.
    pub(crate) fn fill(&self, seq: u64, parts: &[&[u8]]) {
        let mut guard = self.inner.borrow_mut();
        let q = &mut *guard;
        let Some(at) = seq.checked_sub(q.head).map(|i| i as usize) else { return };
        if at >= q.slots.len() || q.slots[at].is_some() {
            return;
        }
        let size: usize = parts.iter().map(|p| p.len()).sum();
        q.guess = if size > q.guess { size } else { q.guess - (q.guess - size) / 16 };
        if at > 0 {
            let start = q.parked.len();
            for p in parts {
                q.parked.extend_from_slice(p);
            }
            q.slots[at] = Some(start..q.parked.len());
            return;
        }
        for p in parts {
            q.out.extend_from_slice(p);
        }
        q.slots.pop_front();
        q.head += 1;
        while let Some(Some(r)) = q.slots.front() {
            let r = r.clone();
            q.out.extend_from_slice(&q.parked[r]);
            q.slots.pop_front();
            q.head += 1;
        }
        if q.slots.is_empty() {
            q.parked.clear();
        }
        if q.slots.is_empty() || q.out.len() >= FLUSH_AT {
            if let Some(w) = q.waker.take() {
                w.wake();
            }
        }
    }

    /// Ready when every routed answer is in the output buffer (or enough
    /// output is waiting to be written).
    pub(crate) fn poll_answered(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.inner.borrow_mut();
        if q.slots.is_empty() || q.out.len() >= FLUSH_AT {
            return Poll::Ready(());
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Swaps the output buffer with `buf` (which must be empty), so the
    /// client task writes without holding the queue borrowed.
    pub(crate) fn take_out(&self, buf: &mut Vec<u8>) {
        std::mem::swap(&mut self.inner.borrow_mut().out, buf);
    }

    /// Gives an emptied write buffer back for reuse, unless it grew large.
    pub(crate) fn give_back(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut q = self.inner.borrow_mut();
        if q.out.is_empty() && buf.capacity() <= FLUSH_AT {
            q.out = buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(q: &ClientQueue) -> String {
        let mut b = Vec::new();
        q.take_out(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    #[test]
    fn answers_come_out_in_request_order() {
        let q = ClientQueue::new();
        q.ready(b"A");
        let (b, c, d) = (q.reserve(), q.reserve(), q.reserve());
        q.ready(b"E");
        q.fill(d, &[b"D"]);
        q.fill(c, &[b"C", b"c"]);
        assert_eq!(q.pending(), 4);
        assert_eq!(out(&q), "A");
        q.fill(b, &[b"B"]);
        q.fill(b, &[b"again"]);
        assert_eq!(q.pending(), 0);
        assert_eq!(out(&q), "BCcDE");
        let f = q.reserve();
        q.fill(f, &[b"F"]);
        assert_eq!(out(&q), "F");
    }

    #[test]
    fn the_budget_follows_the_answer_sizes() {
        let q = ClientQueue::new();
        // A new client gets a handful of requests until answers say more.
        let first = (0..).take_while(|_| q.has_room() && q.reserve() < 1000).count();
        assert!((8..=32).contains(&first), "{first}");
        let small = vec![b'x'; 100];
        for seq in 0..first as u64 {
            q.fill(seq, &[&small]);
        }
        for _ in 0..200 {
            let seq = q.reserve();
            q.fill(seq, &[&small]);
        }
        let mut b = Vec::new();
        q.take_out(&mut b);
        assert!((0..1000).all(|_| q.has_room() && q.reserve() < u64::MAX), "small answers: room for many");
        // One large answer brings the estimate straight up.
        let head = q.inner.borrow().head;
        q.fill(head, &[&vec![b'v'; 1 << 20]]);
        assert!(!q.has_room());
    }
}
