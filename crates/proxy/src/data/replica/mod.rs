//! Replicated pools (`replicas: R` above 1): every key has R owners — the
//! server twemproxy puts it on, then the next distinct servers clockwise on
//! the ring over every server (`owners`) — and the proxy keeps them alike.
//!
//! - **Reads** (get and gets: `one` for one key, `read` for several; mg
//!   without `T`/`N`: `cond`) go to the first live owner, then to the next
//!   on a miss or a failure. A hit found on a later
//!   owner answers the client at once and is written back, as an `add`, to
//!   the owners before it that missed (`copy`): an owner that came back
//!   empty refills as it is read.
//! - **Plain writes** (set, delete, touch, ms in set mode without `C`, md
//!   without `C`; `write`) go to every live owner at once; the client hears
//!   the first owner's answer once every owner has answered, and a failure
//!   only when no owner answered. An owner that failed while another took
//!   the write is ejected at once (`Pool::eject_stale`): it comes back only
//!   through the prober and its flush, never with the value it kept.
//! - **Conditional writes** (add, replace, append, prepend, cas, incr,
//!   decr, ma, ms with `C` or another mode, md with `C`, gat, gats, mg with
//!   `T` or `N`; `cond`): their outcome depends on what the server holds,
//!   so they run on the first live owner only (on a failure it is ejected
//!   and the next one runs them; gat and mg `T` also go on to the next on a
//!   miss). When they succeed, the item as that owner now holds it (value,
//!   flags, TTL) is copied to the other live owners before the client
//!   hears back.
//!
//! An ejected owner does not remap the ring: its keys are served by their
//! other owners, and only a key with every owner out falls through to the
//! ring of live servers, as with one owner.
//!
//! Steps are told their answers while a backend connection is handing
//! answers out ([`Step`]): whatever they send next is queued from a task of
//! its own ([`later`]), never from inside that call.

mod cond;
mod copy;
mod one;
mod owners;
mod read;
mod write;

pub(crate) use one::Reads;

use crate::control::pool::Pool;
use crate::control::servers::{Server, ServerSet};
use crate::control::stats;
use crate::data::backend::conns::Conns;
use crate::data::backend::upstream::Upstream;
use crate::data::slots::order::Queue;
use memshard_proto::{Admin, AdminCmd, MetaSetMode, Request, StoreCmd};
use memshard_ring::Ring;
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;
use tokio::time::Instant;

/// What every step of one client request needs: the worker's connections,
/// the server set the request was routed on, and the client's answers.
/// Made once per batch of a client's requests, when a request needs more
/// than a single-key read, and shared by their steps.
struct Ctx {
    conns: Rc<Conns>,
    set: Arc<ServerSet>,
    queue: Queue,
    /// The client's reads and write log.
    reads: Rc<Reads>,
}

/// One batch of a client's requests to a replicated pool.
pub(crate) struct Batch<'a> {
    set: &'a Arc<ServerSet>,
    reads: &'a Rc<Reads>,
    ctx: std::cell::OnceCell<Rc<Ctx>>,
}

impl<'a> Batch<'a> {
    /// A batch routed on `set`, by the client whose reads are `reads`.
    pub(crate) fn new(set: &'a Arc<ServerSet>, reads: &'a Rc<Reads>) -> Batch<'a> {
        reads.batch(set);
        Batch { set, reads, ctx: std::cell::OnceCell::new() }
    }

    /// The batch's context, made on first use.
    fn ctx(&self) -> &Rc<Ctx> {
        self.ctx.get_or_init(|| {
            Rc::new(Ctx {
                conns: self.reads.conns().clone(),
                set: self.set.clone(),
                queue: self.reads.queue.clone(),
                reads: self.reads.clone(),
            })
        })
    }
}

impl Ctx {
    /// A connection to server `i` of the set.
    fn up(&self, i: usize) -> Rc<Upstream> {
        self.conns.pick(&self.set, &self.set.servers[i])
    }

    fn server(&self, i: usize) -> &Arc<Server> {
        &self.set.servers[i]
    }

    fn pool(&self) -> &Arc<Pool> {
        self.conns.pool()
    }

