//! A get or gets of one key in a replicated pool: the usual read, on a path
//! that allocates nothing once a connection is warm.
//!
//! Each client connection has one [`Reads`]: its reads in flight, in a slab
//! reused from read to read, and the server set of its latest batch. A read
//! is asked of its key's first live owner as any single-key get is (it may
//! join a get line); a hit goes to the client as the server sent it. Only a
//! miss or a failure looks up the key's other owners and asks the next;
//! a hit found there is written back to the owners that missed.

use super::copy::{self, Mode};
use super::{Ctx, Key, Owners, failed_over, later};
use crate::control::servers::ServerSet;
use crate::control::stats;
use crate::data::backend::answer::{END, Got, Sink, Step};
use crate::data::backend::conns::Conns;
use crate::data::slots::order::Queue;
use memshard_proto::GetCmd;
use memshard_ring::Ring;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use tokio::time::Instant;

/// One client connection's single-key reads, and its recent writes.
pub(crate) struct Reads {
    conns: Rc<Conns>,
    pub(super) queue: Queue,
    /// The set of the connection's latest batch.
    set: RefCell<Arc<ServerSet>>,
    slab: RefCell<Slab>,
    /// The client's latest writes, as (answer slot, key hash): a step that
    /// would go on after the client's later requests were queued — a read
    /// failing over, a fill, a sync — first asks whether one of them wrote
    /// its key (see [`Reads::wrote_after`]).
    writes: RefCell<VecDeque<(u64, u64)>>,
    /// The newest slot dropped from `writes`.
    forgotten: Cell<Option<u64>>,
}

/// Writes a client's log holds: more than its pipeline keeps in flight
/// for one step to outlive, in the usual case.
const WRITE_LOG: usize = 256;

/// A key's 64-bit FNV-1a hash, for the write log (a collision only makes a
/// step more careful).
fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Default)]
struct Slab {
    entries: Vec<Option<Pending>>,
    free: Vec<usize>,
}

/// One read in flight: small, as most end at their first owner.
struct Pending {
    seq: u64,
    /// The set generation the owners index into.
    generation: u64,
    cmd: GetCmd,
    /// The owner asked first.
    first: u32,
    key: Key,
    /// Past the first owner: the rest of the walk.
    more: Option<Box<Walk>>,
}

/// A read past its first owner.
struct Walk {
    /// The key's live owners, the one asked first first.
    owners: Owners,
    at: usize,
    /// Owners that answered a miss.
    missed: Owners,
}

impl Pending {
    /// The owner asked now.
    fn asked(&self) -> usize {
        self.more.as_ref().map_or(self.first as usize, |w| w.owners[w.at])
    }
}

impl Reads {
    pub(crate) fn new(conns: Rc<Conns>, queue: Queue, set: Arc<ServerSet>) -> Rc<Reads> {
        Rc::new(Reads {
            conns,
            queue,
            set: RefCell::new(set),
            slab: RefCell::default(),
            writes: RefCell::default(),
            forgotten: Cell::new(None),
        })
    }

    /// The client's request in slot `seq` writes `key`.
    pub(super) fn wrote(&self, seq: u64, key: &[u8]) {
        let mut log = self.writes.borrow_mut();
        if log.len() == WRITE_LOG {
            if let Some((old, _)) = log.pop_front() {
                self.forgotten.set(Some(old));
            }
        }
        log.push_back((seq, key_hash(key)));
    }

    /// Whether the client may have written `key` in a request after slot
    /// `seq`: one such write is logged, or the log no longer reaches back
    /// that far. A read that failed over must then not be asked of the
    /// next owner (it would be queued after that write and could return
    /// it, out of the client's order), nor an item copied to other owners
    /// (a fill could bring back what the write deleted, a sync overwrite
    /// what it set).
    pub(super) fn wrote_after(&self, seq: u64, key: &[u8]) -> bool {
        if self.forgotten.get().is_some_and(|old| old > seq) {
            return true;
        }
        let h = key_hash(key);
        self.writes.borrow().iter().any(|&(s, k)| s > seq && k == h)
    }

    /// The worker's connections.
    pub(super) fn conns(&self) -> &Rc<Conns> {
        &self.conns
    }

    /// A new batch, routed on `set`.
    pub(super) fn batch(&self, set: &Arc<ServerSet>) {
        if !Arc::ptr_eq(&self.set.borrow(), set) {
            *self.set.borrow_mut() = set.clone();
        }
    }

