//! Items counted by the slab class memcached would have put them in.
//!
//! The store has no slab classes: every item is one allocation of its own
//! size. But operators, dashboards and the `memcached_exporter` read
//! `stats items` and `stats slabs`, which are per class. So each shard
//! keeps, per class of memcached 1.6.18's default table (`-n 48 -f 1.25`,
//! `slab_chunk_max` 512 KiB), how many items it holds, the bytes memcached
//! would have requested for them (`ITEM_ntotal`), what happened to them
//! (evicted, reclaimed, …) and the hits on them — so `used_chunks`,
//! `number`, `age` and `evicted` mean what they mean on memcached. Pages and
//! chunks are reported as memcached would have allocated them for the same
//! items (one 1 MiB page per `chunks_per_page` items), not as memory this
//! store holds.

use crate::compat::{MEMCACHED_ITEM_HEADER, SLAB_CHUNK_SIZE_MAX};
use crate::item::layout;
use std::sync::LazyLock;

/// memcached's slab page: every class allocates memory a page at a time.
pub const SLAB_PAGE_SIZE: usize = 1024 * 1024;

/// Class ids run from 1 to this (memcached 1.6.18's default table has 39).
pub const MAX_CLASS: usize = 63;

/// The chunk size of each class, index 0 = class 1 (memcached's
/// `slabs_init`: start at `sizeof(item) + chunk_size`, align to 8, grow by
/// the factor while below `slab_chunk_max / factor`, then one last class of
/// `slab_chunk_max`).
static CHUNK_SIZES: LazyLock<Vec<usize>> = LazyLock::new(|| {
    let factor = 1.25_f64;
    let mut sizes = Vec::new();
    let mut chunk = MEMCACHED_ITEM_HEADER + 48;
    while (chunk as f64) < SLAB_CHUNK_SIZE_MAX as f64 / factor && sizes.len() < MAX_CLASS - 1 {
        if chunk % 8 != 0 {
            chunk += 8 - chunk % 8;
        }
        sizes.push(chunk);
        // The C code multiplies an unsigned int by a double and truncates.
        chunk = (chunk as f64 * factor) as usize;
    }
    sizes.push(SLAB_CHUNK_SIZE_MAX);
    sizes
});

/// Number of classes in the table (39 with memcached's defaults).
pub fn class_count() -> usize {
    CHUNK_SIZES.len()
}

/// The chunk size of class `id` (1-based); 0 for an id outside the table.
pub fn chunk_size(id: usize) -> usize {
    id.checked_sub(1).and_then(|i| CHUNK_SIZES.get(i)).copied().unwrap_or(0)
}

/// Chunks of class `id` in one page.
pub fn chunks_per_page(id: usize) -> usize {
    match chunk_size(id) {
        0 => 0,
        c => SLAB_PAGE_SIZE / c,
    }
}

/// The class of an item of memcached size `ntotal` (`ITEM_ntotal`), 1-based.
/// Items above the largest chunk are "chunked" by memcached; they are
/// counted in the largest class.
pub fn class_of(ntotal: usize) -> usize {
    CHUNK_SIZES.partition_point(|&c| c < ntotal).min(CHUNK_SIZES.len() - 1) + 1
}

/// The slab class id memcached 1.6.18 would put an item of `size` bytes
/// ([`memcached_item_size`]) in, with default `-n 48 -f 1.25` and the given
/// `-I` limit; `None` when memcached would refuse the item as too large.
///
/// Only needed for byte-exact `me` (meta debug) output.
pub fn memcached_slab_class(size: usize, item_size_max: usize) -> Option<u32> {
    if size == 0 || size > item_size_max {
        return None;
    }
    // Everything bigger than the largest chunk lands in the largest class.
    u32::try_from(class_of(size)).ok()
}

/// memcached's `ITEM_ntotal` of an encoded item buffer (CAS on).
pub(crate) fn ntotal_of(data: &[u8]) -> usize {
    let l = layout(data);
    let key_len = l.value_start.saturating_sub(l.key_start);
    let value_len = data.len().saturating_sub(l.value_start);
    crate::compat::memcached_item_size(key_len, value_len, l.flags)
}

