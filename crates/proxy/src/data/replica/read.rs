//! Reads of a replicated pool: get, gets, gat and gats, of one key or many.
//!
//! Each key is asked of its first live owner; a miss or a failure passes it
//! to the next owner. get and gets travel as single-key gets, so keys bound
//! for one backend connection join one get line as any gets do (a
//! multi-get is thus split by first owner), and their answers come back one
//! key at a time. A hit on a later owner is written back to the owners
//! before it that missed (a fill: the client does not wait for it); a hit
//! of gat/gats is synced to every other live owner first (the touch is a
//! write). The client's answer lists the keys in its order, each time it
//! asked for one, as memcached does.
//!
//! A get or gets of one key — the usual read — takes the lean path of
//! `one` instead.

use super::copy::{self, Mode};
use super::{Answer, Batch, Ctx, Owners, failed_over, is_error, later};
use crate::control::stats;
use crate::data::backend::answer::{END, Got, Sink, Step};
use crate::data::slots::order::Queue;
use memshard_proto::{Get, GetCmd, Keys};
use memshard_ring::Ring;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use tokio::time::Instant;

/// One client read in progress.
struct Read {
    ctx: Rc<Ctx>,
    /// The client's answer slot.
    seq: u64,
    cmd: GetCmd,
    exptime: i64,
    /// Distinct keys, in the order first asked.
    keys: Vec<Vec<u8>>,
    /// The client's keys as indices into `keys` (empty: one key).
    order: Vec<usize>,
    /// Each key's live owners when the read was routed.
    owners: Vec<Owners>,
    st: RefCell<Vec<KeyState>>,
    /// Keys not settled yet.
    left: Cell<usize>,
    /// The client's request bytes (stats of the first ask).
    len: u32,
}

#[derive(Default)]
struct KeyState {
    /// The owner asked now (index into the key's owners).
    at: usize,
    /// Owners that answered a miss.
    missed: Owners,
    /// Settled: `Ok` the value's reply unit (empty for a miss), `Err` the
    /// error line that answers the whole read.
    found: Option<Answer>,
}

/// Routes a get, gets, gat or gats.
pub(super) fn get(b: &Batch<'_>, ring: &Ring, g: &Get<'_>, raw_len: usize, now: Instant) {
    let raw = g.keys.raw();
    // One key (no space in the keys' text): the usual read, on its own path.
    if !g.cmd.touches() && !raw.is_empty() && !raw.contains(&b' ') {
        return b.reads.get(b.set, ring, g.cmd, raw, raw_len, now);
    }
    if g.keys.is_empty() {
        // `gat 10` with no key at all: memcached answers END.
        return b.reads.queue.ready(END);
    }
    let ctx = b.ctx();
    let q = &ctx.queue;
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(2);
    let mut order = Vec::new();
    let mut many = false;
    for k in g.keys.iter() {
        match keys.iter().position(|have| have == k) {
            Some(i) => order.push(i),
            None => {
                order.push(keys.len());
                keys.push(k.to_vec());
            }
        }
        many |= order.len() > 1;
    }
    if !many {
        order.clear();
    }
    let owners: Vec<Owners> = keys.iter().map(|k| super::owners::live(&ctx.set, ring, k)).collect();
    let st = RefCell::new((0..keys.len()).map(|_| KeyState::default()).collect());
    let read = Rc::new(Read {
        ctx: ctx.clone(),
        seq: q.reserve(),
        cmd: g.cmd,
        exptime: g.exptime,
        left: Cell::new(keys.len()),
        keys,
        order,
        owners,
        st,
        len: u32::try_from(raw_len).unwrap_or(u32::MAX),
    });
    for k in 0..read.keys.len() {
        read.ask(k, now);
    }
}

impl Read {
    /// Asks key `k` of its current owner.
    fn ask(self: &Rc<Self>, k: usize, now: Instant) {
        let at = self.st.borrow()[k].at;
        let Some(&owner) = self.owners[k].get(at) else {
            return self.settle(k, Err(b"SERVER_ERROR no server owns the key\r\n".to_vec()));
        };
        let up = self.ctx.up(owner);
        let sink = Sink::Step(self.clone(), k);
        let key = &self.keys[k];
        if self.cmd.touches() {
            let one = Get { cmd: self.cmd, exptime: self.exptime, keys: Keys::from_raw(key) };
            up.send(&self.ctx.queue, |out| one.encode(out), Some(sink), now);
        } else {
            let len = if k == 0 && at == 0 { self.len } else { u32::try_from(key.len() + 6).unwrap_or(u32::MAX) };
            up.get(self.cmd, key, sink, len, now);
        }
    }

