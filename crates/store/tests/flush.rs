//! flush_all (memcached oldest_live/oldest_cas) and sweeping.

mod common;

use common::{T0, get, set, store};
use memshard_store::StoreMode;

#[test]
fn immediate_flush_hides_everything_stored_before() {
    let (s, clock) = store();
    set(&s, "a", "1", 0);
    set(&s, "b", "2", 100);
    s.flush_all(0);
    // Stored in the same second but after the flush: visible (CAS floor).
    set(&s, "c", "3", 0);
    assert_eq!(get(&s, "a"), None);
    assert_eq!(get(&s, "b"), None);
    assert_eq!(get(&s, "c").as_deref(), Some("3"));
    assert_eq!(s.stats().get_flushed, 2);
    clock.advance(5);
    assert_eq!(get(&s, "c").as_deref(), Some("3"));
    // Flushed keys can be added again.
    assert_eq!(s.store(StoreMode::Add, b"a", 0, 0, b"new", 0).outcome, memshard_store::StoreOutcome::Stored);
}

#[test]
fn negative_delay_is_immediate() {
    let (s, _clock) = store();
    set(&s, "a", "1", 0);
    s.flush_all(-10);
    assert_eq!(get(&s, "a"), None);
}

#[test]
fn delayed_flush_fires_after_delay_minus_one() {
    // memcached: `flush_all 3` hid items ~2 s later; oldest_live = now+delay-1.
    let (s, clock) = store();
    set(&s, "a", "1", 0);
    s.flush_all(10);
    clock.advance(8);
    assert_eq!(get(&s, "a").as_deref(), Some("1"));
    set(&s, "b", "2", 0);
    clock.advance(1); // T0 + 9 == oldest_live
    assert_eq!(get(&s, "a"), None);
    assert_eq!(get(&s, "b"), None);
    // Stored during the flush second itself: also hidden (time <= oldest_live).
    set(&s, "c", "3", 0);
    assert_eq!(get(&s, "c"), None);
    clock.advance(1);
    set(&s, "d", "4", 0);
    assert_eq!(get(&s, "d").as_deref(), Some("4"));
    clock.advance(1000);
    assert_eq!(get(&s, "d").as_deref(), Some("4"));
}

#[test]
fn absolute_flush_time() {
    let (s, clock) = store();
    set(&s, "a", "1", 0);
    s.flush_all((T0 + 100) as i64);
    clock.advance(98);
    assert!(get(&s, "a").is_some());
    clock.advance(1);
    assert!(get(&s, "a").is_none());
}

#[test]
fn flush_time_before_start_cancels_a_pending_flush() {
    let (s, clock) = store();
    set(&s, "a", "1", 0);
    s.flush_all(10);
    s.flush_all(3_000_000); // absolute, long before the store started
    clock.advance(20);
    assert_eq!(get(&s, "a").as_deref(), Some("1"));
}

#[test]
fn touched_items_survive_a_delayed_flush_only_if_touched_after_it() {
    let (s, clock) = store();
    set(&s, "a", "1", 0);
    s.flush_all(5);
    clock.advance(10);
    // Touching after the flush fired does not resurrect it.
    assert_eq!(s.touch(b"a", 0), memshard_store::TouchOutcome::NotFound);
}

#[test]
fn sweep_reclaims_expired_items_and_their_bytes() {
    let (s, clock) = store();
    for i in 0..1000 {
        set(&s, &format!("short{i}"), "v", 10);
    }
    for i in 0..100 {
        set(&s, &format!("long{i}"), "v", 0);
    }
    assert!(get(&s, "short7").is_some()); // one fetched item
    let full = s.bytes();
    clock.advance(10);
    // Lazy: nothing is freed until something looks.
    assert_eq!(s.bytes(), full);
    assert_eq!(s.stats().curr_items, 1100);
    let mut freed = 0;
    let mut calls = 0;
    while s.stats().curr_items > 100 {
        freed += s.sweep(64);
        calls += 1;
        assert!(calls < 1000, "sweep makes progress");
    }
    assert!(calls > 1, "a small budget spreads the work over several calls");
    assert_eq!(freed, 1000);
    let st = s.stats();
    assert_eq!(st.crawler_reclaimed, 1000);
    assert_eq!(st.expired_unfetched, 999);
    assert_eq!(st.bytes as usize, s.bytes());
    let expected: usize = (0..100).map(|i| memshard_store::item_footprint(format!("long{i}").len(), 1, 0)).sum();
    assert_eq!(s.bytes(), expected);
    assert_eq!(get(&s, "long42").as_deref(), Some("v"));
    // Nothing left to do.
    assert_eq!(s.sweep(10_000), 0);
}

#[test]
fn sweep_reclaims_flushed_items() {
    let (s, _clock) = store();
    for i in 0..50 {
        set(&s, &format!("k{i}"), "v", 0);
    }
    s.flush_all(0);
    assert_eq!(s.sweep(usize::MAX), 50);
    assert_eq!(s.bytes(), 0);
    assert!(s.is_empty());
}