/// What is counted per class; each is a field of `stats items` or
/// `stats slabs` under the same name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClassCounters {
    /// Items held now (`number`, `used_chunks`).
    pub number: u64,
    /// Sum of the held items' `ITEM_ntotal` (`mem_requested`).
    pub mem_requested: u64,
    /// Live items evicted to make room.
    pub evicted: u64,
    /// Evicted items that had an expiry time.
    pub evicted_nonzero: u64,
    /// Seconds since the last access of the last evicted item.
    pub evicted_time: u64,
    /// Evicted items never fetched.
    pub evicted_unfetched: u64,
    /// Dead (expired or flushed) items never fetched, freed.
    pub expired_unfetched: u64,
    /// Stores that found no memory.
    pub outofmemory: u64,
    /// Dead items whose memory a store reused.
    pub reclaimed: u64,
    /// Dead items freed by the background sweep.
    pub crawler_reclaimed: u64,
    /// Items the background sweep looked at.
    pub crawler_items_checked: u64,
    /// Fetches that found an item of this class.
    pub get_hits: u64,
    /// Stores of an item of this class.
    pub cmd_set: u64,
    /// Deletes that found an item of this class.
    pub delete_hits: u64,
    /// `incr` hits.
    pub incr_hits: u64,
    /// `decr` hits.
    pub decr_hits: u64,
    /// `cas` that matched.
    pub cas_hits: u64,
    /// `cas` that did not match.
    pub cas_badval: u64,
    /// `touch`/`gat` hits.
    pub touch_hits: u64,
}

impl ClassCounters {
    fn add(&mut self, o: &ClassCounters) {
        self.number += o.number;
        self.mem_requested += o.mem_requested;
        self.evicted += o.evicted;
        self.evicted_nonzero += o.evicted_nonzero;
        self.evicted_time = self.evicted_time.max(o.evicted_time);
        self.evicted_unfetched += o.evicted_unfetched;
        self.expired_unfetched += o.expired_unfetched;
        self.outofmemory += o.outofmemory;
        self.reclaimed += o.reclaimed;
        self.crawler_reclaimed += o.crawler_reclaimed;
        self.crawler_items_checked += o.crawler_items_checked;
        self.get_hits += o.get_hits;
        self.cmd_set += o.cmd_set;
        self.delete_hits += o.delete_hits;
        self.incr_hits += o.incr_hits;
        self.decr_hits += o.decr_hits;
        self.cas_hits += o.cas_hits;
        self.cas_badval += o.cas_badval;
        self.touch_hits += o.touch_hits;
    }

    /// Zeroes what memcached's `stats reset` zeroes: the event counters,
    /// not what is held.
    fn reset(&mut self) {
        *self = ClassCounters { number: self.number, mem_requested: self.mem_requested, ..ClassCounters::default() };
    }
}

/// One class in a [`Store::class_stats`](crate::Store::class_stats) report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClassStats {
    /// Class id, 1-based.
    pub id: usize,
    /// Its chunk size.
    pub chunk_size: usize,
    /// Seconds since the last access of its least recently used item (`age`).
    pub age: u64,
    /// The counters, summed over the store's shards.
    pub counters: ClassCounters,
}

impl ClassStats {
    /// Pages memcached would hold for these items.
    pub fn total_pages(&self) -> u64 {
        let per_page = chunks_per_page(self.id) as u64;
        if per_page == 0 { 0 } else { self.counters.number.div_ceil(per_page) }
    }

    /// Chunks in those pages.
    pub fn total_chunks(&self) -> u64 {
        self.total_pages() * chunks_per_page(self.id) as u64
    }
}

/// Per-class counters of one shard, indexed by class id − 1.
#[derive(Debug, Clone)]
pub(crate) struct ClassTable {
    classes: Vec<ClassCounters>,
}

impl ClassTable {
    pub(crate) fn new() -> Self {
        ClassTable { classes: vec![ClassCounters::default(); class_count()] }
    }

