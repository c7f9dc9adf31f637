//! incr/decr byte-for-byte as memcached 1.6.18 (`do_add_delta`).

mod common;

use common::{get, set, store};
use memshard_store::{ArithOutcome, ArithRequest, StoreMode, Vivify};

fn value(out: ArithOutcome) -> u64 {
    match out {
        ArithOutcome::Value { value, .. } => value,
        other => panic!("expected a value, got {other:?}"),
    }
}

#[test]
fn decr_pads_in_place_with_spaces() {
    let (s, _clock) = store();
    set(&s, "n", "100", 0);
    assert_eq!(value(s.decr(b"n", 1)), 99);
    assert_eq!(get(&s, "n").as_deref(), Some("99 "));
    assert_eq!(value(s.incr(b"n", 5)), 104);
    assert_eq!(get(&s, "n").as_deref(), Some("104"));
    // Longer than the stored text: a new, exactly sized value.
    assert_eq!(value(s.incr(b"n", 1000)), 1104);
    assert_eq!(get(&s, "n").as_deref(), Some("1104"));
}

#[test]
fn incr_wraps_at_u64_max() {
    let (s, _clock) = store();
    set(&s, "n", "18446744073709551615", 0);
    assert_eq!(value(s.incr(b"n", 1)), 0);
    assert_eq!(get(&s, "n").as_deref(), Some("0                   "));
    // memcached: "0 " incr 2^64-1 grows to 20 digits, +1 wraps back to 0.
    set(&s, "m", "0 ", 0);
    assert_eq!(value(s.incr(b"m", u64::MAX)), u64::MAX);
    assert_eq!(get(&s, "m").as_deref(), Some("18446744073709551615"));
}

#[test]
fn decr_floors_at_zero() {
    let (s, _clock) = store();
    set(&s, "n", "10", 0);
    assert_eq!(value(s.decr(b"n", 100)), 0);
    assert_eq!(get(&s, "n").as_deref(), Some("0 "));
    assert_eq!(value(s.decr(b"n", 1)), 0);
}

#[test]
fn non_numeric_values_are_refused_and_untouched() {
    let (s, _clock) = store();
    for v in ["", "abc", "5x", "-1", "1-", "18446744073709551616", "   "] {
        set(&s, "n", v, 0);
        assert_eq!(s.incr(b"n", 1), ArithOutcome::NonNumeric, "{v:?}");
        assert_eq!(s.decr(b"n", 1), ArithOutcome::NonNumeric, "{v:?}");
        assert_eq!(get(&s, "n").as_deref(), Some(v));
    }
}

#[test]
fn lenient_forms_memcached_accepts() {
    // Results observed on memcached 1.6.18 for `incr a 1`.
    let (s, _clock) = store();
    for (stored, result, after) in [
        (" 5", 6, "6 "),
        ("5 ", 6, "6 "),
        ("+5", 6, "6 "),
        ("-0", 1, "1 "),
        ("00012", 13, "13   "),
        ("\t7", 8, "8 "),
        ("12\u{0}34", 13, "13   "),
        ("\u{b}9", 10, "10"),
        ("-9223372036854775809", 9_223_372_036_854_775_808, "9223372036854775808 "),
    ] {
        set(&s, "a", stored, 0);
        assert_eq!(value(s.incr(b"a", 1)), result, "{stored:?}");
        assert_eq!(get(&s, "a").as_deref(), Some(after), "{stored:?}");
    }
}

#[test]
fn missing_key_and_flags_exptime_preserved() {
    let (s, clock) = store();
    assert_eq!(s.incr(b"nokey", 1), ArithOutcome::NotFound);
    s.store(StoreMode::Set, b"c", 5, 100, b"9", 0);
    let old_cas = s.get(b"c").unwrap().cas();
    clock.advance(10);
    match s.incr(b"c", 1) {
        ArithOutcome::Value { value, cas, created } => {
            assert_eq!((value, created), (10, false));
            assert!(cas > old_cas);
        }
        other => panic!("{other:?}"),
    }
    let v = s.get(b"c").unwrap();
    assert_eq!((v.value(), v.flags()), (&b"10"[..], 5));
    assert_eq!(s.ttl(b"c"), Some(90));
}

#[test]
fn cas_checked_arith() {
    let (s, _clock) = store();
    let c = set(&s, "n", "1", 0);
    let req = ArithRequest { cas: c + 1, ..ArithRequest::incr(1) };
    assert_eq!(s.arith(b"n", &req), ArithOutcome::Exists);
    let req = ArithRequest { cas: c, ..req };
    assert_eq!(value(s.arith(b"n", &req)), 2);
    let req = ArithRequest { new_cas: Some(5000), ..ArithRequest::decr(1) };
    assert_eq!(s.arith(b"n", &req), ArithOutcome::Value { value: 1, cas: 5000, created: false });
}

#[test]
fn vivify_creates_initial_value_without_delta() {
    let (s, clock) = store();
    let req = ArithRequest { vivify: Some(Vivify { initial: 40, exptime: 30 }), ..ArithRequest::incr(2) };
    match s.arith(b"v", &req) {
        ArithOutcome::Value { value: 40, created: true, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&s, "v").as_deref(), Some("40"));
    assert_eq!(s.ttl(b"v"), Some(30));
    assert_eq!(value(s.arith(b"v", &req)), 42);
    // The closure sees the TTL only once `N` is applied (memcached order).
    clock.advance(31);
    let (out, seen) = s.arith_meta(b"v", &req, |item| {
        let before = item.ttl();
        assert!(item.apply_vivify_ttl());
        (before, item.ttl())
    });
    assert!(matches!(out, ArithOutcome::Value { value: 40, created: true, .. }));
    assert_eq!(seen, Some((-1, 30)));
}

#[test]
fn reader_views_never_change_under_in_place_update() {
    let (s, _clock) = store();
    set(&s, "n", "100", 0);
    let view = s.get(b"n").unwrap();
    assert_eq!(value(s.decr(b"n", 1)), 99);
    assert_eq!(view.value(), b"100");
    assert_eq!(get(&s, "n").as_deref(), Some("99 "));
}

#[test]
fn chunked_sized_values_are_non_numeric() {
    // memcached stores items over 512 KiB "chunked" and refuses to parse them.
    let (s, _clock) = store();
    let mut v = b"1".to_vec();
    v.resize(600_000, b' ');
    s.store(StoreMode::Set, b"big", 0, 0, &v, 0);
    assert_eq!(s.incr(b"big", 1), ArithOutcome::NonNumeric);
    v.truncate(1000);
    s.store(StoreMode::Set, b"big", 0, 0, &v, 0);
    assert_eq!(value(s.incr(b"big", 1)), 2);
}
