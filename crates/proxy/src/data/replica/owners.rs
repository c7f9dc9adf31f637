//! A key's live owners in a replicated pool.
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
    let Some(all) = set.full_ring() else { return live.server_for(key) };
    // The usual case, the first owner live, without walking the ring.
    let first = all.server_for(key);
    if set.servers[first].health.is_live() {
        return first;
    }
    let found = all.servers_for(key, set.replicas()).find(|&i| set.servers[i].health.is_live());
    found.unwrap_or_else(|| live.server_for(key))
}
