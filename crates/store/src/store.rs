//! The public [`Store`]: shard routing, the store-wide CAS counter and flush
//! state, and the read-side operations (get, touch, TTL, sweep, stats).
//! Writes live in `mutation.rs`, meta helpers in `meta.rs`, counters in
//! `arith.rs` and persistence in `persist.rs`.

use crate::classes::{ClassCounters, ClassStats, chunk_size, class_count};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::DefaultHashBuilder;
use parking_lot::{Mutex, MutexGuard};

use crate::clock::{Clock, SystemClock};
use crate::compat::KEY_MAX_LENGTH;
use crate::config::{ConfigError, StoreConfig};
use crate::exptime::{absolute_exptime, clamp_u32, plan_flush, remaining_ttl};
use crate::item::{ItemView, LiveItem};
use crate::shard::{Env, Shard, Sweeper};
use crate::stats::StoreStats;

/// memcached backdates `process_started` by `ITEM_UPDATE_INTERVAL + 2`
/// seconds; the only visible effect is which absolute `flush_all` times
/// count as "before the server started", so we mirror it.
const PROCESS_START_BACKDATE: u64 = 62;

/// Which bits of the key hash pick the shard. hashbrown uses the low bits
/// for the bucket and the top 7 for its tag byte, so taking the shard from
/// the middle keeps both fully random within a shard.
const SHARD_HASH_SHIFT: u32 = 40;

/// Result of [`Store::touch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    /// The item existed and got the new exptime (`TOUCHED`).
    Touched,
    /// No live item under the key (`NOT_FOUND`).
    NotFound,
}

/// Keeps each shard's mutex on its own cache lines so threads working on
/// different shards do not false-share.
#[repr(align(128))]
struct ShardCell(Mutex<Shard>);

/// The store-wide CAS counter, on its own cache lines: it is written by
/// every mutation, while the fields next to it are read by every operation.
#[repr(align(128))]
#[derive(Debug, Default)]
struct CasCounter(AtomicU64);

