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
//! A slot remembers the address generation its connections were made at
//! (see `resolve`). When the server's name moves to a new address the
//! generation changes and the slot's connections are retired on the next
//! request: they take no new requests, answer the ones they hold, and
//! close.

use crate::control::pool::Pool;
use crate::data::backend::link;
use crate::data::backend::upstream::Upstream;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// One worker's connections to the servers of one pool.
pub(crate) struct Conns {
    pool: Arc<Pool>,
    servers: RefCell<Vec<Slot>>,
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
                let servers = (0..pool.addrs.len()).map(|_| Slot::default()).collect();
                Rc::new(Conns { pool: pool.clone(), servers: RefCell::new(servers) })
            })
            .clone()
    })
}

impl Conns {
    /// A connection to `server` that takes requests: an existing one, or a
    /// new one (connecting in the background, requests queue meanwhile) when
    /// fewer than `server_connections` usable ones to its current address
    /// exist.
    pub(crate) fn pick(&self, server: usize) -> Rc<Upstream> {
        let pool = &self.pool;
        let want = pool.cfg.server_connections.max(1) as usize;
        let mut servers = self.servers.borrow_mut();
        let slot = &mut servers[server];
        let generation = pool.targets[server].generation();
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
            let up = Upstream::new(pool, server);
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
