//! Several threads hammering one store, then invariants.

mod common;

use std::sync::Arc;
use std::thread;

use common::store_with;
use memshard_store::{ArithOutcome, DeleteRequest, MetaGetOptions, StoreConfig, StoreMode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[test]
fn random_ops_from_many_threads_keep_invariants() {
    let limit = 256 * 1024;
    let (s, clock) = store_with(StoreConfig { memory_limit: limit, max_item_size: 16 * 1024, shards: 4, evict: true });
    let s = Arc::new(s);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let s = Arc::clone(&s);
            let clock = Arc::clone(&clock);
            thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(t);
                let data = vec![b'3'; 8000];
                for _ in 0..5_000 {
                    let key = format!("key{}", rng.random_range(0..400));
                    let key = key.as_bytes();
                    match rng.random_range(0..12) {
                        0..=2 => {
                            let n = rng.random_range(0..8000);
                            s.store(StoreMode::Set, key, 0, 0, &data[..n], 0);
                        }
                        3 => {
                            s.store(StoreMode::Append, key, 0, 0, b"1", 0);
                        }
                        4 => {
                            s.incr(key, 1);
                        }
                        5 => {
                            s.delete(key, None);
                        }
                        6 => {
                            s.delete_with(key, &DeleteRequest { invalidate: true, ..DeleteRequest::default() });
                        }
                        7 => {
                            s.meta_get(key, &MetaGetOptions { vivify: Some(0), ..MetaGetOptions::default() }, |it| {
                                it.map(|it| it.settle_token(false))
                            });
                        }
                        8 => {
                            s.sweep(8);
                        }
                        9 if t == 0 => s.flush_all(0),
                        10 if t == 1 => clock.advance(1),
                        _ => {
                            if let Some(v) = s.get(key) {
                                assert_eq!(v.key(), key);
                            }
                        }
                    }
                    assert!(s.bytes() <= limit);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker panicked");
    }
    // Every stored item is reachable; counts and bytes agree.
    s.flush_all(-1);
    clock.advance(1);
    let st = s.stats();
    assert!(st.bytes <= limit as u64);
    for (used, shard_limit) in s.shard_usage() {
        assert!(used <= shard_limit);
    }
    assert!(st.evictions > 0, "the workload should overflow 256 KiB");
    assert_eq!(s.sweep(usize::MAX) as u64, st.curr_items);
    assert_eq!(s.bytes(), 0);
    assert!(s.is_empty());
}

#[test]
fn concurrent_increments_are_not_lost() {
    let (s, _clock) = common::store();
    common::set(&s, "counter", "0", 0);
    let s = Arc::new(s);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for _ in 0..1000 {
                    assert!(matches!(s.incr(b"counter", 1), ArithOutcome::Value { .. }));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(common::get(&s, "counter").as_deref(), Some("8000"));
}