    /// Routes a get or gets of `key` to its first live owner.
    pub(super) fn get(
        self: &Rc<Self>,
        set: &ServerSet,
        ring: &Ring,
        cmd: GetCmd,
        key: &[u8],
        raw_len: usize,
        now: Instant,
    ) {
        let first = super::owners::first_live(set, ring, key);
        let read = Pending {
            seq: self.queue.reserve(),
            generation: set.generation,
            cmd,
            first: u32::try_from(first).unwrap_or(u32::MAX),
            key: Key::from_slice(key),
            more: None,
        };
        let tag = {
            let mut slab = self.slab.borrow_mut();
            match slab.free.pop() {
                Some(i) => {
                    slab.entries[i] = Some(read);
                    i
                }
                None => {
                    slab.entries.push(Some(read));
                    slab.entries.len() - 1
                }
            }
        };
        let len = u32::try_from(raw_len).unwrap_or(u32::MAX);
        let up = self.conns.pick(set, &set.servers[first]);
        up.get(cmd, key, Sink::Step(self.clone(), tag), len, now);
    }

    /// Read `tag` is done: its entry is free again.
    fn finish(&self, tag: usize) -> Option<Pending> {
        let mut slab = self.slab.borrow_mut();
        let read = slab.entries.get_mut(tag)?.take()?;
        slab.free.push(tag);
        Some(read)
    }

    /// Read `tag` ends with `last` (a failure line when `failure`).
    fn last(&self, tag: usize, last: &[u8], failure: bool) {
        if let Some(read) = self.finish(tag) {
            if failure {
                stats::add(&self.conns.pool().stats.forward_error, 1);
            }
            self.queue.fill(read.seq, &[last]);
        }
    }

    /// Read `tag` goes on to its next owner (from a task of its own), or,
    /// with none left, answers `last`. `missed`: the owner asked answered a
    /// miss.
    fn next_or(self: Rc<Self>, tag: usize, last: &[u8], missed: bool, failure: bool) {
        let set = self.set.borrow().clone();
        let next = {
            let mut slab = self.slab.borrow_mut();
            let Some(Some(read)) = slab.entries.get_mut(tag) else { return };
            if self.wrote_after(read.seq, &read.key) {
                // The client wrote the key since: this owner's answer
                // stands (see `wrote_after`).
                drop(slab);
                return self.last(tag, last, failure);
            }
            let asked = read.asked();
            // A new server set since: its owners are asked afresh (what was
            // seen belongs to the old one).
            let fresh = read.generation != set.generation;
            let walk = match (&mut read.more, fresh) {
                (Some(walk), false) => {
                    walk.at += 1;
                    walk
                }
                (more, _) => {
                    let mut owners = set.ring().map(|r| super::owners::live(&set, &r, &read.key)).unwrap_or_default();
                    if !fresh {
                        // The owner asked first stays first, whatever changed since.
                        owners.retain(|o| *o != asked);
                        owners.insert(0, asked);
                    }
                    read.generation = set.generation;
                    more.insert(Box::new(Walk { owners, at: usize::from(!fresh), missed: Owners::new() }))
                }
            };
            if missed && !fresh {
                walk.missed.push(asked);
            }
            walk.owners.get(walk.at).map(|&o| (o, read.cmd, read.key.clone()))
        };
        let Some((owner, cmd, key)) = next else { return self.last(tag, last, failure) };
        later(move || {
            let len = u32::try_from(key.len() + 6).unwrap_or(u32::MAX);
            let sink = Sink::Step(self.clone(), tag);
            self.conns.pick(&set, &set.servers[owner]).get(cmd, &key, sink, len, Instant::now());
        });
    }
}

impl Step for Reads {
    fn answered(self: Rc<Self>, tag: usize, got: Got<'_>) {
        let parts = match got {
            Got::Answer(parts) => parts,
            Got::Failed(f) => return self.next_or(tag, &f.line.clone(), false, true),
        };
        let first = parts.first().copied().unwrap_or_default();
        if first == END {
            return self.next_or(tag, END, true, false);
        }
        if !first.starts_with(b"VALUE ") {
            // A server's error line: the next owner may do better.
            return self.next_or(tag, &parts.concat(), false, true);
        }
        // The usual end: a hit on the first owner, answered in place.
        let walked = {
            let mut slab = self.slab.borrow_mut();
            let Some(entry) = slab.entries.get_mut(tag) else { return };
            let Some(read) = entry.as_mut() else { return };
            self.queue.fill(read.seq, parts);
            let walked = read.more.take().map(|w| (w, read.generation, read.seq, std::mem::take(&mut read.key)));
            *entry = None;
            slab.free.push(tag);
            walked
        };
        let Some((walk, generation, seq, key)) = walked else { return };
        let set = self.set.borrow().clone();
        let ctx = Rc::new(Ctx { conns: self.conns.clone(), set, queue: self.queue.clone(), reads: self.clone() });
        if walk.at > 0 {
            failed_over(&ctx);
        }
        let owner = walk.owners[walk.at];
        if !walk.missed.is_empty() && generation == ctx.set.generation {
            later(move || copy::start(&ctx, &key, seq, owner, walk.missed, Mode::Fill, Box::new(|| {})));
        }
    }

    fn client(&self) -> Option<&Queue> {
        Some(&self.queue)
    }
}
