//! Items counted by the slab class memcached would keep them in: what
//! `stats items` and `stats slabs` report.

mod common;

use common::{get, set, small_store, store};
use memshard_store::classes::class_of;
use memshard_store::{ClassStats, StoreMode, memcached_item_size};

fn class(stats: &[ClassStats], id: usize) -> ClassStats {
    stats.iter().find(|c| c.id == id).copied().unwrap_or_else(|| panic!("no class {id} in {stats:?}"))
}

#[test]
fn items_are_counted_in_memcacheds_classes_with_memcacheds_sizes() {
    let (s, clock) = store();
    // 1-byte key and value: 61 bytes, class 1; 2-byte key, 100-byte value
    // and flags: 165 bytes, class 4 (as `stats items` of memcached 1.6.18).
    set(&s, "a", "x", 0);
    s.store(StoreMode::Set, b"bb", 5, 100, &[b'y'; 100], 0);
    clock.advance(7);
    let stats = s.class_stats();
    assert_eq!(stats.len(), 2);
    let (one, four) = (class(&stats, 1), class(&stats, 4));
    assert_eq!((one.chunk_size, one.counters.number, one.counters.mem_requested), (96, 1, 61));
    assert_eq!((four.chunk_size, four.counters.number, four.counters.mem_requested), (192, 1, 165));
    assert_eq!((one.total_pages(), one.total_chunks()), (1, 10922));
    assert_eq!((one.age, one.counters.cmd_set), (7, 1));
    // Hits by the class of the item hit. memcached's first fetch only marks
    // an item fetched; the second refreshes its access time.
    assert!(get(&s, "a").is_some());
    assert!(get(&s, "a").is_some());
    assert!(get(&s, "zz").is_none());
    s.touch(b"bb", 100);
    let stats = s.class_stats();
    assert_eq!(class(&stats, 1).counters.get_hits, 2);
    assert_eq!(class(&stats, 4).counters.touch_hits, 1);
    assert_eq!(class(&stats, 1).age, 0, "the fetch refreshed the access time");
    // Deleting gives the memory back and counts the hit.
    s.delete(b"a", None);
    let one = class(&s.class_stats(), 1);
    assert_eq!((one.counters.number, one.counters.mem_requested, one.counters.delete_hits), (0, 0, 1));
    // `stats reset` zeroes events, not what is held.
    s.reset_class_stats();
    let four = class(&s.class_stats(), 4);
    assert_eq!((four.counters.number, four.counters.touch_hits, four.counters.cmd_set), (1, 0, 0));
}

#[test]
fn a_replaced_value_moves_between_classes() {
    let (s, _clock) = store();
    set(&s, "k", "x", 0);
    set(&s, "k", &"y".repeat(1000), 0);
    let size = memcached_item_size(1, 1000, 0);
    let stats = s.class_stats();
    assert_eq!(class(&stats, 1).counters.number, 0);
    let big = class(&stats, class_of(size));
    assert_eq!((big.counters.number, big.counters.mem_requested), (1, size as u64));
}

#[test]
fn cas_and_arithmetic_hits_are_counted() {
    let (s, _clock) = store();
    let cas = set(&s, "n", "10", 0);
    assert_eq!(s.store(StoreMode::Cas, b"n", 0, 0, b"11", cas + 1).outcome, memshard_store::StoreOutcome::Exists);
    s.store(StoreMode::Cas, b"n", 0, 0, b"12", cas);
    s.incr(b"n", 1);
    s.decr(b"n", 1);
    let one = class(&s.class_stats(), 1).counters;
    assert_eq!((one.cas_hits, one.cas_badval, one.incr_hits, one.decr_hits, one.cmd_set), (1, 1, 1, 1, 3));
}

#[test]
fn evictions_and_reclaims_are_counted_by_class() {
    let (s, clock) = small_store(4096);
    // A key written again after it expired reuses its item: reclaimed.
    set(&s, "e", "v", 1);
    clock.advance(2);
    set(&s, "e", "w", 0);
    let one = class(&s.class_stats(), 1).counters;
    assert_eq!((one.reclaimed, one.expired_unfetched, one.number), (1, 1, 1));
    assert_eq!(s.stats().get_expired, 0, "a store is not a fetch");
    // Filling the store evicts, oldest first, and says how long they idled.
    for i in 0..100 {
        set(&s, &format!("k{i}"), "v", 1000);
        clock.advance(1);
    }
    let one = class(&s.class_stats(), 1).counters;
    assert!(one.evicted > 0);
    assert_eq!(one.evicted_nonzero + 1, one.evicted, "every evicted item had a TTL but the first");
    assert!(one.evicted_time > 0);
    assert_eq!(one.evicted_unfetched, one.evicted);
}

#[test]
fn the_crawler_and_the_maintainer_count_what_they_free_apart() {
    let (s, clock) = store();
    set(&s, "a", "v", 1);
    set(&s, "b", "v", 1);
    set(&s, "later", "v", 0);
    // The maintainer (background) frees one expired item: reclaimed.
    clock.advance(2);
    s.delete(b"b", None);
    assert_eq!(s.reclaim_expired(usize::MAX), 1);
    let one = class(&s.class_stats(), 1).counters;
    assert_eq!((one.reclaimed, one.crawler_reclaimed, one.number), (1, 0, 1));
    assert_eq!(s.stats().reclaimed, 1);
    // The crawler (an operator's crawl) frees a flushed one: crawler_reclaimed.
    s.flush_all(0);
    assert_eq!(s.sweep(usize::MAX), 1);
    let one = class(&s.class_stats(), 1).counters;
    assert_eq!((one.reclaimed, one.crawler_reclaimed, one.number), (1, 1, 0));
    assert!(one.crawler_items_checked >= 1);
    assert_eq!(s.stats().crawler_reclaimed, 1);
}