/// A sharded, memory-bounded, thread-safe item store with memcached
/// semantics. All operations take `&self`; share it with `Arc<Store>`.
pub struct Store {
    shards: Box<[ShardCell]>,
    shard_mask: u64,
    hasher: DefaultHashBuilder,
    clock: Arc<dyn Clock>,
    cas: CasCounter,
    /// memcached `settings.oldest_live` as absolute seconds; 0 = no flush.
    oldest_live: AtomicU64,
    /// memcached `settings.oldest_cas`; 0 = none.
    oldest_cas: AtomicU64,
    started: u64,
    config: StoreConfig,
    /// The memory limit in force (`cache_memlimit` can change it at run time).
    memory_limit: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a store that reads the system clock.
    pub fn new(config: StoreConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// Creates a store driven by `clock` (use [`ManualClock`](crate::ManualClock)
    /// in tests).
    pub fn with_clock(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        config.validate()?;
        let n = config.effective_shards();
        let per_shard = config.memory_limit / n;
        let hasher = DefaultHashBuilder::default();
        let shards = (0..n).map(|_| ShardCell(Mutex::new(Shard::new(per_shard, config.evict, hasher)))).collect();
        let started = clock.now().saturating_sub(PROCESS_START_BACKDATE);
        Ok(Self {
            shards,
            shard_mask: (n as u64) - 1,
            hasher,
            clock,
            cas: CasCounter::default(),
            oldest_live: AtomicU64::new(0),
            oldest_cas: AtomicU64::new(0),
            started,
            memory_limit: AtomicU64::new(config.memory_limit as u64),
            config,
        })
    }

    /// memcached's `cache_memlimit`: a new total memory limit in bytes, split
    /// evenly over the shards; shrinking evicts least-recently-used items at
    /// once. Refused when a shard's share could no longer hold one item of
    /// `max_item_size`.
    pub fn set_memory_limit(&self, bytes: usize) -> Result<(), ConfigError> {
        let per_shard = bytes / self.shards.len();
        if per_shard < self.config.max_item_size {
            return Err(ConfigError::LimitTooSmall { memory_limit: bytes, max_item_size: self.config.max_item_size });
        }
        let env = self.env();
        for cell in self.shards.iter() {
            cell.0.lock().set_limit(per_shard, &env);
        }
        self.memory_limit.store(bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The configuration the store was built with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Number of shards in use (see [`StoreConfig::effective_shards`]).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The store's current time in unix seconds, from its clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The most recently issued CAS unique.
    pub fn last_cas(&self) -> u64 {
        self.cas.0.load(Ordering::Relaxed)
    }

    /// Snapshot of time and flush state for one operation.
    pub(crate) fn env(&self) -> Env<'_> {
        // Read oldest_live first (Acquire pairs with flush_all's Release) so
        // a visible flush time always comes with its CAS floor.
        let oldest_live = self.oldest_live.load(Ordering::Acquire);
        let oldest_cas = self.oldest_cas.load(Ordering::Acquire);
        Env { now: clamp_u32(self.clock.now()), oldest_live, oldest_cas, cas_counter: &self.cas.0 }
    }

    /// Raises the CAS counter to at least `cas` (after loading saved items)
    /// so newly issued uniques stay above every existing one.
    pub(crate) fn observe_cas(&self, cas: u64) {
        self.cas.0.fetch_max(cas, Ordering::Relaxed);
    }

    /// The shard (of [`Store::shard_count`]) that holds `key`: loaders that
    /// split work by shard keep each shard's insertion order.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_index(key).1
    }

    /// `key`'s hash and the index of its shard.
    pub(crate) fn shard_index(&self, key: &[u8]) -> (u64, usize) {
        let hash = self.hasher.hash_one(key);
        (hash, ((hash >> SHARD_HASH_SHIFT) & self.shard_mask) as usize)
    }

    /// Hash of `key` and the locked shard that owns it.
    pub(crate) fn route(&self, key: &[u8]) -> (u64, MutexGuard<'_, Shard>) {
        let hash = self.hasher.hash_one(key);
        let idx = ((hash >> SHARD_HASH_SHIFT) & self.shard_mask) as usize;
        (hash, self.shards[idx].0.lock())
    }

    /// Whether `key` could ever be stored (memcached's 250-byte limit).
    pub(crate) fn key_ok(key: &[u8]) -> bool {
        key.len() <= KEY_MAX_LENGTH
    }

    /// `get`/`gets`: the live item under `key`, marking it fetched and most
    /// recently used.
    pub fn get(&self, key: &[u8]) -> Option<ItemView> {
        self.read(key, true, None)
    }

    /// Like [`Store::get`] but leaves LRU position, fetched flag and access
    /// time untouched (meta `u` flag, debugging).
    pub fn peek(&self, key: &[u8]) -> Option<ItemView> {
        self.read(key, false, None)
    }

    /// `gat`/`gats`: fetch and set a new exptime in one step.
    pub fn get_and_touch(&self, key: &[u8], exptime: i64) -> Option<ItemView> {
        self.read(key, true, Some(exptime))
    }

    /// `touch`: set a new exptime. Counts as an access, like memcached
    /// (it marks the item fetched and refreshes its LRU position).
    pub fn touch(&self, key: &[u8], exptime: i64) -> TouchOutcome {
        match self.read(key, true, Some(exptime)) {
            Some(_) => TouchOutcome::Touched,
            None => TouchOutcome::NotFound,
        }
    }

    fn read(&self, key: &[u8], bump: bool, touch: Option<i64>) -> Option<ItemView> {
        if !Self::key_ok(key) {
            return None;
        }
        let env = self.env();
        let (hash, mut shard) = self.route(key);
        let i = shard.find_live(hash, key, &env)?;
        if bump {
            shard.bump(i, env.now);
            let c = shard.class_at(i);
            if touch.is_some() {
                c.touch_hits += 1;
            } else {
                c.get_hits += 1;
            }
        }
        if let Some(exptime) = touch {
            shard.header_mut(i).exptime = absolute_exptime(exptime, env.now);
        }
        shard.view(i)
    }

    /// Remaining lifetime of a live item in seconds, `-1` if it never
    /// expires, `None` if absent. Does not count as an access.
    pub fn ttl(&self, key: &[u8]) -> Option<i64> {
        self.inspect(key, |shard, i, now| remaining_ttl(shard.header(i).exptime, now))
    }

    /// Bytes a live item is charged against the memory limit
    /// ([`item_footprint`](crate::item_footprint)); `None` if absent.
    pub fn item_size(&self, key: &[u8]) -> Option<usize> {
        self.inspect(key, |shard, i, _| shard.footprint(i))
    }

    fn inspect<T>(&self, key: &[u8], f: impl FnOnce(&Shard, u32, u32) -> T) -> Option<T> {
        if !Self::key_ok(key) {
            return None;
        }
        let env = self.env();
        let (hash, mut shard) = self.route(key);
        let i = shard.find_live(hash, key, &env)?;
        Some(f(&shard, i, env.now))
    }

    /// `flush_all [delay]` with memcached's exact `oldest_live` semantics.
    ///
    /// `delay <= 0` hides every item stored or accessed before now. A
    /// positive delay (relative up to 30 days, else an absolute unix time)
    /// schedules the flush: once `now >= start + delay - 1` every item last
    /// stored or accessed at or before that second becomes invisible. Items
    /// are not freed here; they are dropped lazily on access, by
    /// [`Store::sweep`], or reused by inserts (counted as `reclaimed`).
    pub fn flush_all(&self, delay: i64) {
        let now = self.clock.now();
        let plan = plan_flush(delay, now, self.started);
        if plan.take_cas_floor {
            let floor = self.cas.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            self.oldest_cas.store(floor, Ordering::Release);
        }
        self.oldest_live.store(plan.oldest_live, Ordering::Release);
    }

    /// Frees up to roughly `max_items` slots' worth of expired or flushed
    /// items, continuing where the previous call stopped, and returns how
    /// many were freed. Each shard is locked only for its share of the
    /// budget, so a background task can call this often with a small budget.
    pub fn sweep(&self, max_items: usize) -> usize {
        self.sweep_as(max_items, Sweeper::Crawler)
    }

    /// [`Store::sweep`] as memcached's LRU maintainer does it in the
    /// background: what it frees is counted `reclaimed` (memory of an
    /// expired item given back for new ones), not `crawler_reclaimed`, which
    /// stays for an operator's explicit crawl.
    pub fn reclaim_expired(&self, max_items: usize) -> usize {
        self.sweep_as(max_items, Sweeper::Maintainer)
    }

    fn sweep_as(&self, max_items: usize, by: Sweeper) -> usize {
        let per_shard = max_items.div_ceil(self.shards.len());
        let mut freed = 0;
        for cell in self.shards.iter() {
            let env = self.env();
            freed += cell.0.lock().sweep(per_shard, &env, by);
        }
        freed
    }

    /// Number of stored items (including expired ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|c| c.0.lock().len()).sum()
    }

