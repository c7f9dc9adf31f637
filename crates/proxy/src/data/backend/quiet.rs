//! Quiet meta commands (`q`): memcached sends no answer for their usual
//! outcome, so a proxy that matches answers to requests in order cannot
//! forward them as they are. Each is asked of the server without `q`
//! ([`unquiet`]), and the answer memcached would not have sent is dropped
//! on its way back ([`suppressed`]).

use base64::Engine;
use memshard_proto::{MetaCode, MetaFlags, Reply};

/// Writes meta command `cmd` as asked of a server for a quiet client
/// request: the same key, data and flags, without `q`.
pub(crate) fn unquiet(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], data: Option<&[u8]>, flags: &MetaFlags<'_>) {
    out.extend_from_slice(cmd);
    out.push(b' ');
    if flags.base64 {
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(key).as_bytes());
    } else {
        out.extend_from_slice(key);
    }
    if let Some(d) = data {
        out.push(b' ');
        memshard_proto::put_u64(out, d.len() as u64);
    }
    for t in flags.tokens() {
        if t.first() != Some(&b'q') {
            out.push(b' ');
            out.extend_from_slice(t);
        }
    }
    out.extend_from_slice(b"\r\n");
    if let Some(d) = data {
        out.extend_from_slice(d);
        out.extend_from_slice(b"\r\n");
    }
}

/// memcached 1.6's quiet-mode rules: mg hides `EN`, ms and md hide `HD`, ma
/// hides `HD` and `VA`.
pub(crate) fn suppressed(cmd: &[u8], answer: &[u8]) -> bool {
    let Ok(Some((Reply::Meta { code, .. }, _))) = Reply::decode(answer) else { return false };
    matches!((cmd, code), (b"mg", MetaCode::En) | (b"ms" | b"md", MetaCode::Hd) | (b"ma", MetaCode::Hd | MetaCode::Va))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_answers_are_those_memcached_hides() {
        assert!(suppressed(b"mg", b"EN\r\n") && !suppressed(b"mg", b"HD\r\n"));
        assert!(suppressed(b"ma", b"VA 1\r\n1\r\n") && suppressed(b"ms", b"HD\r\n"));
        assert!(!suppressed(b"ms", b"NS\r\n") && !suppressed(b"md", b"NF\r\n"));
    }
}
