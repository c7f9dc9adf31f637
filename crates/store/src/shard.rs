//! One independently locked partition of the store: hash index, header
//! slab, LRU list, and byte accounting against the shard's share of the
//! memory limit.
//!
//! Everything here runs under the shard's mutex; methods are the primitive
//! steps (find, insert, replace, remove, bump) that `Store` composes into
//! memcached commands.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::classes::ClassTable;
use crate::exptime::{is_expired, is_flushed};
use crate::item::{ItemView, LiveItem, data_footprint, key_of};
use crate::lru::Lru;
use crate::slab::{Bit, Header, NIL, Slab};
use crate::stats::Counters;

/// How many slots from the LRU tail an insert inspects for an already dead
/// item before evicting a live one (memcached's `lru_pull_tail` searches 5).
const TAIL_SEARCH: usize = 5;

/// The moment an operation runs at: the time plus the flush settings,
/// read once so one operation sees one consistent view.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    pub(crate) now: u32,
    pub(crate) oldest_live: u64,
    pub(crate) oldest_cas: u64,
    pub(crate) cas_counter: &'a AtomicU64,
}

/// Why an item is no longer visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Death {
    Flushed,
    Expired,
}

impl Env<'_> {
    /// Hands out the next CAS unique from the store-wide counter.
    pub(crate) fn next_cas(&self) -> u64 {
        self.cas_counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Whether (and why) an item is invisible; flush is checked first, as in
    /// memcached's `do_item_get`, which decides which counter is bumped.
    pub(crate) fn death(&self, h: &Header) -> Option<Death> {
        if is_flushed(h.time, h.cas, self.now, self.oldest_live, self.oldest_cas) {
            Some(Death::Flushed)
        } else if is_expired(h.exptime, self.now) {
            Some(Death::Expired)
        } else {
            None
        }
    }
}

/// Who frees dead items, which decides how they are counted (memcached's
/// two background threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweeper {
    /// The LRU crawler: `crawler_reclaimed`, `crawler_items_checked`.
    Crawler,
    /// The LRU maintainer, which frees what it finds dead at the tails and
    /// counts it `reclaimed`, as a store reusing the memory would.
    Maintainer,
}

/// The shard could not make room for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoMemory;

/// One partition of the store.
#[derive(Debug)]
pub(crate) struct Shard {
    index: HashTable<u32>,
    slab: Slab,
    lru: Lru,
    hasher: DefaultHashBuilder,
    used: usize,
    limit: usize,
    evict: bool,
    pub(crate) counters: Counters,
    /// The same events and the items held, by memcached slab class.
    pub(crate) classes: ClassTable,
    sweep_cursor: u32,
}

impl Shard {
    pub(crate) fn new(limit: usize, evict: bool, hasher: DefaultHashBuilder) -> Self {
        Self {
            index: HashTable::new(),
            slab: Slab::new(),
            lru: Lru::new(),
            hasher,
            used: 0,
            limit,
            evict,
            counters: Counters::default(),
            classes: ClassTable::new(),
            sweep_cursor: 0,
        }
    }

    pub(crate) fn header(&self, i: u32) -> &Header {
        self.slab.get(i)
    }

    pub(crate) fn header_mut(&mut self, i: u32) -> &mut Header {
        self.slab.get_mut(i)
    }

    /// Bytes charged for the items in this shard.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// This shard's share of the memory limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Number of stored items (live or not yet reclaimed).
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn index_bytes(&self) -> usize {
        self.index.allocation_size()
    }

    pub(crate) fn slab_bytes(&self) -> usize {
        self.slab.allocated_bytes()
    }

    /// A read view of slot `i`.
    pub(crate) fn view(&self, i: u32) -> Option<ItemView> {
        let h = self.slab.get(i);
        h.shared().map(|d| ItemView::new(d, h.cas))
    }

    /// Bytes charged for slot `i`.
    pub(crate) fn footprint(&self, i: u32) -> usize {
        data_footprint(self.slab.get(i).data().len())
    }

