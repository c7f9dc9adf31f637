//! Storage: `set`, `add`, `replace`, `append`, `prepend`, `cas`.

use super::{Ctx, DecodeResult, Request, data_block, item_size_ok, key_ok, noreply_token, put_i64, put_u64};
use crate::error::{ProtoError, msg};
use crate::line::Tokens;
use crate::number::{parse_i32, parse_u32, parse_u64};
use bytes::BufMut;
use std::borrow::Cow;

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCmd {
    /// Store unconditionally.
    Set,
    /// Store only if absent.
    Add,
    /// Store only if present.
    Replace,
    /// Append to an existing value.
    Append,
    /// Prepend to an existing value.
    Prepend,
    /// Store only if the CAS unique matches.
    Cas,
}

impl StoreCmd {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreCmd::Set => "set",
            StoreCmd::Add => "add",
            StoreCmd::Replace => "replace",
            StoreCmd::Append => "append",
            StoreCmd::Prepend => "prepend",
            StoreCmd::Cas => "cas",
        }
    }
}

/// A storage request with its data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store<'a> {
    /// Which command.
    pub cmd: StoreCmd,
    /// The key.
    pub key: &'a [u8],
    /// Opaque client flags.
    pub flags: u32,
    /// Raw exptime as sent (see the store for its meaning).
    pub exptime: i64,
    /// CAS unique to compare (cas only).
    pub cas: u64,
    /// Suppress the reply.
    pub noreply: bool,
    /// The data block without its `\r\n`.
    pub value: &'a [u8],
}

impl Store<'_> {
    /// Writes the request line and data block.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(self.cmd.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.key);
        out.put_u8(b' ');
        put_u64(out, u64::from(self.flags));
        out.put_u8(b' ');
        put_i64(out, self.exptime);
        out.put_u8(b' ');
        put_u64(out, self.value.len() as u64);
        if self.cmd == StoreCmd::Cas {
            out.put_u8(b' ');
            put_u64(out, self.cas);
        }
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
        out.put_slice(self.value);
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode<'a>(cmd: StoreCmd, t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    let ok_count = if cmd == StoreCmd::Cas { n == 7 || n == 8 } else { n == 6 || n == 7 };
    if !ok_count {
        return Err(ctx.err(msg::ERROR));
    }
    let noreply = noreply_token(t);
    let bad = |r| Err(ctx.err(r).noreply(noreply));
    let key = t.at(1);
    if !key_ok(key) {
        return bad(msg::BAD_FORMAT);
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (parse_u32(t.at(2)), parse_i32(t.at(3)), parse_i32(t.at(4))) else {
        return bad(msg::BAD_FORMAT);
    };
    let mut cas = 0;
    if cmd == StoreCmd::Cas {
        match parse_u64(t.at(5)) {
            Some(v) => cas = v,
            None => return bad(msg::BAD_FORMAT),
        }
    }
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return bad(msg::BAD_FORMAT);
    }
    let vlen = vlen as usize;
    if !item_size_ok(ctx.dec.max_item_size, key.len(), flags, vlen) {
        let mut e = ProtoError::new(msg::TOO_LARGE, ctx.line_len).noreply(noreply).swallow(vlen as u64 + 2);
        if cmd == StoreCmd::Set {
            e.unlink = Some(Cow::Borrowed(key));
        }
        return Err(e);
    }
    match data_block(ctx, vlen) {
        Ok(None) => Ok(None),
        Ok(Some((value, used))) => Ok(Some((
            Request::Store(Store { cmd, key, flags, exptime: i64::from(exptime), cas, noreply, value }),
            used,
        ))),
        Err(used) => Err(ProtoError::new(msg::BAD_CHUNK, used).noreply(noreply)),
    }
}

#[cfg(test)]
mod tests {
    use crate::request::{Decoder, Request, StoreCmd};

    #[test]
    fn set_with_crlf_inside_value() {
        let buf = b"set k 5 0 4\r\na\r\nb\r\n";
        let (req, used) = Decoder::default().decode(buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        let Request::Store(s) = req else { panic!() };
        assert_eq!((s.cmd, s.key, s.flags, s.value), (StoreCmd::Set, &b"k"[..], 5, &b"a\r\nb"[..]));
    }

    #[test]
    fn needs_more_until_block_complete() {
        let d = Decoder::default();
        assert_eq!(d.decode(b"set k 0 0 4\r\nab"), Ok(None));
        assert_eq!(d.decode(b"set k 0 0 4\r\nabcd\r"), Ok(None));
    }

    #[test]
    fn bad_chunk_consumes_block() {
        let e = Decoder::default().decode(b"set k 0 0 1\r\nab\r\n").unwrap_err();
        assert_eq!(e.reply, Some("CLIENT_ERROR bad data chunk"));
        assert_eq!(e.consumed, 16);
    }

    #[test]
    fn too_large_swallows_and_unlinks() {
        let e = Decoder::default().decode(b"set k 0 0 2000000\r\n").unwrap_err();
        assert_eq!(e.reply, Some("SERVER_ERROR object too large for cache"));
        assert_eq!(e.swallow, 2_000_002);
        assert_eq!(e.unlink.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn c_number_quirks() {
        // 4294967296 truncates to 0 in memcached's int32 length.
        let (req, _) = Decoder::default().decode(b"set k 0 0 4294967296\r\n\r\n").unwrap().unwrap();
        let Request::Store(s) = req else { panic!() };
        assert!(s.value.is_empty());
        let e = Decoder::default().decode(b"set k 0 0 -1\r\n").unwrap_err();
        assert_eq!((e.reply, e.swallow), (Some("CLIENT_ERROR bad command line format"), 0));
    }

    #[test]
    fn noreply_silences_errors() {
        let e = Decoder::default().decode(b"set k x 0 1 noreply\r\n").unwrap_err();
        assert!(e.noreply);
        assert_eq!(e.reply_line(), None);
    }
}
