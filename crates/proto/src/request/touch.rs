//! `touch <key> <exptime> [noreply]`.

use super::{Ctx, DecodeResult, Request, key_ok, noreply_token, put_i64};
use crate::error::msg;
use crate::line::Tokens;
use crate::number::parse_i32;
use bytes::BufMut;

/// A touch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch<'a> {
    /// The key.
    pub key: &'a [u8],
    /// New raw exptime.
    pub exptime: i64,
    /// Suppress the reply.
    pub noreply: bool,
}

impl Touch<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"touch ");
        out.put_slice(self.key);
        out.put_u8(b' ');
        put_i64(out, self.exptime);
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if n != 4 && n != 5 {
        return Err(ctx.err(msg::ERROR));
    }
    let noreply = noreply_token(t);
    let key = t.at(1);
    if !key_ok(key) {
        return Err(ctx.err(msg::BAD_FORMAT).noreply(noreply));
    }
    let Some(exptime) = parse_i32(t.at(2)) else {
        return Err(ctx.err(msg::BAD_EXPTIME).noreply(noreply));
    };
    Ok(Some((Request::Touch(Touch { key, exptime: i64::from(exptime), noreply }), ctx.line_len)))
}
