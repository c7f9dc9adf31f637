//! Storage modes and CAS semantics (memcached `do_store_item`).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{get, set, store};
use memshard_store::{DeleteOutcome, StoreMode, StoreOutcome, StoreRequest};

#[test]
fn every_modification_gets_a_larger_cas() {
    let (s, _clock) = store();
    let mut seen = vec![set(&s, "k", "1", 0)];
    seen.push(s.store(StoreMode::Replace, b"k", 0, 0, b"2", 0).cas);
    seen.push(s.store(StoreMode::Append, b"k", 0, 0, b"3", 0).cas);
    seen.push(s.store(StoreMode::Prepend, b"k", 0, 0, b"4", 0).cas);
    match s.incr(b"k", 1) {
        memshard_store::ArithOutcome::Value { cas, value, .. } => {
            assert_eq!(value, 424);
            seen.push(cas);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.get(b"k").unwrap().cas(), *seen.last().unwrap());
    seen.push(set(&s, "other", "x", 0));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // Reads and touches do not change the CAS.
    let before = s.get(b"k").unwrap().cas();
    s.touch(b"k", 100);
    assert_eq!(s.get(b"k").unwrap().cas(), before);
}

#[test]
fn cas_compare_semantics() {
    let (s, _clock) = store();
    // cas on a missing key: NOT_FOUND.
    assert_eq!(s.store(StoreMode::Cas, b"k", 0, 0, b"v", 1).outcome, StoreOutcome::NotFound);
    let c1 = set(&s, "k", "v1", 0);
    assert_eq!(s.get(b"k").unwrap().cas(), c1);
    // Mismatch (including 0): EXISTS, value untouched.
    assert_eq!(s.store(StoreMode::Cas, b"k", 0, 0, b"x", c1 + 100).outcome, StoreOutcome::Exists);
    assert_eq!(s.store(StoreMode::Cas, b"k", 0, 0, b"x", 0).outcome, StoreOutcome::Exists);
    assert_eq!(get(&s, "k").as_deref(), Some("v1"));
    // Match: stored with a new CAS; the old one no longer matches.
    let r = s.store(StoreMode::Cas, b"k", 9, 0, b"v2", c1);
    assert_eq!(r.outcome, StoreOutcome::Stored);
    assert!(r.cas > c1);
    let v = s.get(b"k").unwrap();
    assert_eq!((v.value(), v.flags(), v.cas()), (&b"v2"[..], 9, r.cas));
    assert_eq!(s.store(StoreMode::Cas, b"k", 0, 0, b"v3", c1).outcome, StoreOutcome::Exists);
    // Set, add and replace ignore a supplied CAS, as memcached does.
    assert_eq!(s.store(StoreMode::Set, b"k", 0, 0, b"v4", 12345).outcome, StoreOutcome::Stored);
}

#[test]
fn add_and_replace_preconditions() {
    let (s, _clock) = store();
    assert_eq!(s.store(StoreMode::Replace, b"k", 0, 0, b"v", 0).outcome, StoreOutcome::NotStored);
    assert_eq!(s.store(StoreMode::Add, b"k", 0, 0, b"v", 0).outcome, StoreOutcome::Stored);
    let r = s.store(StoreMode::Add, b"k", 0, 0, b"w", 0);
    assert_eq!((r.outcome, r.cas), (StoreOutcome::NotStored, 0));
    assert_eq!(s.store(StoreMode::Replace, b"k", 0, 0, b"w", 0).outcome, StoreOutcome::Stored);
    assert_eq!(get(&s, "k").as_deref(), Some("w"));
}

#[test]
fn append_prepend_keep_flags_and_exptime() {
    let (s, clock) = store();
    assert_eq!(s.store(StoreMode::Append, b"k", 0, 0, b"x", 0).outcome, StoreOutcome::NotStored);
    assert_eq!(s.store(StoreMode::Prepend, b"k", 0, 0, b"x", 0).outcome, StoreOutcome::NotStored);
    s.store(StoreMode::Set, b"k", 42, 100, b"mid", 0);
    clock.advance(10);
    assert_eq!(s.store(StoreMode::Append, b"k", 7, 0, b">>", 0).outcome, StoreOutcome::Stored);
    assert_eq!(s.store(StoreMode::Prepend, b"k", 8, 5000, b"<<", 0).outcome, StoreOutcome::Stored);
    let v = s.get(b"k").unwrap();
    assert_eq!(v.value(), b"<<mid>>");
    assert_eq!(v.flags(), 42);
    assert_eq!(s.ttl(b"k"), Some(90));
}

#[test]
fn append_checks_a_supplied_cas() {
    let (s, _clock) = store();
    let c = set(&s, "k", "a", 0);
    assert_eq!(s.store(StoreMode::Append, b"k", 0, 0, b"b", c + 1).outcome, StoreOutcome::Exists);
    assert_eq!(s.store(StoreMode::Append, b"k", 0, 0, b"b", c).outcome, StoreOutcome::Stored);
    assert_eq!(get(&s, "k").as_deref(), Some("ab"));
    // With a CAS on a missing key append is NOT_STORED (not NOT_FOUND).
    assert_eq!(s.store(StoreMode::Append, b"zz", 0, 0, b"b", 5).outcome, StoreOutcome::NotStored);
}

#[test]
fn append_to_empty_and_of_empty() {
    let (s, _clock) = store();
    set(&s, "k", "", 0);
    s.store(StoreMode::Append, b"k", 0, 0, b"", 0);
    assert_eq!(get(&s, "k").as_deref(), Some(""));
    s.store(StoreMode::Append, b"k", 0, 0, b"z", 0);
    assert_eq!(get(&s, "k").as_deref(), Some("z"));
}

#[test]
fn delete_with_and_without_cas() {
    let (s, _clock) = store();
    assert_eq!(s.delete(b"k", None), DeleteOutcome::NotFound);
    let c = set(&s, "k", "v", 0);
    assert_eq!(s.delete(b"k", Some(c + 1)), DeleteOutcome::Exists);
    assert_eq!(s.delete(b"k", Some(0)), DeleteOutcome::Exists);
    assert_eq!(s.delete(b"k", Some(c)), DeleteOutcome::Deleted);
    assert_eq!(get(&s, "k"), None);
    set(&s, "k", "v", 0);
    assert_eq!(s.delete(b"k", None), DeleteOutcome::Deleted);
    assert_eq!(s.delete(b"k", None), DeleteOutcome::NotFound);
    assert_eq!(s.stats().bytes, 0);
}

#[test]
fn explicit_new_cas_is_used() {
    let (s, _clock) = store();
    let req = StoreRequest { new_cas: Some(777), ..StoreRequest::new(StoreMode::Set, b"k", b"v") };
    let r = s.store_with(&req);
    assert_eq!((r.outcome, r.cas), (StoreOutcome::Stored, 777));
    assert_eq!(s.get(b"k").unwrap().cas(), 777);
}

#[test]
fn values_are_binary_safe_and_views_outlive_overwrites() {
    let (s, _clock) = store();
    let value: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    s.store(StoreMode::Set, b"bin", 0xffff_ffff, 0, &value, 0);
    let view = s.get(b"bin").unwrap();
    set(&s, "bin", "replaced", 0);
    s.delete(b"bin", None);
    assert_eq!(view.value(), &value[..]);
    assert_eq!(view.flags(), 0xffff_ffff);
    assert_eq!(view.key(), b"bin");
    assert_eq!(&view.shared_data()[view.value_range()], &value[..]);
}

#[test]
fn cas_uniques_are_unique_across_threads() {
    let (s, _clock) = store();
    let s = Arc::new(s);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                (0..2000)
                    .map(|i| {
                        let key = format!("t{t}-{}", i % 50);
                        s.store(StoreMode::Set, key.as_bytes(), 0, 0, b"v", 0).cas
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for h in handles {
        for cas in h.join().unwrap() {
            assert!(seen.insert(cas), "duplicate cas {cas}");
        }
    }
    assert_eq!(seen.len(), 8000);
    assert_eq!(s.last_cas(), 8000);
}
