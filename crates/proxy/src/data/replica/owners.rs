//! A key's live owners in a replicated pool, or in a pool with one owner
//! per key while a ring change settles (its owner now, then the one before).
//!
//! Owners are found on the ring over every server, so an ejection does not
//! move a key while it has another owner: the ejected one is skipped. Only
//! when every owner of a key is out does the key fall through to the ring
//! of live servers — where it then has up to R owners among those, as a
//! pool with one owner per key remaps.

use super::Owners;
use crate::control::servers::ServerSet;
use memshard_ring::Ring;

/// The live owners of `key`, first owner first (indices into the set's
/// servers); `live` is the ring of live servers the request was routed on.
pub(super) fn live(set: &ServerSet, live: &Ring, key: &[u8]) -> Owners {
    let r = set.replicas();
    let mut owners = Owners::new();
    if r == 1 {
        return settling(set, live, key);
    }
    if let Some(all) = set.full_ring() {
        for i in all.servers_for(key, r) {
            if set.servers[i].health.is_live() {
                owners.push(i);
            }
        }
    }
    if owners.is_empty() {
        for i in live.servers_for(key, r) {
            owners.push(i);
        }
    }
    owners
}

/// The first live owner of `key` (what [`live`] would list first), without
/// listing the others.
pub(super) fn first_live(set: &ServerSet, live: &Ring, key: &[u8]) -> usize {
    if set.replicas() == 1 {
        return live.server_for(key);
    }
    let Some(all) = set.full_ring() else { return live.server_for(key) };
    // The usual case, the first owner live, without walking the ring.
    let first = all.server_for(key);
    if set.servers[first].health.is_live() {
        return first;
    }
    let found = all.servers_for(key, set.replicas()).find(|&i| set.servers[i].health.is_live());
    found.unwrap_or_else(|| live.server_for(key))
}

/// A pool with one owner per key while a ring change settles: the key's
/// owner now, then — if it moved and that server is reachable — its owners
/// on the rings before the change, newest first (see `ServerSet::settling`).
fn settling(set: &ServerSet, live: &Ring, key: &[u8]) -> Owners {
    let mut owners = Owners::new();
    let now = live.server_for(key);
    owners.push(now);
    if let Some(settle) = set.settling(tokio::time::Instant::now()) {
        // Live, or ejected but answering: with every server out the last
        // ring stays, and a proxy that has not seen the change still reads
        // there.
        let reachable =
            |s: &std::sync::Arc<crate::control::servers::Server>| s.health.is_live() || s.health.last_succeeded();
        for before in settle.previous_owners(key) {
            if !owners.contains(&before) && set.servers.get(before).is_some_and(reachable) {
                owners.push(before);
            }
        }
    }
    owners
}