    /// The class counters of the item at slot `i`.
    pub(crate) fn class_at(&mut self, i: u32) -> &mut crate::classes::ClassCounters {
        self.classes.of(self.slab.get(i).data())
    }

    /// Finds `key` regardless of expiry.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let slab = &self.slab;
        self.index.find(hash, |&i| key_of(slab.get(i).data()) == key).copied()
    }

    /// Finds a visible item, lazily removing it if it has expired or been
    /// flushed (memcached's `do_item_get` without the LRU bump).
    pub(crate) fn find_live(&mut self, hash: u64, key: &[u8], env: &Env<'_>) -> Option<u32> {
        let i = self.find(hash, key)?;
        match env.death(self.slab.get(i)) {
            None => Some(i),
            Some(death) => {
                match death {
                    Death::Flushed => self.counters.get_flushed += 1,
                    Death::Expired => self.counters.get_expired += 1,
                }
                self.remove(i);
                None
            }
        }
    }

    /// Like [`Shard::find_live`], for a store about to write `key`: a dead
    /// item found under it is freed as memory the new value reuses
    /// (`reclaimed`, as memcached counts the dead item its allocation takes).
    pub(crate) fn find_live_to_store(&mut self, hash: u64, key: &[u8], env: &Env<'_>) -> Option<u32> {
        let i = self.find(hash, key)?;
        if env.death(self.slab.get(i)).is_none() {
            return Some(i);
        }
        self.reclaim(i);
        None
    }

    /// memcached's `do_item_bump` for a fetch or touch: the first access
    /// only marks the item fetched, later ones refresh its access time (this
    /// is what meta `h` and `l` report). The LRU position is refreshed on
    /// every access so eviction order is true least-recently-used.
    pub(crate) fn bump(&mut self, i: u32, now: u32) {
        let h = self.slab.get_mut(i);
        if h.bit(Bit::Fetched) {
            h.time = now;
        } else {
            h.set_bit(Bit::Fetched, true);
        }
        self.lru.move_to_front(&mut self.slab, i);
    }

    /// memcached's `do_item_update`: refresh access time and LRU position
    /// without counting as a fetch (used by `add` on an existing key and
    /// in-place incr/decr).
    pub(crate) fn update(&mut self, i: u32, now: u32) {
        self.slab.get_mut(i).time = now;
        self.lru.move_to_front(&mut self.slab, i);
    }

    /// Links a new item for a key that is not present.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        data: Arc<[u8]>,
        exptime: u32,
        cas: u64,
        env: &Env<'_>,
    ) -> Result<u32, NoMemory> {
        let cost = data_footprint(data.len());
        if cost > self.limit || !self.make_room(cost, NIL, env) {
            return Err(NoMemory);
        }
        while self.slab.is_full() {
            if !self.free_tail(env, NIL) {
                return Err(NoMemory);
            }
        }
        let i = self.slab.alloc(data, exptime, env.now, cas).ok_or(NoMemory)?;
        self.classes.linked(self.slab.get(i).data());
        self.lru.push_front(&mut self.slab, i);
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.insert_unique(hash, i, |&j| hasher.hash_one(key_of(slab.get(j).data())));
        self.used += cost;
        self.counters.total_items += 1;
        Ok(i)
    }

    /// Stores a new value for the key at slot `i` (memcached's
    /// `item_replace`): new buffer, CAS and exptime, access time now, state
    /// bits cleared, most recently used. The index entry is reused because
    /// the key is unchanged. On `NoMemory` the old value is left in place.
    pub(crate) fn replace(
        &mut self,
        i: u32,
        data: Arc<[u8]>,
        exptime: u32,
        cas: u64,
        env: &Env<'_>,
    ) -> Result<(), NoMemory> {
        let new_cost = data_footprint(data.len());
        let old_cost = self.footprint(i);
        if new_cost > self.limit {
            return Err(NoMemory);
        }
        // Move to the head first so making room can never evict `i` itself.
        self.lru.move_to_front(&mut self.slab, i);
        if new_cost > old_cost && !self.make_room(new_cost - old_cost, i, env) {
            return Err(NoMemory);
        }
        self.classes.unlinked(self.slab.get(i).data());
        self.classes.linked(&data);
        let h = self.slab.get_mut(i);
        h.replace_data(data);
        h.exptime = exptime;
        h.cas = cas;
        h.time = env.now;
        h.clear_bits();
        self.used = self.used - old_cost + new_cost;
        self.counters.total_items += 1;
        Ok(())
    }

    /// Unlinks and frees slot `i`.
    pub(crate) fn remove(&mut self, i: u32) {
        let (hash, cost) = {
            let data = self.slab.get(i).data();
            self.classes.unlinked(data);
            (self.hasher.hash_one(key_of(data)), data_footprint(data.len()))
        };
        // Match on the slot number: cheaper than comparing keys.
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.lru.unlink(&mut self.slab, i);
        self.used -= cost;
        self.slab.release(i);
    }

    /// Changes this shard's share of the memory limit, evicting from the LRU
    /// tail until what is stored fits (or nothing evictable is left).
    pub(crate) fn set_limit(&mut self, limit: usize, env: &Env<'_>) {
        self.limit = limit;
        self.make_room(0, NIL, env);
    }

    /// Frees LRU-tail items until `need` more bytes fit under the limit.
    fn make_room(&mut self, need: usize, protect: u32, env: &Env<'_>) -> bool {
        while self.used + need > self.limit {
            if !self.free_tail(env, protect) {
                return false;
            }
        }
        true
    }

    /// Frees one item from the tail end: an already dead item among the
    /// last few if there is one (memory "reclaimed"), else the least recently
    /// used live item ("evicted") when evictions are enabled.
    fn free_tail(&mut self, env: &Env<'_>, protect: u32) -> bool {
        let Some(tail) = self.lru.tail() else {
            return false;
        };
        let mut cur = Some(tail);
        for _ in 0..TAIL_SEARCH {
            let Some(i) = cur else { break };
            if i != protect && env.death(self.slab.get(i)).is_some() {
                self.reclaim(i);
                return true;
            }
            cur = Lru::newer(&self.slab, i);
        }
        if tail == protect || !self.evict {
            return false;
        }
        self.counters.evictions += 1;
        let h = self.slab.get(tail);
        let unfetched = !h.bit(Bit::Fetched);
        let (nonzero, idle) = (h.exptime != 0, env.now.saturating_sub(h.time));
        if unfetched {
            self.counters.evicted_unfetched += 1;
        }
        let c = self.classes.of(self.slab.get(tail).data());
        c.evicted += 1;
        c.evicted_nonzero += u64::from(nonzero);
        c.evicted_unfetched += u64::from(unfetched);
        c.evicted_time = u64::from(idle);
        self.remove(tail);
        true
    }

    /// Frees a dead (expired or flushed) item so its memory serves a new
    /// one: memcached's `reclaimed`.
    pub(crate) fn reclaim(&mut self, i: u32) {
        self.counters.reclaimed += 1;
        let unfetched = !self.slab.get(i).bit(Bit::Fetched);
        if unfetched {
            self.counters.expired_unfetched += 1;
        }
        let c = self.classes.of(self.slab.get(i).data());
        c.reclaimed += 1;
        c.expired_unfetched += u64::from(unfetched);
        self.remove(i);
    }

    /// Examines up to `budget` slots from where the last sweep stopped and
    /// frees the expired or flushed items among them, counted as `by` counts
    /// them.
    pub(crate) fn sweep(&mut self, budget: usize, env: &Env<'_>, by: Sweeper) -> usize {
        let high_water = self.slab.high_water();
        let steps = budget.min(high_water as usize);
        let mut freed = 0;
        for _ in 0..steps {
            if self.sweep_cursor >= high_water {
                self.sweep_cursor = 0;
            }
            let i = self.sweep_cursor;
            self.sweep_cursor += 1;
            let h = self.slab.get(i);
            if !h.is_occupied() {
                continue;
            }
            let (dead, unfetched) = (env.death(h).is_some(), !h.bit(Bit::Fetched));
            if by == Sweeper::Maintainer {
                if dead {
                    self.reclaim(i);
                    freed += 1;
                }
                continue;
            }
            let c = self.classes.of(self.slab.get(i).data());
            c.crawler_items_checked += 1;
            if dead {
                c.crawler_reclaimed += 1;
                c.expired_unfetched += u64::from(unfetched);
                self.counters.crawler_reclaimed += 1;
                self.counters.expired_unfetched += u64::from(unfetched);
                self.remove(i);
                freed += 1;
            }
        }
        freed
    }

    /// Seconds since the last access of each class's least recently used
    /// item (memcached's per-class `age`), by class id − 1: the LRU is walked
    /// from its tail until every class that holds items has been seen.
    pub(crate) fn class_ages(&self, now: u32, ages: &mut [Option<u64>]) {
        let mut missing = self.classes.occupied();
        let mut seen = vec![false; ages.len()];
        let mut cur = self.lru.tail();
        while let (Some(i), true) = (cur, missing > 0) {
            let h = self.slab.get(i);
            let id = crate::classes::class_of(crate::classes::ntotal_of(h.data())) - 1;
            if let Some(false) = seen.get(id) {
                seen[id] = true;
                missing -= 1;
                let age = u64::from(now.saturating_sub(h.time));
                ages[id] = Some(ages[id].map_or(age, |a| a.max(age)));
            }
            cur = Lru::newer(&self.slab, i);
        }
    }

    /// Live items from least to most recently used, so re-inserting them in
    /// this order rebuilds the same LRU order.
    pub(crate) fn live_items(&self, env: &Env<'_>) -> Vec<LiveItem> {
        self.live_items_from(env, self.lru.tail(), usize::MAX).0
    }

    /// Up to `max` live items walking towards the LRU head from slot `from`
    /// (visited slots count towards `max` dead or alive), and the slot to go
    /// on from, `None` once the head was passed.
    pub(crate) fn live_items_from(&self, env: &Env<'_>, from: Option<u32>, max: usize) -> (Vec<LiveItem>, Option<u32>) {
        let mut out = Vec::with_capacity(self.index.len().min(max));
        let mut cur = from;
        let mut visited = 0;
        while let Some(i) = cur {
            if visited == max {
                break;
            }
            visited += 1;
            if i >= self.slab.high_water() {
                // A cursor from before the shard changed; end the walk.
                return (out, None);
            }
            let h = self.slab.get(i);
            if env.death(h).is_none() {
                if let Some(view) = self.view(i) {
                    out.push(LiveItem {
                        view,
                        exptime: u64::from(h.exptime),
                        last_access: u64::from(h.time),
                        fetched: h.bit(Bit::Fetched),
                    });
                }
            }
            cur = Lru::newer(&self.slab, i);
        }
        (out, cur)
    }

    /// The least recently used slot, where a walk of the items starts.
    pub(crate) fn lru_tail(&self) -> Option<u32> {
        self.lru.tail()
    }

    /// Checks the internal invariants; used by tests.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut n = 0;
        let mut bytes = 0;
        let mut cur = self.lru.tail();
        while let Some(i) = cur {
            n += 1;
            bytes += self.footprint(i);
            let key = key_of(self.slab.get(i).data());
            assert_eq!(self.find(self.hasher.hash_one(key), key), Some(i));
            cur = Lru::newer(&self.slab, i);
        }
        assert_eq!(n, self.index.len());
        assert_eq!(bytes, self.used);
        let mut classes = vec![crate::classes::ClassCounters::default(); crate::classes::class_count()];
        self.classes.add_into(&mut classes);
        assert_eq!(classes.iter().map(|c| c.number).sum::<u64>(), n as u64, "items by class");
        assert!(self.used <= self.limit);
    }
}
