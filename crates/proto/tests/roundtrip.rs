//! Property tests: every request and reply type survives encode → decode, and
//! the decoder never panics or over-consumes on arbitrary bytes.

use memshard_proto::{
    Arith, Decoder, Delete, FlushAll, Get, GetCmd, Keys, MAX_UNTERMINATED_LINE, MetaArith, MetaArithMode, MetaCode,
    MetaDelete, MetaFlags, MetaGet, MetaSet, MetaSetMode, Reply, Request, Stats, Store, StoreCmd, Touch, Verbosity,
};
use proptest::prelude::*;
use std::borrow::Cow;

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0x21u8..0x7f, 1..=250)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"a\r\nb\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 1000..3000),
    ]
}

fn roundtrip(req: &Request<'_>) {
    let mut wire = Vec::new();
    req.encode(&mut wire);
    let (decoded, used) = Decoder::default()
        .decode(&wire)
        .unwrap_or_else(|e| panic!("{e:?} for {:?}", String::from_utf8_lossy(&wire)))
        .unwrap_or_else(|| panic!("incomplete: {:?}", String::from_utf8_lossy(&wire)));
    assert_eq!(used, wire.len());
    assert_eq!(&decoded, req);
    // Every strict prefix is "need more", never an error or a different request.
    // (memcached gives up on an unterminated line over 2048 bytes unless it is a
    // get/gets, so longer prefixes of other commands legitimately close.)
    let long_ok = wire.starts_with(b"get ") || wire.starts_with(b"gets ");
    for cut in [wire.len() / 2, wire.len() - 1] {
        let line_end = wire.iter().position(|&b| b == b'\n').unwrap_or(wire.len());
        if cut > MAX_UNTERMINATED_LINE && cut <= line_end && !long_ok {
            continue;
        }
        if cut > 0 && cut < wire.len() {
            assert_eq!(Decoder::default().decode(&wire[..cut]), Ok(None));
        }
    }
}