    /// True when no items are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes currently charged against the memory limit.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|c| c.0.lock().used()).sum()
    }

    /// Snapshot of the store's counters.
    pub fn stats(&self) -> StoreStats {
        let mut s = StoreStats { limit_maxbytes: self.memory_limit.load(Ordering::Relaxed), ..StoreStats::default() };
        for cell in self.shards.iter() {
            let shard = cell.0.lock();
            let c = &shard.counters;
            s.curr_items += shard.len() as u64;
            s.bytes += shard.used() as u64;
            s.total_items += c.total_items;
            s.evictions += c.evictions;
            s.evicted_unfetched += c.evicted_unfetched;
            s.expired_unfetched += c.expired_unfetched;
            s.reclaimed += c.reclaimed;
            s.crawler_reclaimed += c.crawler_reclaimed;
            s.get_expired += c.get_expired;
            s.get_flushed += c.get_flushed;
            s.hash_bytes += shard.index_bytes() as u64;
            s.slab_bytes += shard.slab_bytes() as u64;
        }
        s
    }

    /// Every slab class that holds items or saw any event, with its counters
    /// summed over the shards and its `age` (see [`crate::classes`]).
    pub fn class_stats(&self) -> Vec<ClassStats> {
        let n = class_count();
        let mut sums = vec![ClassCounters::default(); n];
        let mut ages = vec![None; n];
        let now = clamp_u32(self.clock.now());
        for cell in self.shards.iter() {
            let shard = cell.0.lock();
            shard.classes.add_into(&mut sums);
            shard.class_ages(now, &mut ages);
        }
        sums.into_iter()
            .zip(ages)
            .enumerate()
            .filter(|(_, (c, _))| *c != ClassCounters::default())
            .map(|(i, (counters, age))| ClassStats {
                id: i + 1,
                chunk_size: chunk_size(i + 1),
                age: age.unwrap_or(0),
                counters,
            })
            .collect()
    }

    /// Zeroes the per-class event counters (`stats reset`); what is held
    /// stays counted.
    pub fn reset_class_stats(&self) {
        for cell in self.shards.iter() {
            cell.0.lock().classes.reset();
        }
    }

    /// Each shard's (used bytes, limit), for tests and diagnostics.
    pub fn shard_usage(&self) -> Vec<(usize, usize)> {
        self.shards
            .iter()
            .map(|c| {
                let s = c.0.lock();
                (s.used(), s.limit())
            })
            .collect()
    }

    /// Live items of shard `idx` (of [`Store::shard_count`]), least recently
    /// used first, collected under its lock as shared views (no value is
    /// copied); empty for an index out of range.
    pub fn shard_items(&self, idx: usize) -> Vec<LiveItem> {
        let Some(cell) = self.shard_cell(idx) else { return Vec::new() };
        let env = self.env();
        cell.lock().live_items(&env)
    }

    /// Shard `idx`'s lock, `None` for an index out of range.
    pub(crate) fn shard_cell(&self, idx: usize) -> Option<&Mutex<Shard>> {
        self.shards.get(idx).map(|c| &c.0)
    }
}

