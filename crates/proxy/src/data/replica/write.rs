//! Plain writes: the same request to every live owner at once.
//!
//! The client hears back once every owner has answered: the first owner's
//! answer (in owner order) that is a server's, or the proxy's failure when
//! no owner answered. An owner that failed while another took the write is
//! ejected at once: it may hold the value the write replaced.

use super::{Ctx, Owners, Slot, failed_over};
use crate::control::stats;
use crate::data::backend::answer::{Got, Sink, Step};
use crate::data::slots::order::Queue;
use std::cell::RefCell;
use std::rc::Rc;
use tokio::time::Instant;

/// One write on its way to every owner.
struct Fan {
    ctx: Rc<Ctx>,
    slot: Slot,
    owners: Owners,
    st: RefCell<Heard>,
}

/// What the owners have said so far.
#[derive(Default)]
struct Heard {
    /// Owners that have not answered.
    left: usize,
    /// The answer of the earliest owner (in owner order) that answered
    /// (a write's answer is a short line: kept inline).
    first: Option<(usize, smallvec::SmallVec<[u8; 24]>)>,
    /// Owners that failed, and the first failure line.
    failed: Owners,
    failure: Option<Vec<u8>>,
}

/// Sends `bytes` to each of `owners`; the answer goes to `slot`.
pub(super) fn all(ctx: &Rc<Ctx>, slot: Slot, owners: Owners, bytes: &[u8], now: Instant) {
    if owners.is_empty() {
        // A pool always has a server; kept total all the same.
        slot.answer(&ctx.queue, b"SERVER_ERROR no server owns the key\r\n");
        return;
    }
    let st = RefCell::new(Heard { left: owners.len(), ..Heard::default() });
    let fan = Rc::new(Fan { ctx: ctx.clone(), slot, owners, st });
    for (tag, &o) in fan.owners.iter().enumerate() {
        let sink = Sink::Step(fan.clone(), tag);
        ctx.up(o).send(&ctx.queue, |out| out.extend_from_slice(bytes), Some(sink), now);
    }
}

impl Step for Fan {
    fn answered(self: Rc<Self>, tag: usize, got: Got<'_>) {
        let done = {
            let mut h = self.st.borrow_mut();
            match got {
                Got::Answer(parts) => {
                    if h.first.as_ref().is_none_or(|(t, _)| tag < *t) {
                        let mut answer = smallvec::SmallVec::new();
                        for p in parts {
                            answer.extend_from_slice(p);
                        }
                        h.first = Some((tag, answer));
                    }
                }
                Got::Failed(f) => {
                    h.failed.push(tag);
                    if h.failure.is_none() {
                        h.failure = Some(f.line.clone());
                    }
                }
            }
            h.left -= 1;
            h.left == 0
        };
        if done {
            self.finish();
        }
    }

    fn client(&self) -> Option<&Queue> {
        Some(&self.ctx.queue)
    }
}

impl Fan {
    fn finish(&self) {
        let h = std::mem::take(&mut *self.st.borrow_mut());
        let q = &self.ctx.queue;
        let Some((first, answer)) = h.first else {
            stats::add(&self.ctx.pool().stats.forward_error, 1);
            self.slot.answer(q, &h.failure.unwrap_or_default());
            return;
        };
        for &i in &h.failed {
            self.ctx.pool().eject_stale(self.ctx.server(self.owners[i]));
        }
        if first > 0 {
            failed_over(&self.ctx);
        }
        self.slot.answer(q, &answer);
    }
}
