//! Backend connections, per worker thread.
//!
//! Each worker thread keeps its own `server_connections` pipelined
//! connections per backend server and multiplexes all of its clients'
//! requests over them. Connections live in a thread-local table: a worker's
//! tasks never leave its thread, so no lock guards the table, and nothing is
//! shared between workers but the ring, the health counters and where each
//! server's name resolves to.
//!
//! A slot remembers the address generation its connections were made at
//! (see `resolve`). When the server's name moves to a new address the
//! generation changes and the slot's connections are dropped on the next
//! request; requests already sent on them still get their replies (their
//! tasks hold the connection until then).

use crate::pool::Pool;
use crate::{resolve, stats};
use memshard_client::{Client, ClientConfig, ClientError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// The connections of one (pool, server) on this thread.
#[derive(Default)]
struct Slot {
    clients: Vec<Client>,
    next: usize,
    /// The address generation `clients` were connected at.
    generation: u64,
    /// A connection broke since the last one was made: the next connect is
    /// a reconnect, which looks the name up again.
    lost: bool,
}

thread_local! {
    static TABLE: RefCell<HashMap<(usize, usize), Slot>> = RefCell::new(HashMap::new());
}

/// Drops broken connections, and every connection when the server's address
/// changed, keeping the `server_connections` gauge right.
fn prune(slot: &mut Slot, pool: &Pool, server: usize) {
    let before = slot.clients.len();
    let generation = pool.targets[server].generation();
    if slot.generation != generation {
        slot.clients.clear();
        slot.generation = generation;
    } else {
        slot.clients.retain(|c| !c.is_broken());
        slot.lost |= slot.clients.len() < before;
    }
    let gone = (before - slot.clients.len()) as i64;
    if gone > 0 {
        stats::gauge(&pool.server_stats[server].server_connections, -gone);
    }
}

/// A healthy connection to `server` of pool `pool_id`, connecting when fewer
/// than `server_connections` healthy ones to its current address exist.
pub(crate) async fn client(pool_id: usize, pool: &Arc<Pool>, server: usize) -> Result<Client, ClientError> {
    let want = pool.cfg.server_connections.max(1) as usize;
    let existing = TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let slot = t.entry((pool_id, server)).or_default();
        prune(slot, pool, server);
        if slot.clients.len() >= want {
            slot.next = slot.next.wrapping_add(1);
            Ok(slot.clients[slot.next % slot.clients.len()].clone())
        } else {
            Err(slot.lost)
        }
    });
    let lost = match existing {
        Ok(c) => return Ok(c),
        Err(lost) => lost,
    };
    let cfg = ClientConfig { timeout: pool.timeout(), connect_timeout: pool.timeout(), max_in_flight: 4096 };
    // The name's last good addresses (looked up again on a reconnect), so a
    // pod that came back elsewhere is found without any pinned IP; or the
    // server's unix socket path.
    let (dest, generation) = resolve::destination(pool, server, lost || pool.is_failing(server)).await?;
    let fresh = dest.connect(cfg).await?;
    Ok(TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let slot = t.entry((pool_id, server)).or_default();
        prune(slot, pool, server);
        if generation != slot.generation {
            // The address changed while connecting: this request may use the
            // connection, but it is not kept.
            fresh
        } else if slot.clients.len() < want {
            stats::gauge(&pool.server_stats[server].server_connections, 1);
            slot.clients.push(fresh.clone());
            slot.lost = false;
            fresh
        } else {
            // Another task connected meanwhile: use its connection.
            slot.next = slot.next.wrapping_add(1);
            slot.clients[slot.next % slot.clients.len()].clone()
        }
    }))
}