#[cfg(test)]
impl Store {
    /// Asserts every shard's internal invariants (index, LRU and byte
    /// accounting agree, usage within the limit).
    pub(crate) fn check_shards(&self) {
        for cell in self.shards.iter() {
            cell.0.lock().check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArithRequest, DeleteRequest, ManualClock, StoreMode};

    /// Deterministic xorshift so the test needs no extra dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_workload_keeps_internal_invariants() {
        let clock = Arc::new(ManualClock::default());
        let cfg = StoreConfig { memory_limit: 64 * 1024, max_item_size: 4096, shards: 4, evict: true };
        let store = Store::with_clock(cfg, clock.clone()).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let value = vec![b'7'; 5000];
        for step in 0..20_000 {
            let key = format!("key{}", rng.below(300));
            let key = key.as_bytes();
            let len = rng.below(3000) as usize;
            let ttl = rng.below(4) as i64 - 1;
            match rng.below(10) {
                0 => {
                    store.store(StoreMode::Set, key, 0, ttl * 5, &value[..len], 0);
                }
                1 => {
                    store.store(StoreMode::Append, key, 0, 0, &value[..len % 300], 0);
                }
                2 => {
                    store.store(StoreMode::Prepend, key, 0, 0, &value[..len % 300], 0);
                }
                3 => {
                    store.arith(key, &ArithRequest::incr(rng.next()));
                }
                4 => {
                    store.delete(key, None);
                }
                5 => {
                    store.delete_with(key, &DeleteRequest { invalidate: true, ..DeleteRequest::default() });
                }
                6 => {
                    store.touch(key, ttl * 3);
                }
                7 => {
                    store.sweep(16);
                }
                8 => clock.advance(1),
                _ => {
                    store.get(key);
                }
            }
            if step % 97 == 0 {
                store.check_shards();
            }
        }
        store.check_shards();
        assert!(store.stats().evictions > 0, "workload should have filled the store");
    }
}
