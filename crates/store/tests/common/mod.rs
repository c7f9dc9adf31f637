//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use memshard_store::{ManualClock, Store, StoreConfig, StoreMode, StoreOutcome};

/// Start time of every test clock (a realistic unix time).
pub const T0: u64 = 1_700_000_000;

/// A default-sized store on a manual clock at [`T0`].
pub fn store() -> (Store, Arc<ManualClock>) {
    store_with(StoreConfig::default())
}

/// A store with `config` on a manual clock at [`T0`].
pub fn store_with(config: StoreConfig) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Store::with_clock(config, clock.clone()).expect("valid config");
    (store, clock)
}

/// A single-shard store of `limit` bytes (deterministic LRU order).
pub fn small_store(limit: usize) -> (Store, Arc<ManualClock>) {
    store_with(StoreConfig { memory_limit: limit, max_item_size: 1024, shards: 1, evict: true })
}

/// `set key 0 exptime` and assert it was stored; returns the CAS.
pub fn set(store: &Store, key: &str, value: &str, exptime: i64) -> u64 {
    let r = store.store(StoreMode::Set, key.as_bytes(), 0, exptime, value.as_bytes(), 0);
    assert_eq!(r.outcome, StoreOutcome::Stored, "set {key}");
    r.cas
}

/// The value under `key` via `get`, as a string.
pub fn get(store: &Store, key: &str) -> Option<String> {
    store.get(key.as_bytes()).map(|v| String::from_utf8_lossy(v.value()).into_owned())
}
