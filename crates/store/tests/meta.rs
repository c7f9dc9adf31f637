//! State used by the meta protocol, checked against memcached 1.6.18's
//! process_mget/mset/mdelete semantics.

mod common;

use common::{get, set, store};
use memshard_store::{DeleteOutcome, DeleteRequest, MetaGetOptions, StoreMode, StoreOutcome, StoreRequest, TokenFlags};

/// `mg key h l t c` style probe without token handling.
fn probe(s: &memshard_store::Store, key: &str) -> Option<(bool, u64, i64, u64)> {
    s.meta_get(key.as_bytes(), &MetaGetOptions::default(), |it| {
        it.map(|it| (it.fetched(), it.last_access(), it.ttl(), it.cas()))
    })
}

/// `mg key [N<viv>] [R<r>]` returning (created, tokens).
fn mg_tokens(
    s: &memshard_store::Store,
    key: &str,
    vivify: Option<i64>,
    recache: Option<i64>,
) -> Option<(bool, TokenFlags)> {
    let opts = MetaGetOptions { vivify, ..MetaGetOptions::default() };
    s.meta_get(key.as_bytes(), &opts, |it| {
        let it = it?;
        let mut won = false;
        if vivify.is_some() {
            won |= it.apply_vivify_ttl();
        }
        if let Some(r) = recache {
            won |= it.recache_due(r);
        }
        Some((it.created(), it.settle_token(won)))
    })
}

#[test]
fn hit_flag_and_last_access_follow_memcached() {
    // memcached 1.6.18: set; mg l h -> "l0 h0"; sleep; mg -> "l3 h1";
    // the second fetch refreshes the access time.
    let (s, clock) = store();
    set(&s, "a", "x", 0);
    assert_eq!(probe(&s, "a").map(|p| (p.0, p.1)), Some((false, 0)));
    clock.advance(3);
    assert_eq!(probe(&s, "a").map(|p| (p.0, p.1)), Some((true, 3)));
    assert_eq!(probe(&s, "a").map(|p| (p.0, p.1)), Some((true, 0)));
    // A text get is a fetch as well; touch too.
    set(&s, "b", "x", 0);
    s.get(b"b");
    assert!(probe(&s, "b").unwrap().0);
    set(&s, "c", "x", 0);
    s.touch(b"c", 100);
    assert!(probe(&s, "c").unwrap().0);
}

#[test]
fn no_bump_leaves_state_alone() {
    let (s, _clock) = store();
    set(&s, "a", "x", 0);
    let opts = MetaGetOptions { bump: false, ..MetaGetOptions::default() };
    for _ in 0..3 {
        s.meta_get(b"a", &opts, |it| assert!(!it.unwrap().fetched()));
    }
    assert!(s.peek(b"a").is_some());
    assert!(!probe(&s, "a").unwrap().0);
}

#[test]
fn vivify_wins_once_then_reports_token_sent() {
    // memcached: `mg q N30 t c s v` -> "VA 0 t30 c.. s0 W", then "... Z".
    let (s, _clock) = store();
    let (created, tokens) = mg_tokens(&s, "q", Some(30), None).unwrap();
    assert!(created);
    assert_eq!(tokens, TokenFlags { win: true, already_sent: false, stale: false });
    assert_eq!(s.ttl(b"q"), Some(30));
    assert_eq!(get(&s, "q").as_deref(), Some(""));
    let (created, tokens) = mg_tokens(&s, "q", Some(30), None).unwrap();
    assert!(!created);
    assert_eq!(tokens, TokenFlags { win: false, already_sent: true, stale: false });
    // h after the vivifying mg: memcached reports h1.
    assert!(probe(&s, "q").unwrap().0);
}

#[test]
fn vivify_ttl_is_applied_even_if_the_server_skips_it() {
    let (s, _clock) = store();
    let opts = MetaGetOptions { vivify: Some(60), ..MetaGetOptions::default() };
    let ttl_seen = s.meta_get(b"v", &opts, |it| it.map(|it| it.ttl()));
    assert_eq!(ttl_seen, Some(-1), "memcached applies N in flag order");
    assert_eq!(s.ttl(b"v"), Some(60));
}

#[test]
fn recache_token_goes_to_first_asker() {
    let (s, _clock) = store();
    set(&s, "r", "x", 10);
    // Plenty of TTL left: nobody wins.
    assert!(!mg_tokens(&s, "r", None, Some(5)).unwrap().1.win);
    // TTL below the threshold: first asker wins, the next sees Z.
    let first = mg_tokens(&s, "r", None, Some(30)).unwrap().1;
    assert_eq!(first, TokenFlags { win: true, already_sent: false, stale: false });
    let second = mg_tokens(&s, "r", None, Some(30)).unwrap().1;
    assert_eq!(second, TokenFlags { win: false, already_sent: true, stale: false });
    // Items without expiry never trigger recache.
    set(&s, "forever", "x", 0);
    assert!(!mg_tokens(&s, "forever", None, Some(30)).unwrap().1.win);
}

