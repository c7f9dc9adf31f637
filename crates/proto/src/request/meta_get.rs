//! `mg <key> <flags>*`.

use super::meta::{MAX_META_TOKENS, MetaFlags, encode_line};
use super::{Ctx, DecodeResult, Request, key_ok};
use crate::error::msg;
use crate::line::Tokens;
use bytes::BufMut;
use std::borrow::Cow;

/// A meta get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaGet<'a> {
    /// The key (decoded when `b` was given).
    pub key: Cow<'a, [u8]>,
    /// Flags in request order.
    pub flags: MetaFlags<'a>,
}

impl MetaGet<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        encode_line(out, b"mg", &self.key, None, &self.flags);
    }
}

pub(super) fn decode<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    if t.ntokens() < 3 {
        return Err(ctx.err(msg::ERROR));
    }
    if !key_ok(t.at(1)) {
        return Err(ctx.err(msg::BAD_FORMAT));
    }
    if t.ntokens() > MAX_META_TOKENS {
        return Err(ctx.err(msg::MG_FLAGS_TOO_LONG));
    }
    let (flags, key) = MetaFlags::parse(t.slice(2), t.at(1)).map_err(|e| ctx.err(e))?;
    if flags.opaque_too_long() {
        return Err(ctx.err(msg::OPAQUE_TOO_LONG));
    }
    Ok(Some((Request::MetaGet(MetaGet { key, flags }), ctx.line_len)))
}
