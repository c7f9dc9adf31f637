//! Backend connections, per worker thread.
//!
//! Each worker thread keeps its own `server_connections` pipelined
//! connections per backend server ([`Upstream`]s) and multiplexes all of its
//! clients' requests over them. A worker's tasks never leave its thread, so
//! its table is plain `Rc`/`RefCell` state: no lock guards it, and nothing is
//! shared between workers but the ring, the health counters and where each
//! server's name resolves to. A client connection looks its pool's table up
//! once; after that, finding a request's connection is an index.
//!
//! Slots are keyed by server id, so a server that stays across a reload
//! keeps its connections; when a new server set is published, the slots of
//! servers it dropped are retired on the worker's next request.
//!
//! A slot remembers the address generation its connections were made at
//! (see `resolve`). When the server's name moves to a new address the
//! generation changes and the slot's connections are retired on the next
//! request: they take no new requests, answer the ones they hold, and
//! close.

use crate::control::pool::Pool;
use crate::control::servers::{Server, ServerSet};
use crate::data::backend::link;
use crate::data::backend::upstream::Upstream;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// One worker's connections to the servers of one pool.
pub(crate) struct Conns {
    pool: Arc<Pool>,
    /// By server id: a server kept across a reload keeps its connections.
    servers: RefCell<HashMap<u64, Slot>>,
    /// The generation of the server set the table was last pruned for.
    pruned: Cell<u64>,
}

/// The connections of one server.
#[derive(Default)]
struct Slot {
    ups: Vec<Rc<Upstream>>,
    next: usize,
    /// The address generation `ups` were made at.
    generation: u64,
    /// A connection broke since the last one was made: the next connect is
    /// a reconnect, which looks the name up again.
    lost: bool,
}

thread_local! {
    /// This worker thread's tables, by pool index.
    static TABLES: RefCell<Vec<Option<Rc<Conns>>>> = const { RefCell::new(Vec::new()) };
}

/// This thread's table for pool `pool_id`.
pub(crate) fn for_pool(pool_id: usize, pool: &Arc<Pool>) -> Rc<Conns> {
    TABLES.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() <= pool_id {
            t.resize(pool_id + 1, None);
        }
        t[pool_id]
            .get_or_insert_with(|| {
                Rc::new(Conns { pool: pool.clone(), servers: RefCell::default(), pruned: Cell::new(0) })
            })
            .clone()
    })
}

impl Conns {
    /// A connection to `server` of `set` that takes requests: an existing
    /// one, or a new one (connecting in the background, requests queue
    /// meanwhile) when fewer than `server_connections` usable ones to its
    /// current address exist.
    pub(crate) fn pick(&self, set: &ServerSet, server: &Arc<Server>) -> Rc<Upstream> {
        let mut servers = self.servers.borrow_mut();
        if self.pruned.get() != set.generation {
            // A new server set: connections to servers it no longer has
            // take no new requests, answer the ones they hold, and close.
            // The others take the set's `timeout` and `server_connections`.
            let (want, timeout) = (set.cfg.server_connections.max(1) as usize, set.timeout());
            servers.retain(|id, slot| {
                let kept = set.servers.iter().any(|s| s.id == *id);
                if !kept {
                    slot.ups.drain(..).for_each(|up| up.retire());
                    return false;
                }
                for up in &slot.ups {
                    up.set_timeout(timeout);
                }
                if slot.ups.len() > want {
                    slot.ups.drain(want..).for_each(|up| up.retire());
                }
                true
            });
            self.pruned.set(set.generation);
        }
        let want = set.cfg.server_connections.max(1) as usize;
        let slot = servers.entry(server.id).or_default();
        let generation = server.target.generation();
        if slot.generation != generation {
            for up in slot.ups.drain(..) {
                up.retire();
            }
            slot.generation = generation;
        } else if slot.ups.iter().any(|u| u.is_broken()) {
            slot.ups.retain(|u| !u.is_broken());
            slot.lost = true;
        }
        if slot.ups.len() < want {
            // The connection's socket task; requests queue on `up` while it
            // connects. After a lost connection it looks the name up again.
            let up = Upstream::new(&self.pool, server, set.timeout());
            tokio::task::spawn_local(link::run(up.clone(), slot.lost));
            slot.lost = false;
            slot.ups.push(up.clone());
            return up;
        }
        slot.next = slot.next.wrapping_add(1);
        slot.ups[slot.next % slot.ups.len()].clone()
    }

    /// The pool these connections serve.
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}
