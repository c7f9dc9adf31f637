//! Dumping and reloading items (the server saves them on shutdown and
//! loads them on start).

use crate::compat::memcached_item_size;
use crate::exptime::{clamp_u32, is_expired};
use crate::item::{ItemRecord, LiveItem, encode};
use crate::mutation::StoreOutcome;
use crate::store::Store;

/// Where a paged walk of one shard's items stands (see [`Store::items_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemCursor {
    shard: usize,
    slot: Option<u32>,
    started: bool,
}

impl ItemCursor {
    /// A walk of shard `shard` (of [`Store::shard_count`]) from its least
    /// recently used item.
    pub fn start(shard: usize) -> ItemCursor {
        ItemCursor { shard, slot: None, started: false }
    }

    /// The shard this cursor walks.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

/// One saved item as a loader reads it (see [`Store::insert_saved_batch`]).
#[derive(Debug, Clone, Copy)]
pub struct SavedItem<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// Absolute unix expiry; 0 = never.
    pub exptime: u64,
    /// CAS unique.
    pub cas: u64,
    /// The key was given base64-encoded.
    pub key_binary: bool,
}

impl Store {
    /// Calls `f` for every live item, shard by shard, least recently used
    /// first within a shard. Each shard is locked only while its items are
    /// collected as cheap shared views; `f` runs without any lock held, so it
    /// may block (e.g. write to disk) or even use the store.
    pub fn for_each_item(&self, mut f: impl FnMut(&LiveItem)) {
        for idx in 0..self.shard_count() {
            // Collected under the lock, walked after it is released.
            for item in &self.shard_items(idx) {
                f(item);
            }
        }
    }

    /// Up to `max` live items of the cursor's shard, least recently used
    /// first, as shared views (no value is copied), and the cursor to go on
    /// with, `None` once the shard is done. The shard is locked only while
    /// one page is collected, so a walk of a large store holds little memory
    /// at a time. The walk is exact while nothing writes the store (a server
    /// saving at shutdown); under concurrent writes it may miss or repeat
    /// items, never invent one, and always ends.
    pub fn items_page(&self, cursor: ItemCursor, max: usize) -> (Vec<LiveItem>, Option<ItemCursor>) {
        let Some(cell) = self.shard_cell(cursor.shard) else { return (Vec::new(), None) };
        let env = self.env();
        let shard = cell.lock();
        let from = if cursor.started { cursor.slot } else { shard.lru_tail() };
        let (items, next) = shard.live_items_from(&env, from, max.max(1));
        (items, next.map(|slot| ItemCursor { shard: cursor.shard, slot: Some(slot), started: true }))
    }

    /// Owned copies of every live item (see [`Store::for_each_item`]).
    pub fn snapshot(&self) -> Vec<ItemRecord> {
        let mut out = Vec::new();
        self.for_each_item(|item| out.push(item.to_record()));
        out
    }

    /// Raises the CAS counter to at least `cas`, so every unique handed out
    /// from now on is above it (a restarted server passes the last unique it
    /// had handed out, so no old `gets` token can match a new item).
    pub fn raise_cas(&self, cas: u64) {
        self.observe_cas(cas);
    }

    /// Loads a saved item as-is: flags, absolute exptime and CAS are kept,
    /// any current item under the key is replaced, and the store's CAS
    /// counter is raised so new uniques stay above the loaded one. A record
    /// with CAS 0 gets a fresh unique. Already expired records are skipped
    /// (`NotStored`); oversized ones are `TooLarge`. Loaded least recently
    /// used first, items keep their LRU order; when they do not all fit, the
    /// least recently used are evicted (`NoMemory` without eviction).
    pub fn insert_raw(&self, rec: &ItemRecord) -> StoreOutcome {
        self.insert_saved(&rec.key, &rec.value, rec.flags, rec.exptime, rec.cas, rec.key_binary)
    }

    /// [`Store::insert_saved`] for many items in order, with one clock read,
    /// each key hashed once: items whose store shard `keep_shard` refuses
    /// are skipped (loaders that split the work by shard keep each shard's
    /// order), and `outcome` hears how each kept one went. Call
    /// [`Store::raise_cas`] with the last CAS handed out before the save
    /// first; an item above it still raises the counter.
    pub fn insert_saved_batch<'a>(
        &self,
        items: impl IntoIterator<Item = SavedItem<'a>>,
        keep_shard: impl Fn(usize) -> bool,
        mut outcome: impl FnMut(StoreOutcome),
    ) {
        let env = self.env();
        let max_item = self.config().max_item_size;
        for it in items {
            let (hash, idx) = self.shard_index(it.key);
            if !keep_shard(idx) {
                continue;
            }
            if it.key.is_empty()
                || !Self::key_ok(it.key)
                || memcached_item_size(it.key.len(), it.value.len(), it.flags) > max_item
            {
                outcome(StoreOutcome::TooLarge);
                continue;
            }
            if it.cas > self.last_cas() {
                self.observe_cas(it.cas);
            }
            let exptime = clamp_u32(it.exptime);
            if is_expired(exptime, env.now) {
                outcome(StoreOutcome::NotStored);
                continue;
            }
            let cas = if it.cas == 0 { env.next_cas() } else { it.cas };
            let data = encode(it.key, it.flags, it.key_binary, [it.value, b""]);
            let Some(cell) = self.shard_cell(idx) else { continue };
            let mut shard = cell.lock();
            let stored = match shard.find(hash, it.key) {
                Some(i) => shard.replace(i, data, exptime, cas, &env).is_ok(),
                None => shard.insert(hash, data, exptime, cas, &env).is_ok(),
            };
            outcome(if stored { StoreOutcome::Stored } else { StoreOutcome::NoMemory });
        }
    }

    /// [`Store::insert_raw`] from borrowed parts (no owned record needed).
    pub fn insert_saved(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u64,
        cas: u64,
        key_binary: bool,
    ) -> StoreOutcome {
        let item = SavedItem { key, value, flags, exptime, cas, key_binary };
        let mut outcome = StoreOutcome::NoMemory;
        self.insert_saved_batch([item], |_| true, |o| outcome = o);
        outcome
    }
}
