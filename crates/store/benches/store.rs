//! Throughput of the hot paths: get hit, set (overwrite) and set that has
//! to evict. Each iteration runs a batch of `BATCH` operations so results
//! read as operations per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memshard_store::{Store, StoreConfig, StoreMode};

const BATCH: u64 = 1000;
const KEYS: u64 = 100_000;

/// 10-byte decimal key for `i`.
fn key(i: u64) -> [u8; 10] {
    let mut k = [b'0'; 10];
    let mut n = i;
    for b in k.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

fn filled(limit: usize, keys: u64) -> Store {
    let store = Store::new(StoreConfig { memory_limit: limit, ..StoreConfig::default() }).expect("valid config");
    for i in 0..keys {
        store.store(StoreMode::Set, &key(i), 0, 0, &[b'v'; 100], 0);
    }
    store
}

fn bench_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH));

    let store = filled(256 << 20, KEYS);
    let mut next = 0u64;
    group.bench_function("get_hit_100b", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                next = (next + 7919) % KEYS;
                black_box(store.get(&key(next)));
            }
        });
    });

    let value = [b'w'; 100];
    group.bench_function("set_overwrite_100b", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                next = (next + 7919) % KEYS;
                black_box(store.store(StoreMode::Set, &key(next), 0, 0, &value, 0));
            }
        });
    });

    // A 4 MiB store already full of 100-byte items: every new key evicts.
    let small = filled(4 << 20, KEYS);
    let mut fresh = KEYS;
    group.bench_function("set_with_eviction_100b", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                fresh += 1;
                black_box(small.store(StoreMode::Set, &key(fresh), 0, 0, &value, 0));
            }
        });
    });
    group.finish();
    assert!(small.stats().evictions > 0);
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
