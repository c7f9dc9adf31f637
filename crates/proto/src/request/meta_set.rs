//! `ms <key> <datalen> <flags>*` and its data block.

use super::meta::{MAX_META_TOKENS, MetaFlags, encode_line};
use super::{Ctx, DecodeResult, Request, data_block, item_size_ok, key_ok};
use crate::error::{ProtoError, msg};
use crate::line::Tokens;
use crate::number::parse_i32;
use bytes::BufMut;
use std::borrow::Cow;

/// The storage mode of a meta set (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSetMode {
    /// `MS` or no mode: set (cas when `C` is given).
    Set,
    /// `ME`: add.
    Add,
    /// `MA`: append.
    Append,
    /// `MP`: prepend.
    Prepend,
    /// `MR`: replace (cas when `C` is given).
    Replace,
}

/// A meta set with its data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSet<'a> {
    /// The key (decoded when `b` was given).
    pub key: Cow<'a, [u8]>,
    /// Flags in request order.
    pub flags: MetaFlags<'a>,
    /// Storage mode.
    pub mode: MetaSetMode,
    /// The data block without its `\r\n`.
    pub value: &'a [u8],
}

impl MetaSet<'_> {
    /// Writes the request line and data block.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        encode_line(out, b"ms", &self.key, Some(self.value.len()), &self.flags);
        out.put_slice(self.value);
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if n < 3 {
        return Err(ctx.err(msg::ERROR));
    }
    if !key_ok(t.at(1)) || n == 3 {
        return Err(ctx.err(msg::BAD_FORMAT));
    }
    if n > MAX_META_TOKENS {
        return Err(ctx.err(msg::FLAGS_TOO_LONG));
    }
    let vlen = match parse_i32(t.at(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return Err(ctx.err(msg::BAD_FORMAT)),
    };
    // From here on memcached knows the length, so errors swallow the data block.
    let fail = |reply| Err(ctx.err(reply).swallow(vlen as u64 + 2));
    let (flags, key) = match MetaFlags::parse(t.slice(3), t.at(1)) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let mode = match flags.mode {
        None | Some(b'S') => MetaSetMode::Set,
        Some(b'E') => MetaSetMode::Add,
        Some(b'A') => MetaSetMode::Append,
        Some(b'P') => MetaSetMode::Prepend,
        Some(b'R') => MetaSetMode::Replace,
        Some(_) => return fail(msg::BAD_MS_MODE),
    };
    if flags.opaque_too_long() {
        return fail(msg::OPAQUE_TOO_LONG);
    }
    if flags.size.is_some_and(|s| s != vlen as i64) {
        return fail(msg::BAD_FORMAT);
    }
    if !item_size_ok(ctx.dec.max_item_size, key.len(), flags.client_flags.unwrap_or(0), vlen) {
        let mut e = ctx.err(msg::TOO_LARGE).swallow(vlen as u64 + 2);
        e.unlink = Some(key);
        return Err(e);
    }
    match data_block(ctx, vlen) {
        Ok(None) => Ok(None),
        Ok(Some((value, used))) => Ok(Some((Request::MetaSet(MetaSet { key, flags, mode, value }), used))),
        Err(used) => Err(ProtoError::new(msg::BAD_CHUNK, used)),
    }
}

#[cfg(test)]
mod tests {
    use crate::request::{Decoder, MetaSetMode, Request};

    #[test]
    fn ms_modes_and_swallow() {
        let d = Decoder::default();
        let (req, used) = d.decode(b"ms k 2 MA T0 c\r\nhi\r\n").unwrap().unwrap();
        assert_eq!(used, 20);
        let Request::MetaSet(ms) = req else { panic!() };
        assert_eq!((ms.mode, ms.value), (MetaSetMode::Append, &b"hi"[..]));
        let e = d.decode(b"ms k 2 MZ\r\nhi\r\n").unwrap_err();
        assert_eq!((e.reply, e.swallow), (Some("CLIENT_ERROR invalid mode for ms M token"), 4));
        let e = d.decode(b"ms k\r\n").unwrap_err();
        assert_eq!((e.reply, e.swallow), (Some("CLIENT_ERROR bad command line format"), 0));
    }
}
