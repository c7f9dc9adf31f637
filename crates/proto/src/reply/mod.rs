//! Replies: one unit of a server's answer (a `VALUE` item, a status line, a
//! `STAT` line, a meta reply), its decoder for clients and proxies, and its
//! encoder for servers.
//!
//! Decoding is context-free: a multi-get answer is a run of [`Reply::Value`]
//! units closed by [`Reply::End`], stats are [`Reply::Stat`] units closed by
//! `End`, everything else is a single unit.

mod meta;

pub use meta::{MetaCode, meta_flag_tokens};

use crate::line::memchr;
use crate::number::{parse_u32, parse_u64};
use crate::request::{MAX_KEY_LEN, put_u64};
use bytes::BufMut;

/// Longest reply line a decoder accepts before declaring the peer broken.
pub const MAX_REPLY_LINE: usize = 16 * 1024;

/// One reply unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `VALUE <key> <flags> <bytes> [<cas>]` and its data block.
    Value {
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// CAS unique (gets/gats).
        cas: Option<u64>,
        /// The value.
        data: &'a [u8],
    },
    /// `END`.
    End,
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS`.
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK`.
    Ok,
    /// `RESET` (stats reset).
    Reset,
    /// The new value after incr/decr.
    Number(u64),
    /// `VERSION <text>`.
    Version(&'a [u8]),
    /// `STAT <name> <value>`.
    Stat {
        /// Stat name.
        name: &'a [u8],
        /// Stat value text.
        value: &'a [u8],
    },
    /// `ERROR`.
    Error,
    /// `CLIENT_ERROR <message>`.
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <message>`.
    ServerError(&'a [u8]),
    /// Any other one-line status, written as given: what memcached's
    /// operator commands answer (`NOSPARE source class has no spare pages`,
    /// `MEMLIMIT_TOO_SMALL …`, `ERROR: shutdown not enabled`). Only
    /// encoded: the decoder reads replies to data commands.
    Status(&'a [u8]),
    /// A meta reply: `<code> <flags>*`, with a data block for `VA`.
    Meta {
        /// Status code.
        code: MetaCode,
        /// The flag text after the code (and after the size for `VA`), unparsed.
        flags: &'a [u8],
        /// The value, for `VA`.
        data: Option<&'a [u8]>,
    },
}

/// A reply stream that is not memcached's protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line that is no known reply.
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
    /// No end of line within [`MAX_REPLY_LINE`] bytes.
    #[error("reply line longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
    /// A data block not terminated by `\r\n`.
    #[error("reply data block not terminated by CRLF")]
    BadDataBlock,
}

fn malformed(line: &[u8]) -> ReplyError {
    let shown = &line[..line.len().min(80)];
    ReplyError::Malformed(String::from_utf8_lossy(shown).into_owned())
}

impl<'a> Reply<'a> {
    /// Decodes one reply unit: `Ok(None)` when more bytes are needed.
    pub fn decode(buf: &'a [u8]) -> Result<Option<(Reply<'a>, usize)>, ReplyError> {
        let Some(nl) = memchr(b'\n', buf) else {
            return if buf.len() > MAX_REPLY_LINE { Err(ReplyError::LineTooLong) } else { Ok(None) };
        };
        let line_len = nl + 1;
        let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
        let (word, rest) = match memchr(b' ', line) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let simple = |r| Ok(Some((r, line_len)));
        match word {
            b"VALUE" => decode_value(buf, line, rest, line_len),
            b"END" => simple(Reply::End),
            b"STORED" => simple(Reply::Stored),
            b"NOT_STORED" => simple(Reply::NotStored),
            b"EXISTS" => simple(Reply::Exists),
            b"NOT_FOUND" => simple(Reply::NotFound),
            b"DELETED" => simple(Reply::Deleted),
            b"TOUCHED" => simple(Reply::Touched),
            b"OK" => simple(Reply::Ok),
            b"RESET" => simple(Reply::Reset),
            b"ERROR" => simple(Reply::Error),
            b"VERSION" => simple(Reply::Version(rest)),
            b"CLIENT_ERROR" => simple(Reply::ClientError(rest)),
            b"SERVER_ERROR" => simple(Reply::ServerError(rest)),
            b"STAT" => {
                let (name, value) = match memchr(b' ', rest) {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None => (rest, &[][..]),
                };
                simple(Reply::Stat { name, value })
            }
            _ if !word.is_empty() && word.iter().all(u8::is_ascii_digit) && rest.is_empty() => {
                parse_u64(word).map_or_else(|| Err(malformed(line)), |n| simple(Reply::Number(n)))
            }
            _ => match MetaCode::from_word(word) {
                Some(MetaCode::Va) => meta::decode_va(buf, line, rest, line_len),
                Some(code) => simple(Reply::Meta { code, flags: rest, data: None }),
                None => Err(malformed(line)),
            },
        }
    }

    /// Writes the reply unit in wire form.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            Reply::Value { key, flags, cas, data } => {
                out.put_slice(b"VALUE ");
                out.put_slice(key);
                out.put_u8(b' ');
                put_u64(out, u64::from(*flags));
                out.put_u8(b' ');
                put_u64(out, data.len() as u64);
                if let Some(c) = cas {
                    out.put_u8(b' ');
                    put_u64(out, *c);
                }
                out.put_slice(b"\r\n");
                out.put_slice(data);
            }
            Reply::End => out.put_slice(b"END"),
            Reply::Stored => out.put_slice(b"STORED"),
            Reply::NotStored => out.put_slice(b"NOT_STORED"),
            Reply::Exists => out.put_slice(b"EXISTS"),
            Reply::NotFound => out.put_slice(b"NOT_FOUND"),
            Reply::Deleted => out.put_slice(b"DELETED"),
            Reply::Touched => out.put_slice(b"TOUCHED"),
            Reply::Ok => out.put_slice(b"OK"),
            Reply::Reset => out.put_slice(b"RESET"),
            Reply::Number(n) => put_u64(out, *n),
            Reply::Version(v) => prefixed(out, b"VERSION", v),
            Reply::Stat { name, value } => {
                out.put_slice(b"STAT ");
                out.put_slice(name);
                out.put_u8(b' ');
                out.put_slice(value);
            }
            Reply::Error => out.put_slice(b"ERROR"),
            Reply::ClientError(m) => prefixed(out, b"CLIENT_ERROR", m),
            Reply::ServerError(m) => prefixed(out, b"SERVER_ERROR", m),
            Reply::Status(s) => out.put_slice(s),
            Reply::Meta { code, flags, data } => meta::encode(out, *code, flags, *data),
        }
        out.put_slice(b"\r\n");
    }

    /// Whether this unit ends a multi-unit answer (get, stats) or is one itself.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Reply::Value { .. } | Reply::Stat { .. })
    }
}

fn prefixed<B: BufMut>(out: &mut B, word: &[u8], rest: &[u8]) {
    out.put_slice(word);
    out.put_u8(b' ');
    out.put_slice(rest);
}

/// Splits the data block after a header line: `Ok(None)` when incomplete.
pub(crate) fn take_block(buf: &[u8], line_len: usize, len: usize) -> Result<Option<(&[u8], usize)>, ReplyError> {
    let total = line_len.saturating_add(len).saturating_add(2);
    if buf.len() < total {
        return Ok(None);
    }
    if &buf[line_len + len..total] != b"\r\n" {
        return Err(ReplyError::BadDataBlock);
    }
    Ok(Some((&buf[line_len..line_len + len], total)))
}

fn decode_value<'a>(
    buf: &'a [u8],
    line: &'a [u8],
    rest: &'a [u8],
    line_len: usize,
) -> Result<Option<(Reply<'a>, usize)>, ReplyError> {
    let mut parts = rest.split(|&b| b == b' ');
    let (Some(key), Some(flags), Some(len)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(line));
    };
    let cas = parts.next();
    if parts.next().is_some() || key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(malformed(line));
    }
    let flags = parse_u32(flags).ok_or_else(|| malformed(line))?;
    let len = parse_u64(len).and_then(|l| usize::try_from(l).ok()).ok_or_else(|| malformed(line))?;
    let cas = match cas {
        Some(c) => Some(parse_u64(c).ok_or_else(|| malformed(line))?),
        None => None,
    };
    Ok(take_block(buf, line_len, len)?.map(|(data, used)| (Reply::Value { key, flags, cas, data }, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        r.encode(&mut v);
        v
    }

    #[test]
    fn value_roundtrip_and_partial() {
        let r = Reply::Value { key: b"k", flags: 3, cas: Some(9), data: b"a\r\nb" };
        let wire = enc(&r);
        assert_eq!(wire, b"VALUE k 3 4 9\r\na\r\nb\r\n");
        assert_eq!(Reply::decode(&wire), Ok(Some((r, wire.len()))));
        assert_eq!(Reply::decode(&wire[..wire.len() - 1]), Ok(None));
    }

    #[test]
    fn statuses() {
        assert_eq!(Reply::decode(b"STORED\r\n"), Ok(Some((Reply::Stored, 8))));
        assert_eq!(Reply::decode(b"42\r\n"), Ok(Some((Reply::Number(42), 4))));
        assert_eq!(Reply::decode(b"SERVER_ERROR boom\r\n"), Ok(Some((Reply::ServerError(b"boom"), 19))));
        assert!(Reply::decode(b"WHAT\r\n").is_err());
    }
}
