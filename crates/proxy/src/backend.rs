//! Backend connections, per worker thread.
//!
//! Each worker thread keeps its own `server_connections` pipelined
//! connections per backend server and multiplexes all of its clients'
//! requests over them. Connections live in a thread-local table: a worker's
//! tasks never leave its thread, so no lock guards the table, and nothing is
//! shared between workers but the ring and the health counters.

use crate::pool::Pool;
use crate::stats;
use memshard_client::{Client, ClientConfig, ClientError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// The connections of one (pool, server) on this thread.
#[derive(Default)]
struct Slot {
    clients: Vec<Client>,
    next: usize,
}

thread_local! {
    static TABLE: RefCell<HashMap<(usize, usize), Slot>> = RefCell::new(HashMap::new());
}

/// Drops broken connections, keeping the `server_connections` gauge right.
fn prune(slot: &mut Slot, pool: &Pool, server: usize) {
    let before = slot.clients.len();
    slot.clients.retain(|c| !c.is_broken());
    let gone = (before - slot.clients.len()) as i64;
    if gone > 0 {
        stats::gauge(&pool.server_stats[server].server_connections, -gone);
    }
}

/// A healthy connection to `server` of pool `pool_id`, connecting (and
/// re-resolving the server's name) when fewer than `server_connections`
/// healthy ones exist.
pub(crate) async fn client(pool_id: usize, pool: &Arc<Pool>, server: usize) -> Result<Client, ClientError> {
    let want = pool.cfg.server_connections.max(1) as usize;
    let existing = TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let slot = t.entry((pool_id, server)).or_default();
        prune(slot, pool, server);
        if slot.clients.len() >= want {
            slot.next = slot.next.wrapping_add(1);
            Some(slot.clients[slot.next % slot.clients.len()].clone())
        } else {
            None
        }
    });
    if let Some(c) = existing {
        return Ok(c);
    }
    let cfg = ClientConfig { timeout: pool.timeout(), connect_timeout: pool.timeout(), max_in_flight: 4096 };
    // Connecting resolves the name again, so a pod that came back with a new
    // address is found without any pinned IP.
    let fresh = Client::connect_with(pool.addrs[server].as_str(), cfg).await?;
    Ok(TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let slot = t.entry((pool_id, server)).or_default();
        prune(slot, pool, server);
        if slot.clients.len() < want {
            stats::gauge(&pool.server_stats[server].server_connections, 1);
            slot.clients.push(fresh.clone());
            fresh
        } else {
            // Another task connected meanwhile: use its connection.
            slot.next = slot.next.wrapping_add(1);
            slot.clients[slot.next % slot.clients.len()].clone()
        }
    }))
}
