//! Meta-command flags, shared by mg, ms, md and ma.
//!
//! memcached validates every flag of every meta command with one routine
//! (`_meta_flag_preparse`): a flag letter may appear once, numeric tokens must
//! parse, and unknown letters are refused with `CLIENT_ERROR invalid flag`.
//! We keep the raw tokens in request order, because replies echo `O`, `k`, `c`,
//! … in that order, and parse the values once here.

use crate::error::msg;
use crate::number::{parse_i32, parse_u32, parse_u64};
use base64::Engine;
use bytes::BufMut;
use std::borrow::Cow;

/// Most flags one meta command can carry (memcached refuses more than 20 tokens).
pub const MAX_META_FLAGS: usize = 20;

/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`, counting the `O`.
pub(crate) const MAX_OPAQUE_LEN: usize = 32;

/// memcached's `MFLAG_MAX_OPT_LENGTH`: most tokens (with the terminal one).
pub(crate) const MAX_META_TOKENS: usize = 20;

/// Parsed meta flags plus the raw tokens in request order.
#[derive(Debug, Clone, Copy)]
pub struct MetaFlags<'a> {
    toks: [&'a [u8]; MAX_META_FLAGS],
    len: usize,
    /// `b`: the key was base64 (the decoded key is stored).
    pub base64: bool,
    /// `q`: quiet mode, suppress the nominal reply.
    pub quiet: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_bump: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `I`: invalidate (mark stale) instead of the plain operation.
    pub invalidate: bool,
    /// `x`: md removes the value but keeps the item.
    pub remove_value: bool,
    /// `T<n>`: new TTL (raw exptime).
    pub ttl: Option<i64>,
    /// `N<n>`: vivify on miss with this TTL.
    pub vivify: Option<i64>,
    /// `R<n>`: recache window.
    pub recache: Option<i64>,
    /// `F<n>`: client flags.
    pub client_flags: Option<u32>,
    /// `C<n>`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `E<n>`: explicit new CAS value.
    pub new_cas: Option<u64>,
    /// `M<c>`: mode switch.
    pub mode: Option<u8>,
    /// `J<n>`: ma initial value.
    pub initial: Option<u64>,
    /// `D<n>`: ma delta.
    pub delta: Option<u64>,
    /// `S<n>`: declared ms data length (legacy form of the positional length).
    pub size: Option<i64>,
    /// `O<opaque>`: the whole token, `O` included, echoed back verbatim.
    pub opaque: Option<&'a [u8]>,
}

impl PartialEq for MetaFlags<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.tokens() == other.tokens()
    }
}
impl Eq for MetaFlags<'_> {}

impl<'a> MetaFlags<'a> {
    fn empty() -> Self {
        MetaFlags {
            toks: [&[]; MAX_META_FLAGS],
            len: 0,
            base64: false,
            quiet: false,
            no_bump: false,
            value: false,
            invalidate: false,
            remove_value: false,
            ttl: None,
            vivify: None,
            recache: None,
            client_flags: None,
            compare_cas: None,
            new_cas: None,
            mode: None,
            initial: None,
            delta: None,
            size: None,
            opaque: None,
        }
    }

    /// The raw flag tokens in request order.
    pub fn tokens(&self) -> &[&'a [u8]] {
        &self.toks[..self.len]
    }

    /// Whether flag letter `c` was given.
    pub fn has(&self, c: u8) -> bool {
        self.tokens().iter().any(|t| t.first() == Some(&c))
    }

    /// Parses flag tokens and decodes the key when `b` is present. Errors are
    /// memcached's: the last value error wins, duplicates and unknown letters stop
    /// at once.
    pub fn parse(tokens: &[&'a [u8]], raw_key: &'a [u8]) -> Result<(Self, Cow<'a, [u8]>), &'static str> {
        let mut f = MetaFlags::empty();
        let mut key = Cow::Borrowed(raw_key);
        let mut err: Option<&'static str> = None;
        let mut seen = [false; 128];
        if tokens.len() > MAX_META_FLAGS {
            return Err(msg::FLAGS_TOO_LONG);
        }
        for &tok in tokens {
            let Some(&o) = tok.first() else { continue };
            if o >= 127 || seen[usize::from(o)] {
                return Err(msg::DUP_FLAG);
            }
            seen[usize::from(o)] = true;
            f.toks[f.len] = tok;
            f.len += 1;
            let arg = &tok[1..];
            let signed = |e: &mut Option<&'static str>| {
                let v = parse_i32(arg).map(i64::from);
                if v.is_none() {
                    *e = Some(msg::BAD_TOKEN);
                }
                v
            };
            match o {
                b'b' => {
                    f.base64 = true;
                    match base64::engine::general_purpose::STANDARD.decode(raw_key) {
                        Ok(k) if !k.is_empty() => key = Cow::Owned(k),
                        _ => err = Some(msg::BAD_BASE64),
                    }
                }
                b'N' => f.vivify = signed(&mut err),
                b'T' => f.ttl = signed(&mut err),
                b'R' => f.recache = signed(&mut err),
                b'S' => f.size = signed(&mut err),
                b'O' => f.opaque = Some(tok),
                b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' | b'l' => {}
                b'v' => f.value = true,
                b'u' => f.no_bump = true,
                b'q' => f.quiet = true,
                b'I' => f.invalidate = true,
                b'x' => f.remove_value = true,
                b'F' => match parse_u32(arg) {
                    Some(v) => f.client_flags = Some(v),
                    // memcached flags the error without a message of its own.
                    None => err = Some(err.unwrap_or(msg::BAD_FORMAT)),
                },
                b'C' => match parse_u64(arg) {
                    Some(v) => f.compare_cas = Some(v),
                    None => err = Some(msg::BAD_TOKEN),
                },
                b'E' => match parse_u64(arg) {
                    Some(v) => f.new_cas = Some(v),
                    None => err = Some(msg::BAD_TOKEN),
                },
                b'M' => {
                    if tok.len() == 2 {
                        f.mode = Some(tok[1]);
                    } else {
                        err = Some(msg::BAD_MODE_LEN);
                    }
                }
                b'J' => match parse_u64(arg) {
                    Some(v) => f.initial = Some(v),
                    None => err = Some(msg::BAD_INITIAL),
                },
                b'D' => match parse_u64(arg) {
                    Some(v) => f.delta = Some(v),
                    None => err = Some(msg::BAD_DELTA_TOKEN),
                },
                _ => return Err(msg::INVALID_FLAG),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok((f, key)),
        }
    }

    /// The opaque token is longer than memcached allows.
    pub(crate) fn opaque_too_long(&self) -> bool {
        self.opaque.is_some_and(|o| o.len() > MAX_OPAQUE_LEN)
    }
}

/// Writes `<cmd> <key>[ <n>] <flags…>\r\n`, base64-encoding the key when `b` is set.
pub(crate) fn encode_line<B: BufMut>(out: &mut B, cmd: &[u8], key: &[u8], len: Option<usize>, flags: &MetaFlags<'_>) {
    out.put_slice(cmd);
    out.put_u8(b' ');
    if flags.base64 {
        out.put_slice(base64::engine::general_purpose::STANDARD.encode(key).as_bytes());
    } else {
        out.put_slice(key);
    }
    if let Some(n) = len {
        out.put_u8(b' ');
        super::put_u64(out, n as u64);
    }
    for t in flags.tokens() {
        out.put_u8(b' ');
        out.put_slice(t);
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_values_and_order() {
        let toks: [&[u8]; 5] = [b"v", b"T30", b"Oabc", b"k", b"c"];
        let (f, key) = MetaFlags::parse(&toks, b"foo").unwrap();
        assert!(f.value);
        assert_eq!(f.ttl, Some(30));
        assert_eq!(f.opaque, Some(&b"Oabc"[..]));
        assert_eq!(f.tokens().len(), 5);
        assert_eq!(&*key, b"foo");
    }

    #[test]
    fn errors_as_memcached() {
        assert_eq!(MetaFlags::parse(&[b"v", b"v"], b"k").unwrap_err(), msg::DUP_FLAG);
        assert_eq!(MetaFlags::parse(&[b"!"], b"k").unwrap_err(), msg::INVALID_FLAG);
        assert_eq!(MetaFlags::parse(&[b"Tx"], b"k").unwrap_err(), msg::BAD_TOKEN);
        assert_eq!(MetaFlags::parse(&[b"MXY"], b"k").unwrap_err(), msg::BAD_MODE_LEN);
        assert_eq!(MetaFlags::parse(&[b"b"], b"!!").unwrap_err(), msg::BAD_BASE64);
    }

    #[test]
    fn base64_key() {
        let (f, key) = MetaFlags::parse(&[b"b"], b"Zm9v").unwrap();
        assert!(f.base64);
        assert_eq!(&*key, b"foo");
    }
}
