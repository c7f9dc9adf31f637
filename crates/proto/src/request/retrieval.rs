//! Retrieval: `get`, `gets`, `gat`, `gats`.

use super::{Ctx, DecodeResult, Request, key_ok, put_i64};
use crate::error::msg;
use crate::line::Tokens;
use crate::number::parse_i32;
use bytes::BufMut;

/// Which retrieval command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetCmd {
    /// `get <key>*`
    Get,
    /// `gets <key>*`: also returns CAS uniques.
    Gets,
    /// `gat <exptime> <key>*`: get and touch.
    Gat,
    /// `gats <exptime> <key>*`: get and touch, with CAS uniques.
    Gats,
}

impl GetCmd {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            GetCmd::Get => "get",
            GetCmd::Gets => "gets",
            GetCmd::Gat => "gat",
            GetCmd::Gats => "gats",
        }
    }
    /// Replies carry the CAS unique.
    pub fn returns_cas(self) -> bool {
        matches!(self, GetCmd::Gets | GetCmd::Gats)
    }
    /// The command updates the TTL of each hit.
    pub fn touches(self) -> bool {
        matches!(self, GetCmd::Gat | GetCmd::Gats)
    }
}

/// The keys of a multi-key command: space-separated text borrowed from the line.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a>(&'a [u8]);

impl<'a> Keys<'a> {
    /// Wraps space-separated keys (the caller guarantees they are valid keys).
    pub fn from_raw(raw: &'a [u8]) -> Self {
        Keys(raw)
    }
    /// The raw text.
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }
    /// Iterates over the keys in request order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// No keys at all (`gat 10` is valid and answers `END`).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for Keys<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for Keys<'_> {}

/// A retrieval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get<'a> {
    /// Which command.
    pub cmd: GetCmd,
    /// New exptime for gat/gats (raw client value), 0 otherwise.
    pub exptime: i64,
    /// Keys, in request order.
    pub keys: Keys<'a>,
}

impl Get<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(self.cmd.as_str().as_bytes());
        if self.cmd.touches() {
            out.put_u8(b' ');
            put_i64(out, self.exptime);
        }
        for k in self.keys.iter() {
            out.put_u8(b' ');
            out.put_slice(k);
        }
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode<'a>(cmd: GetCmd, t: &Tokens<'a>, line: &'a [u8], ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    if t.ntokens() < 3 {
        return Err(ctx.err(msg::ERROR));
    }
    let mut first_key = 1;
    let mut exptime = 0;
    if cmd.touches() {
        exptime = match parse_i32(t.at(1)) {
            Some(v) => i64::from(v),
            None => return Err(ctx.err(msg::BAD_EXPTIME)),
        };
        first_key = 2;
    }
    // Everything from the first key token to the end of the line is keys, even
    // past memcached's 24-token tokenizer window (it re-tokenizes the rest).
    let raw = match t.get(first_key) {
        Some(tok) => &line[offset_in(line, tok)..],
        None => &[][..],
    };
    let keys = Keys(raw);
    if keys.iter().any(|k| !key_ok(k)) {
        return Err(ctx.err(msg::BAD_FORMAT));
    }
    Ok(Some((Request::Get(Get { cmd, exptime, keys }), ctx.line_len)))
}

/// Byte offset of `tok` (a sub-slice of `line`) within `line`.
fn offset_in(line: &[u8], tok: &[u8]) -> usize {
    (tok.as_ptr() as usize).saturating_sub(line.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use crate::request::{Decoder, Request};

    #[test]
    fn multi_get_past_token_window() {
        let mut line = b"get".to_vec();
        for i in 0..40 {
            line.extend_from_slice(format!(" k{i}").as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        let (req, used) = Decoder::default().decode(&line).unwrap().unwrap();
        assert_eq!(used, line.len());
        let Request::Get(g) = req else { panic!("not a get") };
        assert_eq!(g.keys.len(), 40);
        assert_eq!(g.keys.iter().last(), Some(&b"k39"[..]));
    }

    #[test]
    fn gat_without_keys_is_valid() {
        let (req, _) = Decoder::default().decode(b"gat 10\r\n").unwrap().unwrap();
        let Request::Get(g) = req else { panic!("not a get") };
        assert!(g.keys.is_empty());
        assert_eq!(g.exptime, 10);
    }

    #[test]
    fn errors() {
        let d = Decoder::default();
        assert_eq!(d.decode(b"get\r\n").unwrap_err().reply, Some("ERROR"));
        assert_eq!(d.decode(b"gat x k\r\n").unwrap_err().reply, Some("CLIENT_ERROR invalid exptime argument"));
        let long = format!("get {}\r\n", "a".repeat(251));
        assert_eq!(d.decode(long.as_bytes()).unwrap_err().reply, Some("CLIENT_ERROR bad command line format"));
    }
}