    /// The counters of the class an encoded item buffer belongs to.
    pub(crate) fn of(&mut self, data: &[u8]) -> &mut ClassCounters {
        self.by_size(ntotal_of(data))
    }

    /// The counters of the class for memcached size `ntotal`.
    pub(crate) fn by_size(&mut self, ntotal: usize) -> &mut ClassCounters {
        let i = class_of(ntotal) - 1;
        &mut self.classes[i]
    }

    /// An item came in.
    pub(crate) fn linked(&mut self, data: &[u8]) {
        let n = ntotal_of(data);
        let c = self.by_size(n);
        c.number += 1;
        c.mem_requested += n as u64;
    }

    /// An item went away.
    pub(crate) fn unlinked(&mut self, data: &[u8]) {
        let n = ntotal_of(data);
        let c = self.by_size(n);
        c.number = c.number.saturating_sub(1);
        c.mem_requested = c.mem_requested.saturating_sub(n as u64);
    }

    pub(crate) fn add_into(&self, out: &mut [ClassCounters]) {
        for (o, c) in out.iter_mut().zip(&self.classes) {
            o.add(c);
        }
    }

    pub(crate) fn reset(&mut self) {
        self.classes.iter_mut().for_each(ClassCounters::reset);
    }

    /// Classes that hold items now.
    pub(crate) fn occupied(&self) -> usize {
        self.classes.iter().filter(|c| c.number > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::memcached_item_size;

    #[test]
    fn the_table_is_memcacheds() {
        // `memcached -vv` 1.6.18: class 1 is 96 bytes, 10922 per page; class
        // 4 is 192; class 39 is 524288; 39 classes.
        assert_eq!(class_count(), 39);
        assert_eq!((chunk_size(1), chunks_per_page(1)), (96, 10922));
        assert_eq!((chunk_size(4), chunks_per_page(4)), (192, 5461));
        assert_eq!(chunk_size(38), 394_840);
        assert_eq!(chunk_size(39), 524_288);
        assert_eq!(chunk_size(0), 0);
        assert_eq!(chunk_size(40), 0);
    }

    #[test]
    fn an_item_goes_to_the_smallest_chunk_that_holds_it() {
        for id in 1..class_count() {
            assert_eq!(class_of(chunk_size(id)), id);
            assert_eq!(class_of(chunk_size(id) + 1), id + 1);
        }
        assert_eq!(class_of(memcached_item_size(1, 1, 0)), 1);
        assert_eq!(class_of(2 << 20), 39);
    }

    #[test]
    fn slab_classes_match_memcached() {
        // `me` on memcached 1.6.18: 1-byte key, 1-byte value -> size=61 cls=1.
        assert_eq!(memcached_item_size(1, 1, 0), 61);
        assert_eq!(memcached_slab_class(61, 1 << 20), Some(1));
        // 10-byte key + 100-byte value = 169 bytes -> the 192-byte class 4.
        assert_eq!(memcached_slab_class(169, 1 << 20), Some(4));
        assert_eq!(memcached_slab_class(96, 1 << 20), Some(1));
        assert_eq!(memcached_slab_class(97, 1 << 20), Some(2));
        assert_eq!(memcached_slab_class((1 << 20) + 1, 1 << 20), None);
        // Boundaries of the last classes printed by `memcached -vv`.
        assert_eq!(memcached_slab_class(394_840, 1 << 20), Some(38));
        assert_eq!(memcached_slab_class(394_841, 1 << 20), Some(39));
        assert_eq!(memcached_slab_class(1 << 20, 1 << 20), Some(39));
    }

    #[test]
    fn reset_keeps_what_is_held() {
        let mut t = ClassTable::new();
        let data = crate::item::encode(b"k", 0, false, [b"v", b""]);
        t.linked(&data);
        t.of(&data).get_hits += 3;
        t.reset();
        let mut sum = vec![ClassCounters::default(); class_count()];
        t.add_into(&mut sum);
        assert_eq!(sum[0], ClassCounters { number: 1, mem_requested: 61, ..ClassCounters::default() });
    }
}
