//! Bringing owners to the item another owner holds.
//!
//! The item is read from its source with `mg <key> v f t` (value, client
//! flags, remaining TTL) and stored on each target with `ms`: as an add
//! ([`Mode::Fill`], after a read found it on a later owner: a target that
//! took a write meanwhile keeps it), or as a set ([`Mode::Sync`], after a
//! conditional write on the source: every target ends with its item; one
//! the source no longer holds is deleted from them). A target that fails a
//! sync is ejected: it may hold another item than the source.

use super::{Ctx, Key, Owners, later};
use crate::control::stats;
use crate::data::backend::answer::{Got, Sink, Step};
use crate::data::slots::order::Queue;
use base64::Engine;
use memshard_proto::{MetaCode, Reply};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How the item is stored on the targets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Written back after a read: only where the key is absent.
    Fill,
    /// After a conditional write: the targets end with the source's item.
    Sync,
}

/// memcached reads a TTL above 30 days as a Unix time.
const MAX_RELATIVE_TTL: i64 = 30 * 24 * 3600;

/// The tag of the read from the source; targets are tagged by position.
const SOURCE: usize = usize::MAX;

/// One copy in progress.
struct Copy {
    ctx: Rc<Ctx>,
    key: Key,
    /// The client's slot of the request the copy follows.
    after: u64,
    to: Owners,
    mode: Mode,
    /// Targets not answered yet.
    left: Cell<usize>,
    /// Run once every target has answered (or at once, with none).
    then: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// Copies `key`'s item from owner `from` to each of `to`, then runs `then`;
/// `after` is the client's slot of the request it follows: if the client
/// wrote the key since, nothing is copied (its write decides the item).
/// Queues requests: call it from outside a step's `answered` (see `later`).
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    ctx: &Rc<Ctx>,
    key: &[u8],
    after: u64,
    from: usize,
    to: Owners,
    mode: Mode,
    then: Box<dyn FnOnce()>,
) {
    // A settling change (one owner per key) never fills: the server a key
    // left may miss a write another proxy, still on the old ring, sends
    // only to it, and a copy made now would outlive that write.
    if to.is_empty() || (mode == Mode::Fill && ctx.set.replicas() == 1) {
        then();
        return;
    }
    let copy = Rc::new(Copy {
        ctx: ctx.clone(),
        key: key.into(),
        after,
        left: Cell::new(to.len()),
        to,
        mode,
        then: RefCell::new(Some(then)),
    });
    let mut line = Vec::with_capacity(key.len() + 16);
    meta_line(&mut line, b"mg", key, None, b" v f t");
    let sink = Sink::Step(copy.clone(), SOURCE);
    ctx.up(from).send(&ctx.queue, |out| out.extend_from_slice(&line), Some(sink), Instant::now());
}

/// Writes `<cmd> <key> [<size>]<flags>\r\n`, the key in base64 (with `b`)
/// when it holds bytes a text-protocol key cannot (a meta client's binary key).
fn meta_line(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], size: Option<usize>, flags: &[u8]) {
    let text = !key.is_empty() && key.len() <= 250 && key.iter().all(|&b| b > b' ' && b != 0x7f);
    out.extend_from_slice(cmd);
    out.push(b' ');
    if text {
        out.extend_from_slice(key);
    } else {
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(key).as_bytes());
    }
    if let Some(n) = size {
        out.push(b' ');
        memshard_proto::put_u64(out, n as u64);
    }
    out.extend_from_slice(flags);
    if !text {
        out.extend_from_slice(b" b");
    }
    out.extend_from_slice(b"\r\n");
}

/// The item of a `mg <key> v f t` answer: (value, client flags, TTL as `ms`
/// takes it); `None` for a miss or anything else.
fn item(answer: &[u8]) -> Option<(&[u8], u32, i64)> {
    let Ok(Some((Reply::Meta { code: MetaCode::Va, flags, data: Some(data) }, _))) = Reply::decode(answer) else {
        return None;
    };
    let (mut client_flags, mut ttl) = (0u32, 0i64);
    for tok in flags.split(|&b| b == b' ') {
        let num = |t: &[u8]| std::str::from_utf8(&t[1..]).ok().and_then(|s| s.parse::<i64>().ok());
        match tok.first() {
            Some(b'f') => client_flags = u32::try_from(num(tok)?).ok()?,
            Some(b't') => ttl = ms_ttl(num(tok)?),
            _ => {}
        }
    }
    Some((data, client_flags, ttl))
}