#[test]
fn invalidate_marks_stale_and_hands_out_one_win() {
    // memcached: md a I T30 -> HD; mg a c t v -> "c46 t30 X W"; again -> "Z X".
    let (s, _clock) = store();
    let c = set(&s, "a", "x", 0);
    mg_tokens(&s, "a", Some(30), None); // not created, no token yet
    let req = DeleteRequest { invalidate: true, exptime: Some(30), ..DeleteRequest::default() };
    assert_eq!(s.delete_with(b"a", &req), DeleteOutcome::Deleted);
    let (_, _, ttl, cas) = probe(&s, "a").unwrap();
    assert_eq!(ttl, 30);
    assert!(cas > c, "invalidation bumps the CAS");
    assert_eq!(get(&s, "a").as_deref(), Some("x"), "stale items still read");
    let first = mg_tokens(&s, "a", None, None).unwrap().1;
    assert_eq!(first, TokenFlags { win: true, already_sent: false, stale: true });
    let second = mg_tokens(&s, "a", None, None).unwrap().1;
    assert_eq!(second, TokenFlags { win: false, already_sent: true, stale: true });
    // Invalidating again clears the token so the next reader can win.
    s.delete_with(b"a", &req);
    assert!(mg_tokens(&s, "a", None, None).unwrap().1.win);
}

#[test]
fn md_cas_mismatch_and_missing() {
    let (s, _clock) = store();
    let req = DeleteRequest { cas: Some(1), invalidate: true, ..DeleteRequest::default() };
    assert_eq!(s.delete_with(b"nope", &req), DeleteOutcome::NotFound);
    let c = set(&s, "a", "x", 0);
    assert_eq!(s.delete_with(b"a", &DeleteRequest { cas: Some(c + 9), ..req }), DeleteOutcome::Exists);
    assert_eq!(s.delete_with(b"a", &DeleteRequest { cas: Some(c), new_cas: Some(99), ..req }), DeleteOutcome::Deleted);
    assert_eq!(s.get(b"a").unwrap().cas(), 99);
}

#[test]
fn ms_invalidate_with_older_cas_stores_stale() {
    let (s, clock) = store();
    let c1 = s.store(StoreMode::Set, b"k", 0, 50, b"v1", 0).cas;
    // Invalidate: the item gets a newer CAS c2; win token handed out.
    s.delete_with(b"k", &DeleteRequest { invalidate: true, ..DeleteRequest::default() });
    assert!(mg_tokens(&s, "k", None, None).unwrap().1.win);
    let c2 = s.get(b"k").unwrap().cas();
    assert!(c2 > c1);
    clock.advance(10);
    // The winner writes back with its (older) CAS and I: stored, still
    // stale, keeps the old TTL and the token-sent marker.
    let req = StoreRequest {
        cas: c1,
        invalidate: true,
        exptime: 1000,
        purge_on_failure: true,
        ..StoreRequest::new(StoreMode::Cas, b"k", b"v2")
    };
    let r = s.store_with(&req);
    assert_eq!(r.outcome, StoreOutcome::Stored);
    assert!(r.cas > c2);
    assert_eq!(get(&s, "k").as_deref(), Some("v2"));
    assert_eq!(s.ttl(b"k"), Some(40));
    let t = mg_tokens(&s, "k", None, None).unwrap().1;
    assert_eq!(t, TokenFlags { win: false, already_sent: true, stale: true });
    // Without I an older CAS is simply EXISTS.
    let req = StoreRequest { invalidate: false, ..req };
    assert_eq!(s.store_with(&req).outcome, StoreOutcome::Exists);
    // A matching CAS stores a fresh, non-stale value with the new TTL.
    let cur = s.get(b"k").unwrap().cas();
    let req = StoreRequest { cas: cur, invalidate: true, ..req };
    assert_eq!(s.store_with(&req).outcome, StoreOutcome::Stored);
    assert_eq!(s.ttl(b"k"), Some(1000));
    let t = mg_tokens(&s, "k", None, None).unwrap().1;
    assert_eq!(t, TokenFlags::default());
}

#[test]
fn md_clear_value_keeps_the_item() {
    let (s, _clock) = store();
    let c = s.store(StoreMode::Set, b"k", 3, 100, b"payload", 0).cas;
    let req = DeleteRequest { clear_value: true, flags: 8, ..DeleteRequest::default() };
    assert_eq!(s.delete_with(b"k", &req), DeleteOutcome::Deleted);
    let v = s.get(b"k").unwrap();
    assert_eq!((v.value(), v.flags(), v.cas()), (&b""[..], 8, c));
    assert_eq!(s.ttl(b"k"), Some(-1));
}

#[test]
fn mg_can_update_ttl_and_report_in_flag_order() {
    let (s, _clock) = store();
    s.store(StoreMode::Set, b"k", 77, 100, b"hello", 0);
    let out = s.meta_get(b"k", &MetaGetOptions::default(), |it| {
        let it = it.unwrap();
        let before = it.ttl();
        it.set_exptime(5);
        (before, it.ttl(), it.value_len(), it.flags(), it.view().value().to_vec(), it.memcached_size())
    });
    assert_eq!(out, (100, 5, 5, 77, b"hello".to_vec(), 48 + 2 + 4 + 7 + 8));
    assert_eq!(s.ttl(b"k"), Some(5));
}

#[test]
fn binary_keys_are_remembered() {
    let (s, _clock) = store();
    let req = StoreRequest { key_binary: true, ..StoreRequest::new(StoreMode::Set, b"\x00\x01 k", b"v") };
    s.store_with(&req);
    assert!(s.get(b"\x00\x01 k").unwrap().key_binary());
    assert!(s.meta_get(b"\x00\x01 k", &MetaGetOptions::default(), |it| it.unwrap().key_binary()));
}
