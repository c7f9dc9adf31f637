//! memcached exptime rules, driven by a manual clock.

mod common;

use common::{T0, get, set, store};
use memshard_store::{MetaGetOptions, StoreMode, StoreOutcome, TouchOutcome};

#[test]
fn zero_never_expires() {
    let (s, clock) = store();
    set(&s, "k", "v", 0);
    assert_eq!(s.ttl(b"k"), Some(-1));
    clock.advance(100 * 365 * 24 * 3600);
    assert_eq!(get(&s, "k").as_deref(), Some("v"));
}

#[test]
fn relative_ttl_expires_exactly_at_deadline() {
    let (s, clock) = store();
    set(&s, "k", "v", 10);
    assert_eq!(s.ttl(b"k"), Some(10));
    clock.advance(9);
    assert_eq!(s.ttl(b"k"), Some(1));
    assert_eq!(get(&s, "k").as_deref(), Some("v"));
    clock.advance(1);
    assert_eq!(get(&s, "k"), None);
    let st = s.stats();
    assert_eq!(st.get_expired, 1);
    assert_eq!(st.curr_items, 0, "lazy expiry unlinks the item");
    assert_eq!(st.bytes, 0);
}

#[test]
fn thirty_days_is_relative_one_more_is_absolute() {
    let (s, clock) = store();
    set(&s, "rel", "v", 2_592_000);
    assert_eq!(s.ttl(b"rel"), Some(2_592_000));
    // 2592001 is read as a unix time in January 1970: stored, but expired.
    set(&s, "abs", "v", 2_592_001);
    assert_eq!(get(&s, "abs"), None);
    clock.advance(2_591_999);
    assert_eq!(get(&s, "rel").as_deref(), Some("v"));
    clock.advance(1);
    assert_eq!(get(&s, "rel"), None);
}

#[test]
fn absolute_times_in_future_and_past() {
    let (s, clock) = store();
    set(&s, "future", "v", (T0 + 100) as i64);
    assert_eq!(s.ttl(b"future"), Some(100));
    set(&s, "now", "v", T0 as i64);
    set(&s, "past", "v", (T0 - 1) as i64);
    assert_eq!(get(&s, "now"), None, "exptime == now is expired");
    assert_eq!(get(&s, "past"), None);
    clock.advance(99);
    assert!(get(&s, "future").is_some());
    clock.advance(1);
    assert!(get(&s, "future").is_none());
}

#[test]
fn negative_exptime_is_stored_but_invisible() {
    // memcached 1.6.18: `set k 0 -1 1` answers STORED, then `get k` misses.
    let (s, _clock) = store();
    let r = s.store(StoreMode::Set, b"k", 0, -1, b"a", 0);
    assert_eq!(r.outcome, StoreOutcome::Stored);
    assert_eq!(get(&s, "k"), None);
    // ... and since it is invisible, add succeeds on it.
    let r = s.store(StoreMode::Add, b"k", 0, 0, b"b", 0);
    assert_eq!(r.outcome, StoreOutcome::Stored);
    assert_eq!(get(&s, "k").as_deref(), Some("b"));
}

#[test]
fn touch_and_gat_set_new_ttl() {
    let (s, clock) = store();
    set(&s, "k", "v", 5);
    assert_eq!(s.touch(b"k", 100), TouchOutcome::Touched);
    assert_eq!(s.touch(b"missing", 100), TouchOutcome::NotFound);
    clock.advance(50);
    let v = s.get_and_touch(b"k", 0).expect("still there");
    assert_eq!(v.value(), b"v");
    assert_eq!(s.ttl(b"k"), Some(-1));
    // A negative touch expires the item immediately.
    assert_eq!(s.touch(b"k", -1), TouchOutcome::Touched);
    assert_eq!(get(&s, "k"), None);
    assert_eq!(s.touch(b"k", 10), TouchOutcome::NotFound);
}

#[test]
fn expired_items_are_invisible_to_every_command() {
    let (s, clock) = store();
    set(&s, "k", "5", 1);
    clock.advance(1);
    assert!(s.peek(b"k").is_none());
    assert_eq!(s.ttl(b"k"), None);
    assert_eq!(s.item_size(b"k"), None);
    assert_eq!(s.store(StoreMode::Replace, b"k", 0, 0, b"x", 0).outcome, StoreOutcome::NotStored);
    set(&s, "k", "5", 1);
    clock.advance(1);
    assert_eq!(s.store(StoreMode::Append, b"k", 0, 0, b"x", 0).outcome, StoreOutcome::NotStored);
    assert_eq!(s.incr(b"k", 1), memshard_store::ArithOutcome::NotFound);
    let hit = s.meta_get(b"k", &MetaGetOptions::default(), |item| item.is_some());
    assert!(!hit);
}
