//! `ma <key> <flags>*`.

use super::meta::{MAX_META_TOKENS, MetaFlags, encode_line};
use super::{Ctx, DecodeResult, Request, key_ok};
use crate::error::msg;
use crate::line::Tokens;
use bytes::BufMut;
use std::borrow::Cow;

/// Direction of a meta arithmetic request (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaArithMode {
    /// `MI`, `M+` or no mode.
    Incr,
    /// `MD` or `M-`.
    Decr,
}

/// A meta arithmetic request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArith<'a> {
    /// The key (decoded when `b` was given).
    pub key: Cow<'a, [u8]>,
    /// Flags in request order.
    pub flags: MetaFlags<'a>,
    /// Increment or decrement.
    pub mode: MetaArithMode,
}

impl MetaArith<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        encode_line(out, b"ma", &self.key, None, &self.flags);
    }

    /// The delta (`D`, default 1).
    pub fn delta(&self) -> u64 {
        self.flags.delta.unwrap_or(1)
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
        return Err(ctx.err(msg::FLAGS_TOO_LONG));
    }
    let (flags, key) = MetaFlags::parse(t.slice(2), t.at(1)).map_err(|_| ctx.err(msg::INVALID_OR_DUP_FLAG))?;
    let mode = match flags.mode {
        None | Some(b'I' | b'+') => MetaArithMode::Incr,
        Some(b'D' | b'-') => MetaArithMode::Decr,
        Some(_) => return Err(ctx.err(msg::BAD_MA_MODE)),
    };
    if flags.opaque_too_long() {
        return Err(ctx.err(msg::OPAQUE_TOO_LONG));
    }
    Ok(Some((Request::MetaArith(MetaArith { key, flags, mode }), ctx.line_len)))
}
