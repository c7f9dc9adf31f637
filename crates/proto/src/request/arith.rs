//! `incr`/`decr <key> <delta> [noreply]`.

use super::{Ctx, DecodeResult, Request, key_ok, noreply_token, put_u64};
use crate::error::msg;
use crate::line::Tokens;
use crate::number::parse_u64;
use bytes::BufMut;

/// An incr or decr request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arith<'a> {
    /// incr (true) or decr (false).
    pub incr: bool,
    /// The key.
    pub key: &'a [u8],
    /// Amount to add or subtract.
    pub delta: u64,
    /// Suppress the reply.
    pub noreply: bool,
}

impl Arith<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(if self.incr { b"incr " } else { b"decr " });
        out.put_slice(self.key);
        out.put_u8(b' ');
        put_u64(out, self.delta);
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode<'a>(incr: bool, t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if n != 4 && n != 5 {
        return Err(ctx.err(msg::ERROR));
    }
    let noreply = noreply_token(t);
    let key = t.at(1);
    if !key_ok(key) {
        return Err(ctx.err(msg::BAD_FORMAT).noreply(noreply));
    }
    let Some(delta) = parse_u64(t.at(2)) else {
        return Err(ctx.err(msg::BAD_DELTA).noreply(noreply));
    };
    Ok(Some((Request::Arith(Arith { incr, key, delta, noreply }), ctx.line_len)))
}