    /// Whether server `i` is in the ring now.
    fn live(&self, i: usize) -> bool {
        self.set.servers[i].health.is_live()
    }
}

/// A key's owners: inline up to four.
type Owners = smallvec::SmallVec<[usize; 4]>;

/// A key kept by a step: inline up to 48 bytes.
type Key = smallvec::SmallVec<[u8; 48]>;

/// One owner's answer as a step keeps it: `Ok` the server's bytes, `Err`
/// the proxy's failure line.
type Answer = Result<Vec<u8>, Vec<u8>>;

/// Where a request's answer goes in the client's order.
#[derive(Clone, Copy)]
enum Slot {
    /// Shown as the server wrote it.
    Shown(u64),
    /// A quiet meta command (its word): what memcached would not have sent
    /// becomes nothing.
    Quiet(u64, &'static [u8]),
    /// noreply: the slot keeps the client's order and is filled with
    /// nothing.
    Silent(u64),
}

impl Slot {
    /// The client's answer slot.
    fn seq(self) -> u64 {
        match self {
            Slot::Shown(seq) | Slot::Quiet(seq, _) | Slot::Silent(seq) => seq,
        }
    }

    /// Fills the slot with `answer`, as the client is to see it.
    fn answer(self, q: &Queue, answer: &[u8]) {
        match self {
            Slot::Shown(seq) => q.fill(seq, &[answer]),
            Slot::Quiet(seq, cmd) => {
                let shown: &[u8] = if crate::data::backend::quiet::suppressed(cmd, answer) { &[] } else { answer };
                q.fill(seq, &[shown]);
            }
            Slot::Silent(seq) => q.fill(seq, &[]),
        }
    }
}

/// Runs `f` from a task of its own on this worker (see the module docs).
fn later(f: impl FnOnce() + 'static) {
    tokio::task::spawn_local(async move { f() });
}

/// Whether a server's answer is an error line (the proxy's own failures
/// reach steps apart, as `Got::Failed`).
fn is_error(answer: &[u8]) -> bool {
    answer.starts_with(b"SERVER_ERROR") || answer.starts_with(b"CLIENT_ERROR") || answer.starts_with(b"ERROR")
}

/// Routes one keyed request of a replicated pool; `false` for what is
/// routed as with one owner (keyless commands, answered locally).
pub(crate) fn route(b: &Batch<'_>, ring: &Ring, req: &Request<'_>, raw: &[u8], now: Instant) -> bool {
    if let Request::Get(g) = req {
        read::get(b, ring, g, raw.len(), now);
        return true;
    }
    if !is_keyed(req) {
        return false;
    }
    let ctx = b.ctx();
    let owners = |key: &[u8]| owners::live(&ctx.set, ring, key);
    let q = &ctx.queue;
    // A noreply command is asked with a reply (the proxy must see how each
    // owner took it); the client's slot then shows nothing.
    let form = |noreply: bool, encode: &dyn Fn(&mut Vec<u8>)| -> (Slot, Cow<'_, [u8]>) {
        if !noreply {
            return (Slot::Shown(q.reserve()), Cow::Borrowed(raw));
        }
        let mut bytes = Vec::with_capacity(raw.len());
        encode(&mut bytes);
        (Slot::Silent(q.reserve()), Cow::Owned(bytes))
    };
    match req {
        Request::Store(s) => {
            let (slot, bytes) =
                form(s.noreply, &|out| memshard_proto::Store { noreply: false, ..s.clone() }.encode(out));
            b.reads.wrote(slot.seq(), s.key);
            match s.cmd {
                StoreCmd::Set => write::all(ctx, slot, owners(s.key), &bytes, now),
                _ => cond::run(ctx, slot, owners(s.key), bytes.into_owned(), s.key, cond::Kind::Write, now),
            }
        }
        Request::Delete(d) => {
            let (slot, bytes) =
                form(d.noreply, &|out| memshard_proto::Delete { noreply: false, ..d.clone() }.encode(out));
            b.reads.wrote(slot.seq(), d.key);
            write::all(ctx, slot, owners(d.key), &bytes, now);
        }
        Request::Touch(t) => {
            let (slot, bytes) =
                form(t.noreply, &|out| memshard_proto::Touch { noreply: false, ..t.clone() }.encode(out));
            write::all(ctx, slot, owners(t.key), &bytes, now);
        }
        Request::Arith(a) => {
            let (slot, bytes) =
                form(a.noreply, &|out| memshard_proto::Arith { noreply: false, ..a.clone() }.encode(out));
            b.reads.wrote(slot.seq(), a.key);
            cond::run(ctx, slot, owners(a.key), bytes.into_owned(), a.key, cond::Kind::Write, now);
        }
        Request::MetaGet(m) => {
            let (slot, bytes) = meta_form(q, b"mg", &m.key, None, &m.flags, raw);
            let kind = match m.flags.ttl.is_some() || m.flags.vivify.is_some() {
                true => cond::Kind::Touch,
                false => cond::Kind::Read,
            };
            cond::run(ctx, slot, owners(&m.key), bytes, &m.key, kind, now);
        }
        Request::MetaSet(m) => {
            let (slot, bytes) = meta_form(q, b"ms", &m.key, Some(m.value), &m.flags, raw);
            b.reads.wrote(slot.seq(), &m.key);
            let plain = m.mode == MetaSetMode::Set && m.flags.compare_cas.is_none() && m.flags.new_cas.is_none();
            match plain {
                true => write::all(ctx, slot, owners(&m.key), &bytes, now),
                false => cond::run(ctx, slot, owners(&m.key), bytes, &m.key, cond::Kind::Write, now),
            }
        }
        Request::MetaDelete(m) => {
            let (slot, bytes) = meta_form(q, b"md", &m.key, None, &m.flags, raw);
            b.reads.wrote(slot.seq(), &m.key);
            match m.flags.compare_cas.is_none() {
                true => write::all(ctx, slot, owners(&m.key), &bytes, now),
                false => cond::run(ctx, slot, owners(&m.key), bytes, &m.key, cond::Kind::Write, now),
            }
        }
        Request::MetaArith(m) => {
            let (slot, bytes) = meta_form(q, b"ma", &m.key, None, &m.flags, raw);
            b.reads.wrote(slot.seq(), &m.key);
            cond::run(ctx, slot, owners(&m.key), bytes, &m.key, cond::Kind::Write, now);
        }
        // `me` reads one server's view of an item: the first live owner's.
        Request::Admin(AdminCmd { op: Admin::MetaDebug { key }, .. }) => {
            let first = owners(key).into_iter().take(1).collect();
            write::all(ctx, Slot::Shown(q.reserve()), first, raw, now);
        }
        _ => return false,
    }
    true
}

/// Whether `req` names a key (and so goes through the owners).
fn is_keyed(req: &Request<'_>) -> bool {
    matches!(
        req,
        Request::Get(_)
            | Request::Store(_)
            | Request::Delete(_)
            | Request::Touch(_)
            | Request::Arith(_)
            | Request::MetaGet(_)
            | Request::MetaSet(_)
            | Request::MetaDelete(_)
            | Request::MetaArith(_)
            | Request::Admin(AdminCmd { op: Admin::MetaDebug { .. }, .. })
    )
}

/// A meta command as every owner is asked it: as the client wrote it, or,
/// when quiet, without `q` (every request then has one answer to match;
/// the slot hides what memcached would not have sent).
fn meta_form(
    q: &Queue,
    cmd: &'static [u8],
    key: &[u8],
    data: Option<&[u8]>,
    flags: &memshard_proto::MetaFlags<'_>,
    raw: &[u8],
) -> (Slot, Vec<u8>) {
    if !flags.quiet {
        return (Slot::Shown(q.reserve()), raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len());
    crate::data::backend::quiet::unquiet(&mut out, cmd, key, data, flags);
    (Slot::Quiet(q.reserve(), cmd), out)
}

/// Counts one request answered by a later owner.
fn failed_over(ctx: &Ctx) {
    stats::add(&ctx.pool().stats.replica_failovers, 1);
}
