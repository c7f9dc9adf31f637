//! Invariants checked by the fuzz targets and by the regression corpus in
//! `cargo test`. Public so `fuzz/` can call it; not part of the protocol API.

use crate::{Decoder, MAX_KEY_LEN, MAX_REPLY_LINE, MetaCode, Reply, ReplyError};

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

/// Decodes `data` as a stream of reply units, as a client or the proxy reads a
/// server's answer, and panics if an invariant breaks:
///
/// - progress: every decoded unit used at least one byte and no more than
///   were given;
/// - the unit is self-contained: decoding exactly the bytes it used gives the
///   same unit, and one byte fewer is incomplete (`Ok(None)`), so the answer
///   does not depend on how the stream was split into reads (see the line
///   limit exception below);
/// - data blocks (`VALUE`, `VA`) are the bytes just before the closing CRLF,
///   and `VALUE` keys are 1 to 250 bytes without space or line feed;
/// - every decoded unit re-encodes to bytes that decode to the same unit and
///   use exactly the encoding, and that encoding is canonical: encoding the
///   re-decoded unit gives the same bytes again;
/// - `Ok(None)` with a line feed in the buffer only happens for a header
///   waiting for its data block, and `LineTooLong` only without a line feed.
///
/// The re-encoding is not compared with the input byte for byte: the decoder
/// accepts spellings memcached never sends and the encoder writes one
/// canonical form. A bare `\n` line end becomes `\r\n`; numbers lose leading
/// blanks, `+` signs and zeros, and flags above `u32::MAX` are truncated as
/// memcached truncates them; text after a status word (`END x`) is dropped;
/// `VERSION` and `STAT name` gain the separating space; a meta reply loses a
/// lone trailing space. The decoded units are equal, which is what a client
/// sees.
///
/// A decode error ends the stream, as it ends a connection: a reply stream
/// cannot be resynchronised.
pub fn check_reply_decoder(data: &[u8]) {
    let mut rest = data;
    // Bounded: every step consumes at least one byte or stops.
    while !rest.is_empty() {
        match Reply::decode(rest) {
            Ok(Some((reply, used))) => {
                assert!(used > 0 && used <= rest.len(), "used {used} of {}", rest.len());
                check_reply(&reply, &rest[..used]);
                rest = &rest[used..];
            }
            Ok(None) => {
                if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                    let line = &rest[..nl];
                    assert!(
                        line.starts_with(b"VALUE ") || line.starts_with(b"VA "),
                        "incomplete although a whole line that has no data block is there: {:?}",
                        String::from_utf8_lossy(line)
                    );
                }
                break;
            }
            Err(ReplyError::LineTooLong) => {
                assert!(rest.len() > MAX_REPLY_LINE && !rest.contains(&b'\n'), "LineTooLong with a line feed");
                break;
            }
            Err(_) => break,
        }
    }
}

/// The invariants of one decoded unit; `wire` is exactly the bytes it used.
fn check_reply(reply: &Reply<'_>, wire: &[u8]) {
    let used = wire.len();
    assert_eq!(Reply::decode(wire).as_ref(), Ok(&Some((reply.clone(), used))), "bytes after the unit changed it");
    let prefix = Reply::decode(&wire[..used - 1]);
    let block = matches!(reply, Reply::Value { .. } | Reply::Meta { data: Some(_), .. });
    if block || used - 1 <= MAX_REPLY_LINE {
        assert_eq!(prefix, Ok(None), "a unit decoded from a prefix of its bytes");
    } else {
        // A line longer than MAX_REPLY_LINE is accepted when its line feed
        // arrives with it, and refused while it is still unterminated (as
        // memcached does with request lines): the limit only bounds how long a
        // decoder waits for a line feed.
        assert_eq!(prefix, Err(ReplyError::LineTooLong));
    }

    match reply {
        Reply::Value { key, data, .. } => {
            assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN, "key length {}", key.len());
            assert!(!key.iter().any(|&b| b == b' ' || b == b'\n'), "bad key byte in {key:?}");
            check_block(wire, data);
        }
        Reply::Meta { code, data, .. } => {
            assert_eq!(*code == MetaCode::Va, data.is_some(), "a data block on {code:?} only for VA");
            if let Some(data) = data {
                check_block(wire, data);
            }
        }
        _ => assert!(wire.ends_with(b"\n"), "a line unit not ended by a line feed"),
    }

    let mut again = Vec::new();
    reply.encode(&mut again);
    match Reply::decode(&again) {
        Ok(Some((decoded, n))) => {
            assert_eq!(&decoded, reply, "re-encode changed the reply");
            assert_eq!(n, again.len(), "the re-encoded reply used {n} of {} bytes", again.len());
            let mut canonical = Vec::new();
            decoded.encode(&mut canonical);
            assert_eq!(canonical, again, "encoding is not canonical");
        }
        other => panic!("re-encoded reply does not decode: {other:?} from {:?}", String::from_utf8_lossy(&again)),
    }
}

/// A data block is the bytes just before the unit's closing CRLF.
fn check_block(wire: &[u8], data: &[u8]) {
    assert!(wire.ends_with(b"\r\n"), "data block not closed by CRLF");
    let end = wire.len() - 2;
    assert!(data.len() <= end && &wire[end - data.len()..end] == data, "data block is not where the header says");
}
