//! Invariants checked by the fuzz targets and by the regression corpus in
//! `cargo test`. Public so `fuzz/` can call it; not part of the protocol API.

use crate::{Decoder, MAX_KEY_LEN, Reply};

/// Decodes `data` as a stream of requests with a small item limit and panics if
/// an invariant breaks: progress on every step, nothing consumed beyond the
/// input, keys within memcached's limits, and every decoded request re-encodes
/// to bytes that decode to the same request.
pub fn check_request_decoder(data: &[u8]) {
    let dec = Decoder::new(4096);
    let mut rest = data;
    // Bounded: every step consumes at least one byte or stops.
    while !rest.is_empty() {
        match dec.decode(rest) {
            Ok(Some((req, used))) => {
                assert!(used > 0 && used <= rest.len(), "used {used} of {}", rest.len());
                check_keys(&req);
                let mut wire = Vec::new();
                req.encode(&mut wire);
                match dec.decode(&wire) {
                    Ok(Some((again, n))) => {
                        assert_eq!(again, req, "re-encode changed the request");
                        assert_eq!(n, wire.len());
                    }
                    other => panic!("re-encoded request does not decode: {other:?}"),
                }
                rest = &rest[used..];
            }
            Ok(None) => break,
            Err(e) => {
                assert!(e.consumed > 0 && e.consumed <= rest.len());
                if e.close {
                    break;
                }
                let skip = (e.consumed as u64).saturating_add(e.swallow).min(rest.len() as u64) as usize;
                rest = &rest[skip..];
            }
        }
    }
    // The reply decoder must not panic on the same bytes either.
    let _ = Reply::decode(data);
}

fn check_keys(req: &crate::Request<'_>) {
    use crate::Request;
    let text_key = |k: &[u8]| {
        assert!(!k.is_empty() && k.len() <= MAX_KEY_LEN);
        assert!(!k.iter().any(|&b| b <= b' ' || b == 0x7f), "bad key byte in {k:?}");
    };
    match req {
        Request::Get(g) => g.keys.iter().for_each(text_key),
        Request::Store(s) => text_key(s.key),
        Request::Delete(d) => text_key(d.key),
        Request::Arith(a) => text_key(a.key),
        Request::Touch(t) => text_key(t.key),
        Request::MetaGet(m) => assert!(m.key.len() <= MAX_KEY_LEN),
        Request::MetaSet(m) => assert!(m.key.len() <= MAX_KEY_LEN),
        Request::MetaDelete(m) => assert!(m.key.len() <= MAX_KEY_LEN),
        Request::MetaArith(m) => assert!(m.key.len() <= MAX_KEY_LEN),
        _ => {}
    }
}
