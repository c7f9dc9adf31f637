//! Dumping and reloading items (the server saves them on shutdown and
//! loads them on start).

use crate::compat::memcached_item_size;
use crate::exptime::{clamp_u32, is_expired};
use crate::item::{ItemRecord, LiveItem, encode};
use crate::mutation::StoreOutcome;
use crate::store::Store;

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

    /// Owned copies of every live item (see [`Store::for_each_item`]).
    pub fn snapshot(&self) -> Vec<ItemRecord> {
        let mut out = Vec::new();
        self.for_each_item(|item| out.push(item.to_record()));
        out
    }

    /// Loads a saved item as-is: flags, absolute exptime and CAS are kept,
    /// any current item under the key is replaced, and the store's CAS
    /// counter is raised so new uniques stay above the loaded one. A record
    /// with CAS 0 gets a fresh unique. Already expired records are skipped
    /// (`NotStored`); oversized ones are `TooLarge`.
    pub fn insert_raw(&self, rec: &ItemRecord) -> StoreOutcome {
        if !Self::key_ok(&rec.key)
            || memcached_item_size(rec.key.len(), rec.value.len(), rec.flags) > self.config().max_item_size
        {
            return StoreOutcome::TooLarge;
        }
        self.observe_cas(rec.cas);
        let env = self.env();
        let exptime = clamp_u32(rec.exptime);
        if is_expired(exptime, env.now) {
            return StoreOutcome::NotStored;
        }
        let cas = if rec.cas == 0 { env.next_cas() } else { rec.cas };
        let data = encode(&rec.key, rec.flags, rec.key_binary, [&rec.value, b""]);
        let (hash, mut shard) = self.route(&rec.key);
        let stored = match shard.find(hash, &rec.key) {
            Some(i) => shard.replace(i, data, exptime, cas, &env).is_ok(),
            None => shard.insert(hash, data, exptime, cas, &env).is_ok(),
        };
        if stored { StoreOutcome::Stored } else { StoreOutcome::NoMemory }
    }
}
