//! memshard-store: the memory-bounded item store behind memshard's
//! memcached-compatible server.
//!
//! It is a pure, synchronous, thread-safe key/value store with memcached
//! 1.6.18 semantics for expiry, CAS, storage modes, counters, `flush_all`
//! and the state the meta protocol reads and writes. It is **not** a
//! server: it does no I/O, parses no protocol, spawns no threads, and never
//! reads the wall clock itself (time comes from a [`Clock`]). Command-level
//! statistics (`get_hits`, `cmd_set`, ...) are left to the caller, which sees
//! every outcome; the store counts what only it can see ([`StoreStats`]).
//!
//! ```
//! use std::sync::Arc;
//! use memshard_store::{ArithOutcome, ManualClock, Store, StoreConfig, StoreMode, StoreOutcome};
//!
//! let clock = Arc::new(ManualClock::default());
//! let store = Store::with_clock(StoreConfig::default(), clock.clone()).unwrap();
//! let r = store.store(StoreMode::Set, b"n", 0, 10, b"100", 0);
//! assert_eq!(r.outcome, StoreOutcome::Stored);
//! assert!(matches!(store.decr(b"n", 1), ArithOutcome::Value { value: 99, .. }));
//! assert_eq!(store.get(b"n").unwrap().value(), b"99 "); // memcached pads in place
//! clock.advance(10);
//! assert!(store.get(b"n").is_none()); // expired
//! ```
//!
//! # Layout
//!
//! The key space is split over a power-of-two number of shards, picked by a
//! hash of the key; each shard is a `parking_lot::Mutex` around a hash index
//! (`hashbrown::HashTable<u32>` of slot numbers), a chunked slab of 40-byte
//! item headers, and an intrusive LRU list threaded through the headers. Key
//! and value share one `Arc<[u8]>`, so reads return an [`ItemView`] (a
//! reference-count bump) and the server writes the value after the lock is
//! gone. Each shard owns `memory_limit / shards` bytes and evicts from its
//! own LRU tail; CAS uniques come from one store-wide atomic counter.
//!
//! # Memory accounting
//!
//! Every item is charged (see [`item_footprint`]):
//!
//! ```text
//! 40  header in the slab (data pointer 16, LRU links 8, exptime 4,
//!     last access 4, CAS 8; state bits live in the links' spare bits)
//! + 8 hash-index slot (4-byte value + control byte at typical load)
//! + malloc_size(16 Arc counts + 2 prefix + 4 if flags != 0 + key + value)
//! ```
//!
//! where `malloc_size` models glibc (`max(32, round_up(n + 8, 16))`, page
//! rounded above 128 KiB). A 10-byte key with a 100-byte value costs
//! **192 bytes**; memcached 1.6.18 puts the same item (169 bytes by its own
//! formula) in its 192-byte slab class and additionally spends about 8 bytes
//! per item on its hash table. The charge is a model of the heap, not a
//! measurement: the slab's unused tail chunk (at most 10 KiB per shard) and
//! freed header slots (reused, never returned) are not charged, nor are
//! values still held by readers after eviction.
//!
//! An insert that would exceed the shard's share frees items from the LRU
//! tail: an already expired or flushed item among the last five is taken
//! first (`reclaimed`), otherwise the least recently used live item is
//! evicted (`evictions`, `evicted_unfetched`). With [`StoreConfig::evict`]
//! off the store answers `NoMemory` instead (memcached `-M`).
//!
//! # Time and expiry
//!
//! Client `exptime` values follow memcached: `0` never expires, `1..=2592000`
//! is relative, larger values are absolute unix times (already expired if
//! not in the future), negative values are stored but immediately
//! invisible. An item is expired when `exptime != 0 && exptime <= now`.
//! Expired items disappear lazily on access (`get_expired`), when an insert
//! reuses their memory, or through [`Store::sweep`], which a background task
//! should call periodically to give their memory back (`crawler_reclaimed`).
//! [`Store::flush_all`] reproduces memcached's `oldest_live`/`oldest_cas`
//! rules, including that `flush_all N` takes effect after `N - 1` seconds.
//!
//! # Size limit
//!
//! Items are rejected as [`StoreOutcome::TooLarge`] with memcached's own
//! formula ([`memcached_item_size`]: 48-byte header + key + 1 + 4 if flags +
//! value + 2 + 8 CAS compared with `max_item_size`), so with the default
//! 1 MiB limit the boundary is byte-identical to memcached's `-I 1m`: the
//! largest accepted value is `1048517 - key_len - (flags != 0 ? 4 : 0)`
//! bytes (1 048 516 for a 1-byte key). As in memcached, a `set` that fails
//! as too large (or out of memory) deletes the existing item under the key,
//! so a client can never read the value it meant to overwrite.
//!
//! # Meta protocol mapping
//!
//! | Request | Store call |
//! |---|---|
//! | `mg` | [`Store::meta_get`]; the closure walks the flags in request order |
//! | `mg` `v` `s` `f` `c` `k` `b` | [`MetaItem::view`], `value_len`, `flags`, `cas`, `key`, `key_binary` |
//! | `mg` `t` | [`MetaItem::ttl`] (`-1` = never) |
//! | `mg` `T<ttl>` | [`MetaItem::set_exptime`] (counts as a touch for stats) |
//! | `mg` `h` / `l` | [`MetaItem::fetched`] / [`MetaItem::last_access`], read before the delayed bump |
//! | `mg` `u` | [`MetaGetOptions::bump`] = false |
//! | `mg` `N<ttl>` | [`MetaGetOptions::vivify`]; at the `N` flag call [`MetaItem::apply_vivify_ttl`], which returns "won" for a created item |
//! | `mg` `R<ttl>` | [`MetaItem::recache_due`] → won |
//! | end of `mg` | [`MetaItem::settle_token`]`(won)` → `W`, `Z`, `X` |
//! | `me` | [`Store::meta_get`] with `bump: false`; [`MetaItem::exptime`], `last_access`, `cas`, `fetched`, [`MetaItem::memcached_size`], [`memcached_slab_class`] |
//! | `ms` (mode `MS`/`ME`/`MA`/`MP`/`MR`) | [`Store::store_with`] with [`StoreMode`] `Set`/`Add`/`Append`/`Prepend`/`Replace`, `purge_on_failure: true` |
//! | `ms` `C<cas>` | `cas`; for `Set` and `Replace` the server switches the mode to `Cas`, as memcached does |
//! | `ms` `I` | `invalidate: true` (only effective with mode `Cas`) |
//! | `ms` `F` `T` `b` `E` | `flags`, `exptime`, `key_binary`, `new_cas` |
//! | `ms` `c` | [`StoreResult::cas`] |
//! | `md` | [`Store::delete_with`]: `C` → `cas`, `I` → `invalidate`, `T` → `exptime`, `x` → `clear_value` (+ `F` → `flags`), `E` → `new_cas` |
//! | `ma` | [`Store::arith_meta`]: `MI`/`MD` → `incr`, `D` → `delta`, `C` → `cas`, `N`+`J` → `vivify`, `E` → `new_cas`; the closure handles `t`, `T` (`set_exptime`), `N` (`apply_vivify_ttl`), `c` |
//!
//! memcached 1.6.18 itself rejects the `E` flag and `md x`
//! (`CLIENT_ERROR invalid flag`); the store supports them with the semantics
//! of later releases and the server decides whether to expose them.
//!
//! # Deliberate differences from memcached
//!
//! * Eviction is true LRU per shard, not memcached's segmented
//!   HOT/WARM/COLD LRU per slab class; an item is evicted to make room for
//!   any other item in the same shard, regardless of size.
//! * `last access` (meta `l`, `la`) follows memcached's rule that the first
//!   fetch only sets "fetched" and later fetches refresh the time, but every
//!   later fetch refreshes it (memcached's background LRU thread makes its
//!   exact refresh timing nondeterministic).
//! * incr/decr always update in place when the result fits; memcached
//!   allocates a fresh, unpadded item instead if another connection happens
//!   to hold a reference at that instant (a race we do not reproduce).
//! * The `bytes` statistic is our charge per item (192 for a 10-byte key and
//!   100-byte value), not memcached's `ITEM_ntotal` (169 for the same item);
//!   [`MetaItem::memcached_size`] gives the latter for `me` output.
//! * Keys longer than 250 bytes are refused (`TooLarge` on writes, misses on
//!   reads); the server is expected to reject them first.
//! * Expiry times are stored as `u32` unix seconds, so absolute times past
//!   2106 are clamped (memcached's own limit is 2038, it parses `int32`).