    /// Key `k` goes on to its next owner (from a task of its own), or, with
    /// none left, settles as `last`.
    fn next_or(self: Rc<Self>, k: usize, last: Answer) {
        // Not when the client wrote the key since (see `Reads::wrote_after`).
        let later_write = self.ctx.reads.wrote_after(self.seq, &self.keys[k]);
        let more = {
            let mut st = self.st.borrow_mut();
            let more = !later_write && st[k].at + 1 < self.owners[k].len();
            if more {
                st[k].at += 1;
            }
            more
        };
        if more {
            later(move || self.ask(k, Instant::now()));
        } else {
            self.settle(k, last);
        }
    }

    /// Key `k` is settled; the client is answered once every key is.
    fn settle(&self, k: usize, found: Answer) {
        {
            let mut st = self.st.borrow_mut();
            if st[k].found.is_some() {
                return;
            }
            st[k].found = Some(found);
        }
        self.left.set(self.left.get() - 1);
        if self.left.get() > 0 {
            return;
        }
        let st = std::mem::take(&mut *self.st.borrow_mut());
        let order: Vec<usize> = if self.order.is_empty() { vec![0] } else { self.order.clone() };
        let q = &self.ctx.queue;
        if let Some(Some(Err(line))) = order.iter().map(|&i| st[i].found.as_ref()).find(|f| matches!(f, Some(Err(_)))) {
            stats::add(&self.ctx.pool().stats.forward_error, 1);
            q.fill(self.seq, &[line]);
            return;
        }
        let mut out = Vec::new();
        for &i in &order {
            if let Some(Ok(unit)) = &st[i].found {
                out.extend_from_slice(unit);
            }
        }
        out.extend_from_slice(END);
        q.fill(self.seq, &[&out]);
    }
}

impl Step for Read {
    fn answered(self: Rc<Self>, k: usize, got: Got<'_>) {
        let Some(owners) = self.owners.get(k) else { return };
        let at = self.st.borrow()[k].at;
        let owner = owners[at];
        let parts = match got {
            Got::Answer(parts) => parts,
            Got::Failed(f) => {
                if self.cmd.touches() {
                    // The touch may have run there.
                    self.ctx.pool().eject_stale(self.ctx.server(owner));
                }
                return self.next_or(k, Err(f.line.clone()));
            }
        };
        let first = parts.first().copied().unwrap_or_default();
        if first == END {
            self.st.borrow_mut()[k].missed.push(owner);
            return self.next_or(k, Ok(Vec::new()));
        }
        let answer = parts.concat();
        if is_error(&answer) || !answer.starts_with(b"VALUE ") {
            // A server's error line: the next owner may do better.
            return self.next_or(k, Err(answer));
        }
        // (One key found first time goes through `One`.)
        if at > 0 {
            failed_over(&self.ctx);
        }
        let unit = answer.strip_suffix(END).unwrap_or(&answer).to_vec();
        if self.cmd.touches() {
            // The touch reaches every live owner before the client hears back.
            let targets: Owners = owners.iter().copied().filter(|&o| o != owner && self.ctx.live(o)).collect();
            let me = self.clone();
            later(move || {
                let key = me.keys[k].clone();
                let ctx = me.ctx.clone();
                let seq = me.seq;
                copy::start(&ctx, &key, seq, owner, targets, Mode::Sync, Box::new(move || me.settle(k, Ok(unit))));
            });
            return;
        }
        let missed = std::mem::take(&mut self.st.borrow_mut()[k].missed);
        self.settle(k, Ok(unit));
        if !missed.is_empty() {
            let me = self.clone();
            later(move || copy::start(&me.ctx, &me.keys[k], me.seq, owner, missed, Mode::Fill, Box::new(|| {})));
        }
    }

    fn client(&self) -> Option<&Queue> {
        Some(&self.ctx.queue)
    }
}