/// Meta flag tokens that are valid for every meta command.
fn meta_tokens() -> impl Strategy<Value = Vec<String>> {
    let flag = prop_oneof![
        Just("c".to_string()),
        Just("f".to_string()),
        Just("h".to_string()),
        Just("k".to_string()),
        Just("l".to_string()),
        Just("s".to_string()),
        Just("t".to_string()),
        Just("v".to_string()),
        Just("u".to_string()),
        Just("q".to_string()),
        Just("I".to_string()),
        (0u32..100_000).prop_map(|n| format!("T{n}")),
        (0u32..100_000).prop_map(|n| format!("N{n}")),
        (0u32..100_000).prop_map(|n| format!("R{n}")),
        any::<u32>().prop_map(|n| format!("F{n}")),
        any::<u64>().prop_map(|n| format!("C{n}")),
        any::<u64>().prop_map(|n| format!("E{n}")),
        "[a-zA-Z0-9]{0,20}".prop_map(|o| format!("O{o}")),
    ];
    proptest::collection::vec(flag, 0..8).prop_map(|mut v| {
        // A flag letter may appear once.
        let mut seen = std::collections::HashSet::new();
        v.retain(|t| seen.insert(t.as_bytes()[0]));
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn get_roundtrip(keys in proptest::collection::vec(key(), 1..40), cmd in 0..4u8, exptime in -100i64..100_000) {
        let cmd = [GetCmd::Get, GetCmd::Gets, GetCmd::Gat, GetCmd::Gats][cmd as usize];
        let raw = keys.join(&b' ');
        let exptime = if matches!(cmd, GetCmd::Gat | GetCmd::Gats) { exptime } else { 0 };
        roundtrip(&Request::Get(Get { cmd, exptime, keys: Keys::from_raw(&raw) }));
    }

    #[test]
    fn store_roundtrip(k in key(), v in value(), flags: u32, exptime in -1000i64..i32::MAX as i64, cas: u64, cmd in 0..6u8, noreply: bool) {
        let cmd = [StoreCmd::Set, StoreCmd::Add, StoreCmd::Replace, StoreCmd::Append, StoreCmd::Prepend, StoreCmd::Cas][cmd as usize];
        let cas = if cmd == StoreCmd::Cas { cas } else { 0 };
        roundtrip(&Request::Store(Store { cmd, key: &k, flags, exptime, cas, noreply, value: &v }));
    }

    #[test]
    fn simple_roundtrips(k in key(), delta: u64, incr: bool, noreply: bool, exptime in -1000i64..i32::MAX as i64, level: u32) {
        roundtrip(&Request::Delete(Delete { key: &k, noreply }));
        roundtrip(&Request::Arith(Arith { incr, key: &k, delta, noreply }));
        roundtrip(&Request::Touch(Touch { key: &k, exptime, noreply }));
        roundtrip(&Request::FlushAll(FlushAll { delay: exptime, noreply }));
        roundtrip(&Request::Verbosity(Verbosity { level, noreply }));
        roundtrip(&Request::Stats(Stats { group: None, arg: None, arg2: None }));
        roundtrip(&Request::Stats(Stats { group: Some(b"settings"), arg: None, arg2: None }));
        roundtrip(&Request::Version);
        roundtrip(&Request::Quit);
        roundtrip(&Request::CacheMemlimit(memshard_proto::CacheMemlimit { megabytes: level, noreply }));
        roundtrip(&Request::MetaNoop);
    }

    #[test]
    fn meta_roundtrip(k in key(), bin in proptest::collection::vec(any::<u8>(), 1..100), use_b: bool, toks in meta_tokens(), v in value(), mode in 0..5u8, decr: bool) {
        let encoded;
        let (raw_key, mut toks): (&[u8], Vec<String>) = if use_b {
            encoded = base64_encode(&bin);
            (encoded.as_bytes(), toks)
        } else {
            (&k, toks)
        };
        if use_b { toks.push("b".into()); }
        let refs: Vec<&[u8]> = toks.iter().map(|t| t.as_bytes()).collect();
        let (flags, key) = MetaFlags::parse(&refs, raw_key).expect("valid flags");
        roundtrip(&Request::MetaGet(MetaGet { key: key.clone(), flags }));
        roundtrip(&Request::MetaDelete(MetaDelete { key: key.clone(), flags }));
        let ma = MetaArith { key: key.clone(), flags, mode: if decr { MetaArithMode::Decr } else { MetaArithMode::Incr } };
        if flags.mode.is_none() && !decr { roundtrip(&Request::MetaArith(ma)); }
        let mut mtoks = toks.clone();
        let modes = [("MS", MetaSetMode::Set), ("ME", MetaSetMode::Add), ("MA", MetaSetMode::Append), ("MP", MetaSetMode::Prepend), ("MR", MetaSetMode::Replace)];
        mtoks.push(modes[mode as usize].0.to_string());
        let mrefs: Vec<&[u8]> = mtoks.iter().map(|t| t.as_bytes()).collect();
        let (mflags, mkey) = MetaFlags::parse(&mrefs, raw_key).expect("valid flags");
        roundtrip(&Request::MetaSet(MetaSet { key: Cow::Owned(mkey.into_owned()), flags: mflags, mode: modes[mode as usize].1, value: &v }));
    }

    #[test]
    fn reply_roundtrip(k in key(), v in value(), flags: u32, cas in proptest::option::of(any::<u64>()), n: u64, code in 0..8u8, mflags in "[a-zA-Z0-9 ]{0,30}") {
        let mflags = mflags.trim().to_string();
        let codes = [MetaCode::Hd, MetaCode::Va, MetaCode::En, MetaCode::Ns, MetaCode::Ex, MetaCode::Nf, MetaCode::Mn, MetaCode::Me];
        let code = codes[code as usize];
        let replies = vec![
            Reply::Value { key: &k, flags, cas, data: &v },
            Reply::End, Reply::Stored, Reply::NotStored, Reply::Exists, Reply::NotFound, Reply::Deleted,
            Reply::Touched, Reply::Ok, Reply::Reset, Reply::Number(n), Reply::Version(b"1.6.18"),
            Reply::Stat { name: b"curr_items", value: b"42" }, Reply::Error,
            Reply::ClientError(b"bad data chunk"), Reply::ServerError(b"object too large for cache"),
            Reply::Meta { code, flags: mflags.as_bytes(), data: if code == MetaCode::Va { Some(&v) } else { None } },
        ];
        for r in replies {
            let mut wire = Vec::new();
            r.encode(&mut wire);
            let (d, used) = Reply::decode(&wire).expect("decodes").expect("complete");
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(d, r);
            prop_assert_eq!(Reply::decode(&wire[..wire.len() - 1]).expect("prefix ok"), None);
        }
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check_decoder_invariants(&bytes);
    }

    #[test]
    fn decoder_never_panics_on_near_misses(line in "(get|gets|gat|set|add|cas|incr|decr|delete|touch|mg|ms|md|ma|mn|me|flush_all|verbosity|stats)( [a-zA-Z0-9\\-+=/]{0,12}){0,6}\r?\n[a-z\r\n]{0,10}") {
        check_decoder_invariants(line.as_bytes());
    }
}

fn check_decoder_invariants(bytes: &[u8]) {
    let d = Decoder::new(4096);
    match d.decode(bytes) {
        Ok(Some((req, used))) => {
            assert!(used > 0 && used <= bytes.len());
            // Whatever decodes re-encodes to something that decodes to the same.
            let mut wire = Vec::new();
            req.encode(&mut wire);
            if let Ok(Some((again, _))) = d.decode(&wire) {
                assert_eq!(again, req);
            } else {
                panic!("re-encoded request does not decode: {:?}", String::from_utf8_lossy(&wire));
            }
        }
        Ok(None) => {}
        Err(e) => {
            assert!(e.consumed <= bytes.len());
            assert!(e.consumed > 0);
        }
    }
    let _ = Reply::decode(bytes);
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
