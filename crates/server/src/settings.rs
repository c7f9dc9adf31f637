//! The settings an operator can change while the server runs (`slabs
//! automove`, `lru …`, `lru_crawler …`, `stats detail on|off`), kept so
//! `stats settings` reports what was set. memshard's store has no slab pages
//! to move and one true LRU per shard, so the slab-mover and segmented-LRU
//! knobs are accepted and shown but change nothing; the crawler's are real
//! (`lru_crawler crawl` sweeps expired items at once, `disable` stops the
//! background sweep). `docs/architecture.md` lists which is which.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// An `f64` setting in an atomic.
#[derive(Debug)]
pub(crate) struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn new(v: f64) -> Self {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }

    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub(crate) fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// Run-time settings, with memcached 1.6.18's defaults.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) slab_automove: AtomicU32,
    pub(crate) slab_automove_ratio: AtomicF64,
    pub(crate) hot_lru_pct: AtomicU32,
    pub(crate) warm_lru_pct: AtomicU32,
    pub(crate) hot_max_factor: AtomicF64,
    pub(crate) warm_max_factor: AtomicF64,
    pub(crate) lru_segmented: AtomicBool,
    pub(crate) temp_lru: AtomicBool,
    pub(crate) temporary_ttl: AtomicI32,
    pub(crate) lru_crawler: AtomicBool,
    pub(crate) lru_crawler_sleep: AtomicU32,
    pub(crate) lru_crawler_tocrawl: AtomicU32,
    pub(crate) detail_enabled: AtomicBool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            slab_automove: AtomicU32::new(1),
            slab_automove_ratio: AtomicF64::new(0.8),
            hot_lru_pct: AtomicU32::new(20),
            warm_lru_pct: AtomicU32::new(40),
            hot_max_factor: AtomicF64::new(0.2),
            warm_max_factor: AtomicF64::new(2.0),
            lru_segmented: AtomicBool::new(true),
            temp_lru: AtomicBool::new(false),
            temporary_ttl: AtomicI32::new(61),
            lru_crawler: AtomicBool::new(true),
            lru_crawler_sleep: AtomicU32::new(100),
            lru_crawler_tocrawl: AtomicU32::new(0),
            detail_enabled: AtomicBool::new(false),
        }
    }
}
