//! Counters kept by the store and the snapshot handed to the server.
//!
//! Only events the store alone can see are counted here: items coming and
//! going (evictions, expiry reclaim, flushes, sweeps) and memory use.
//! Command-level counters (`get_hits`, `cmd_set`, `cas_badval`, ...) depend on
//! which protocol command ran, so the server derives them from the outcome
//! enums the operations return.

/// Per-shard event counters, updated under the shard lock.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub(crate) total_items: u64,
    pub(crate) evictions: u64,
    pub(crate) evicted_unfetched: u64,
    pub(crate) expired_unfetched: u64,
    pub(crate) reclaimed: u64,
    pub(crate) crawler_reclaimed: u64,
    pub(crate) get_expired: u64,
    pub(crate) get_flushed: u64,
}

/// A point-in-time copy of the store's counters, named after the memcached
/// `stats` fields they feed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Items currently stored (including expired ones not yet reclaimed,
    /// like memcached).
    pub curr_items: u64,
    /// Items ever stored (every successful store, including replacements).
    pub total_items: u64,
    /// Bytes charged for the stored items (see [`crate::item_footprint`]).
    pub bytes: u64,
    /// The configured memory limit.
    pub limit_maxbytes: u64,
    /// Live items removed to make room for new ones.
    pub evictions: u64,
    /// Evicted items that had never been fetched.
    pub evicted_unfetched: u64,
    /// Expired or flushed items reclaimed (by an insert or a sweep) that had
    /// never been fetched.
    pub expired_unfetched: u64,
    /// Expired or flushed items whose memory an insert reused.
    pub reclaimed: u64,
    /// Expired or flushed items freed by [`Store::sweep`](crate::Store::sweep)
    /// (memcached's LRU crawler counter).
    pub crawler_reclaimed: u64,
    /// Lookups that found the key but it had expired.
    pub get_expired: u64,
    /// Lookups that found the key but it had been invalidated by `flush_all`.
    pub get_flushed: u64,
    /// Bytes actually allocated for the hash indexes (memcached `hash_bytes`).
    pub hash_bytes: u64,
    /// Bytes actually allocated for item-header slabs, including free slots.
    pub slab_bytes: u64,
}
