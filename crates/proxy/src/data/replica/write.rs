//! Plain writes: the same request to every live owner at once.
//!
//! The client hears back once every owner has answered: the first owner's
//! answer (in owner order) that is a server's, or the proxy's failure when
//! no owner answered. An owner that failed while another took the write is
//! ejected at once: it may hold the value the write replaced.

use super::{Answer, Ctx, Slot, failed_over};
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
    owners: Vec<usize>,
    /// Each owner's answer (`Err`: the proxy's failure line), in owner order.
    got: RefCell<Vec<Option<Answer>>>,
}

/// Sends `bytes` to each of `owners`; the answer goes to `slot`.
pub(crate) fn all(ctx: &Rc<Ctx>, slot: Slot, owners: Vec<usize>, bytes: &[u8], now: Instant) {
    if owners.is_empty() {
        // A pool always has a server; kept total all the same.
        slot.answer(&ctx.queue, b"SERVER_ERROR no server owns the key\r\n");
        return;
    }
    let got = RefCell::new(vec![None; owners.len()]);
    let fan = Rc::new(Fan { ctx: ctx.clone(), slot, owners, got });
    for (tag, &o) in fan.owners.iter().enumerate() {
        let sink = Sink::Step(fan.clone(), tag);
        ctx.up(o).send(&ctx.queue, |out| out.extend_from_slice(bytes), Some(sink), now);
    }
}

impl Step for Fan {
    fn answered(self: Rc<Self>, tag: usize, got: Got<'_>) {
        let done = {
            let mut all = self.got.borrow_mut();
            let Some(slot @ None) = all.get_mut(tag) else { return };
            *slot = Some(match got {
                Got::Answer(parts) => Ok(parts.concat()),
                Got::Failed(f) => Err(f.line.clone()),
            });
            all.iter().all(Option::is_some)
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
        let got = std::mem::take(&mut *self.got.borrow_mut());
        let q = &self.ctx.queue;
        let Some(first) = got.iter().position(|g| matches!(g, Some(Ok(_)))) else {
            stats::add(&self.ctx.pool().stats.forward_error, 1);
            let line = got.into_iter().flatten().find_map(Result::err).unwrap_or_default();
            self.slot.answer(q, &line);
            return;
        };
        for (i, g) in got.iter().enumerate() {
            if matches!(g, Some(Err(_))) {
                self.ctx.pool().eject_stale(self.ctx.server(self.owners[i]));
            }
        }
        if first > 0 {
            failed_over(&self.ctx);
        }
        if let Some(Some(Ok(answer))) = got.get(first) {
            self.slot.answer(q, answer);
        }
    }
}
