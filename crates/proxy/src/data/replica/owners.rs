//! A key's live owners in a replicated pool.
//!
//! Owners are found on the ring over every server, so an ejection does not
//! move a key while it has another owner: the ejected one is skipped. Only
//! when every owner of a key is out does the key fall through to the ring
//! of live servers — where it then has up to R owners among those, as a
//! pool with one owner per key remaps.

use crate::control::servers::ServerSet;
use memshard_ring::Ring;

/// The live owners of `key`, first owner first (indices into the set's
/// servers); `live` is the ring of live servers the request was routed on.
pub(crate) fn live(set: &ServerSet, live: &Ring, key: &[u8]) -> Vec<usize> {
    let r = set.replicas();
    let mut owners = Vec::with_capacity(r);
    if let Some(all) = set.full_ring() {
        owners.extend(all.servers_for(key, r).filter(|&i| set.servers[i].health.is_live()));
    }
    if owners.is_empty() {
        owners.extend(live.servers_for(key, r));
    }
    owners
}
