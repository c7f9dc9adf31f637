//! Requests that run on one owner at a time: conditional writes, meta gets
//! and touching reads.
//!
//! The request goes to the first live owner. A failure there ejects it when
//! the request writes (it may have run) and passes the request to the next
//! owner; for reads ([`Kind::Read`], [`Kind::Touch`]) so does a miss. What
//! the owner that answered then holds is copied to the others: to the
//! owners before it that missed, as a fill, after a read; to every other
//! live owner, as a sync, after a write that succeeded or a touching read
//! that hit — and only then does the client hear back.

use super::copy::{self, Mode};
use super::{Ctx, Key, Owners, Slot, failed_over, is_error, later};
use crate::control::stats;
use crate::data::backend::answer::{Got, Sink, Step};
use crate::data::slots::order::Queue;
use memshard_proto::{MetaCode, Reply};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use tokio::time::Instant;

/// What the request does to the item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Reads it (mg without `T`/`N`): the next owner on a miss.
    Read,
    /// Reads and touches it (gat, mg with `T` or `N`): the next owner on a
    /// miss; a hit is synced to the other owners.
    Touch,
    /// Changes it depending on what the owner holds: a success is synced.
    Write,
}

/// One request walking its owners.
struct Chain {
    ctx: Rc<Ctx>,
    slot: Slot,
    owners: Owners,
    request: Vec<u8>,
    key: Key,
    kind: Kind,
    /// The owner asked now (index into `owners`).
    at: Cell<usize>,
    /// Owners that answered a miss, for the fill.
    missed: RefCell<Owners>,
}

/// Runs `request` (for `key`) on `owners` in turn; the answer goes to `slot`.
pub(super) fn run(ctx: &Rc<Ctx>, slot: Slot, owners: Owners, request: Vec<u8>, key: &[u8], kind: Kind, now: Instant) {
    if owners.is_empty() {
        slot.answer(&ctx.queue, b"SERVER_ERROR no server owns the key\r\n");
        return;
    }
    let chain = Rc::new(Chain {
        ctx: ctx.clone(),
        slot,
        owners,
        request,
        key: key.into(),
        kind,
        at: Cell::new(0),
        missed: RefCell::default(),
    });
    chain.ask(now);
}

/// What an owner's answer means for the chain.
#[derive(PartialEq, Eq)]
enum Outcome {
    /// A hit, or a write that took: the item there is the one to keep.
    Took,
    /// A read's miss.
    Missed,
    /// Anything else (not stored, exists, not found, an error line): the
    /// client's answer as it is.
    Final,
}

fn outcome(kind: Kind, answer: &[u8]) -> Outcome {
    if is_error(answer) {
        return Outcome::Final;
    }
    let Ok(Some((reply, _))) = Reply::decode(answer) else { return Outcome::Final };
    match (kind, reply) {
        (Kind::Read | Kind::Touch, Reply::End | Reply::Meta { code: MetaCode::En, .. }) => Outcome::Missed,
        (_, Reply::Value { .. } | Reply::Stored | Reply::Deleted | Reply::Touched | Reply::Number(_)) => Outcome::Took,
        (_, Reply::Meta { code: MetaCode::Hd | MetaCode::Va, .. }) => Outcome::Took,
        _ => Outcome::Final,
    }
}

impl Chain {
    /// Sends the request to the current owner.
    fn ask(self: &Rc<Self>, now: Instant) {
        let owner = self.owners[self.at.get()];
        let sink = Sink::Step(self.clone(), self.at.get());
        self.ctx.up(owner).send(&self.ctx.queue, |out| out.extend_from_slice(&self.request), Some(sink), now);
    }

    /// The next owner, if any, from a task of its own; else `last` answers.
    /// Not when the client wrote the key since: the next owner would run
    /// the request after that write (see `Reads::wrote_after`).
    fn next_or(self: Rc<Self>, last: &[u8], failure: bool) {
        let later_write = self.ctx.reads.wrote_after(self.slot.seq(), &self.key);
        if self.at.get() + 1 < self.owners.len() && !later_write {
            self.at.set(self.at.get() + 1);
            later(move || self.ask(Instant::now()));
            return;
        }
        if failure {
            stats::add(&self.ctx.pool().stats.forward_error, 1);
        }
        self.slot.answer(&self.ctx.queue, last);
    }
}

impl Step for Chain {
    fn answered(self: Rc<Self>, tag: usize, got: Got<'_>) {
        if tag != self.at.get() {
            return;
        }
        let owner = self.owners[tag];
        let answer = match got {
            Got::Answer(parts) => parts.concat(),
            Got::Failed(f) => {
                // A write may have run there before the failure: the owner
                // must not serve what it then holds.
                if self.kind != Kind::Read {
                    self.ctx.pool().eject_stale(self.ctx.server(owner));
                }
                return self.next_or(&f.line.clone(), true);
            }
        };
        match outcome(self.kind, &answer) {
            Outcome::Missed => {
                self.missed.borrow_mut().push(owner);
                self.next_or(&answer, false)
            }
            Outcome::Final => self.slot.answer(&self.ctx.queue, &answer),
            Outcome::Took => {
                if tag > 0 {
                    failed_over(&self.ctx);
                }
                let (mode, targets) = match self.kind {
                    Kind::Read => (Mode::Fill, std::mem::take(&mut *self.missed.borrow_mut())),
                    Kind::Touch | Kind::Write => {
                        let others = self.owners.iter().copied().filter(|&o| o != owner && self.ctx.live(o));
                        (Mode::Sync, others.collect())
                    }
                };
                if mode == Mode::Fill {
                    // The client does not wait for a fill.
                    self.slot.answer(&self.ctx.queue, &answer);
                    if !targets.is_empty() {
                        let me = self.clone();
                        later(move || {
                            copy::start(&me.ctx, &me.key, me.slot.seq(), owner, targets, Mode::Fill, Box::new(|| {}));
                        });
                    }
                    return;
                }
                let me = self.clone();
                later(move || {
                    let (ctx, slot) = (me.ctx.clone(), me.slot);
                    let done = Box::new(move || slot.answer(&ctx.queue, &answer));
                    copy::start(&me.ctx, &me.key, me.slot.seq(), owner, targets, Mode::Sync, done);
                });
            }
        }
    }

    fn client(&self) -> Option<&Queue> {
        Some(&self.ctx.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        assert!(outcome(Kind::Read, b"EN\r\n") == Outcome::Missed);
        assert!(outcome(Kind::Touch, b"END\r\n") == Outcome::Missed);
        assert!(outcome(Kind::Write, b"EN\r\n") == Outcome::Final);
        assert!(outcome(Kind::Read, b"VA 1 f0\r\nx\r\n") == Outcome::Took);
        assert!(outcome(Kind::Touch, b"VALUE k 0 1\r\nx\r\nEND\r\n") == Outcome::Took);
        assert!(outcome(Kind::Write, b"STORED\r\n") == Outcome::Took);
        assert!(outcome(Kind::Write, b"11\r\n") == Outcome::Took);
        assert!(outcome(Kind::Write, b"NOT_STORED\r\n") == Outcome::Final);
        assert!(outcome(Kind::Write, b"EXISTS\r\n") == Outcome::Final);
        assert!(outcome(Kind::Write, b"NS\r\n") == Outcome::Final);
        assert!(outcome(Kind::Write, b"SERVER_ERROR out of memory\r\n") == Outcome::Final);
    }
}