/// A remaining TTL from `mg … t` (`-1`: none) as `ms … T` takes it: 0 for
/// none, seconds while under 30 days, beyond that the Unix time it ends.
fn ms_ttl(remaining: i64) -> i64 {
    match remaining {
        r if r < 0 => 0,
        // Expiring within the second: not "never".
        0 => 1,
        r if r <= MAX_RELATIVE_TTL => r,
        r => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64) + r,
    }
}

impl Step for Copy {
    fn answered(self: Rc<Self>, tag: usize, got: Got<'_>) {
        if tag == SOURCE {
            let answer = match got {
                Got::Answer(parts) => Some(parts.concat()),
                Got::Failed(_) => None,
            };
            let mut line = Vec::new();
            match answer.as_deref().and_then(item) {
                Some((value, flags, ttl)) => {
                    let mut fl = format!(" F{flags} T{ttl}").into_bytes();
                    if self.mode == Mode::Fill {
                        fl.extend_from_slice(b" ME");
                    }
                    meta_line(&mut line, b"ms", &self.key, Some(value.len()), &fl);
                    line.extend_from_slice(value);
                    line.extend_from_slice(b"\r\n");
                }
                // Nothing to write back.
                None if self.mode == Mode::Fill => return self.finish_all(),
                // The source no longer holds an item (or could not say):
                // the targets must not serve theirs.
                None => meta_line(&mut line, b"md", &self.key, None, b""),
            }
            let me = self.clone();
            later(move || {
                // Checked in the turn that queues the copies: no write of
                // the client can slip in between.
                if me.ctx.reads.wrote_after(me.after, &me.key) {
                    return me.finish_all();
                }
                let now = Instant::now();
                for (tag, &t) in me.to.iter().enumerate() {
                    let sink = Sink::Step(me.clone(), tag);
                    me.ctx.up(t).send(&me.ctx.queue, |out| out.extend_from_slice(&line), Some(sink), now);
                }
            });
            return;
        }
        let Some(&target) = self.to.get(tag) else { return };
        // HD: stored (or deleted); NS: the add found an item there; NF:
        // nothing to delete. Anything else leaves the target unknown.
        let (stored, took) = match got {
            Got::Answer(parts) => {
                let a = parts.concat();
                (a.starts_with(b"HD"), a.starts_with(b"HD") || a.starts_with(b"NS") || a.starts_with(b"NF"))
            }
            Got::Failed(_) => (false, false),
        };
        if stored {
            let counter = match self.mode {
                Mode::Fill => &self.ctx.pool().stats.replica_fills,
                Mode::Sync => &self.ctx.pool().stats.replica_syncs,
            };
            stats::add(counter, 1);
        }
        if !took && self.mode == Mode::Sync {
            self.ctx.pool().eject_stale(self.ctx.server(target));
        }
        self.left.set(self.left.get() - 1);
        if self.left.get() == 0 {
            self.finish_all();
        }
    }

    fn client(&self) -> Option<&Queue> {
        Some(&self.ctx.queue)
    }
}

impl Copy {
    fn finish_all(&self) {
        if let Some(then) = self.then.borrow_mut().take() {
            then();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_read_from_a_meta_answer() {
        let (v, f, t) = item(b"VA 3 f7 t-1\r\nabc\r\n").expect("hit");
        assert_eq!((v, f, t), (&b"abc"[..], 7, 0));
        let (_, _, t) = item(b"VA 0 t100 f0\r\n\r\n").expect("hit");
        assert_eq!(t, 100);
        let (_, _, t) = item(b"VA 1 f0 t40000000\r\nx\r\n").expect("hit");
        assert!(t > 1_700_000_000, "a TTL past 30 days is sent as a Unix time: {t}");
        assert!(item(b"EN\r\n").is_none());
        assert!(item(b"VA 1 fx t1\r\nx\r\n").is_none(), "garbage flags are no item");
    }

    #[test]
    fn binary_keys_travel_in_base64() {
        let mut out = Vec::new();
        meta_line(&mut out, b"mg", b"plain", None, b" v");
        assert_eq!(out, b"mg plain v\r\n");
        out.clear();
        meta_line(&mut out, b"ms", b"a b", Some(2), b" T0");
        assert_eq!(out, b"ms YSBi 2 T0 b\r\n");
    }
}
