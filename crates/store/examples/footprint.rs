//! Reports memory per stored item (10-byte key, 100-byte value): the bytes
//! the store charges against its limit, and the process RSS growth measured
//! from `/proc/self/statm` (Linux only), for comparison with memcached.
//!
//! Run with `cargo run --release -p memshard-store --example footprint [items]`.
#![allow(clippy::print_stdout, reason = "an example that reports numbers")]

use memshard_store::{Store, StoreConfig, StoreMode};

/// Resident set size in bytes, if the platform exposes it.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let items: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let config = StoreConfig { memory_limit: 1 << 30, ..StoreConfig::default() };
    let store = match Store::new(config) {
        Ok(s) => s,
        Err(e) => {
            println!("bad config: {e}");
            return;
        }
    };
    let value = [b'v'; 100];
    let before = rss_bytes();
    let mut key = [0u8; 10];
    for i in 0..items {
        // 10-byte decimal key without allocating.
        let mut n = i;
        for b in key.iter_mut().rev() {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
        store.store(StoreMode::Set, &key, 0, 0, &value, 0);
    }
    let after = rss_bytes();
    let stats = store.stats();
    println!("items stored:              {}", stats.curr_items);
    println!("accounted bytes per item:  {:.1}", stats.bytes as f64 / stats.curr_items as f64);
    println!("hash index bytes per item: {:.1} (actual allocation)", stats.hash_bytes as f64 / stats.curr_items as f64);
    println!(
        "header slab bytes per item: {:.1} (actual allocation)",
        stats.slab_bytes as f64 / stats.curr_items as f64
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!("RSS growth per item:       {:.1}", a.saturating_sub(b) as f64 / stats.curr_items as f64);
    }
}
