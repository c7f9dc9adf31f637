//! Dumping live items and loading them into a fresh store.

mod common;

use common::{T0, get, set, store};
use memshard_store::{ItemRecord, StoreMode, StoreOutcome};

#[test]
fn snapshot_and_reload_round_trip() {
    let (a, clock) = store();
    a.store(StoreMode::Set, b"flags", 123, 0, b"v1", 0);
    a.store(StoreMode::Set, b"ttl", 0, 100, b"v2", 0);
    set(&a, "gone", "x", 1);
    set(&a, "deleted", "x", 0);
    a.delete(b"deleted", None);
    clock.advance(1);

    let mut records = a.snapshot();
    records.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(records.len(), 2, "expired and deleted items are not saved");
    let cas_flags = a.get(b"flags").unwrap().cas();
    assert_eq!(
        records[0],
        ItemRecord {
            key: b"flags".to_vec(),
            value: b"v1".to_vec(),
            flags: 123,
            exptime: 0,
            cas: cas_flags,
            key_binary: false,
        }
    );
    assert_eq!(records[1].exptime, T0 + 100, "exptime is saved as absolute time");

    // "Restart": a new store at a later time.
    let (b, clock_b) = store();
    clock_b.set(T0 + 50);
    for r in &records {
        assert_eq!(b.insert_raw(r), StoreOutcome::Stored);
    }
    assert_eq!(b.get(b"flags").unwrap().flags(), 123);
    assert_eq!(b.get(b"flags").unwrap().cas(), cas_flags);
    assert_eq!(b.ttl(b"ttl"), Some(50));
    // New CAS uniques stay above everything loaded.
    let max = records.iter().map(|r| r.cas).max().unwrap();
    assert!(set(&b, "new", "x", 0) > max);
    // A gets token from before the restart still works.
    let r = b.store(StoreMode::Cas, b"flags", 0, 0, b"v3", cas_flags);
    assert_eq!(r.outcome, StoreOutcome::Stored);

    // Records past their deadline are skipped.
    clock_b.set(T0 + 100);
    assert_eq!(b.insert_raw(&records[1]), StoreOutcome::NotStored);
}

#[test]
fn for_each_item_visits_in_lru_order_without_holding_locks() {
    let (s, _clock) =
        common::store_with(memshard_store::StoreConfig { shards: 1, ..memshard_store::StoreConfig::default() });
    for k in ["a", "b", "c"] {
        set(&s, k, k, 0);
    }
    s.get(b"a");
    let mut keys = Vec::new();
    s.for_each_item(|item| {
        // Re-entering the store from the callback must not deadlock.
        assert!(s.peek(item.view.key()).is_some());
        keys.push(String::from_utf8_lossy(item.view.key()).into_owned());
    });
    assert_eq!(keys, ["b", "c", "a"]);
    assert_eq!(get(&s, "c").as_deref(), Some("c"));
}