#![warn(missing_docs)]

mod arith;
pub mod classes;
mod clock;
mod compat;
mod config;
mod exptime;
mod item;
mod lru;
mod meta;
mod mutation;
mod persist;
mod shard;
mod slab;
mod stats;
mod store;

pub use arith::{ArithOutcome, ArithRequest, Vivify, parse_counter};
pub use classes::memcached_slab_class;
pub use classes::{ClassCounters, ClassStats};
pub use clock::{Clock, ManualClock, SystemClock};
pub use compat::{KEY_MAX_LENGTH, MEMCACHED_ITEM_HEADER, REALTIME_MAXDELTA, SLAB_CHUNK_SIZE_MAX, memcached_item_size};
pub use config::{ConfigError, MAX_ITEM_SIZE_LIMIT, MIN_ITEM_SIZE_LIMIT, StoreConfig};
pub use item::{
    ARC_COUNTS_BYTES, HEADER_BYTES, INDEX_BYTES, ItemRecord, ItemView, LiveItem, item_footprint, malloc_size,
};
pub use meta::{MetaGetOptions, MetaItem, TokenFlags};
pub use mutation::{DeleteOutcome, DeleteRequest, StoreMode, StoreOutcome, StoreRequest, StoreResult};
pub use persist::{ItemCursor, SavedItem};
pub use stats::StoreStats;
pub use store::{Store, TouchOutcome};
