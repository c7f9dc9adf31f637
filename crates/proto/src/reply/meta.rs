//! Meta reply codes and the `VA` data block.

use super::{Reply, ReplyError, take_block};
use crate::number::parse_u64;
use crate::request::put_u64;
use bytes::BufMut;

/// Status code of a meta reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCode {
    /// `HD`: success, no value.
    Hd,
    /// `VA <size>`: success with a value.
    Va,
    /// `EN`: miss.
    En,
    /// `NS`: not stored.
    Ns,
    /// `EX`: CAS mismatch.
    Ex,
    /// `NF`: not found.
    Nf,
    /// `MN`: the no-op marker.
    Mn,
    /// `ME`: meta debug output.
    Me,
}

impl MetaCode {
    /// The two-letter code.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            MetaCode::Hd => b"HD",
            MetaCode::Va => b"VA",
            MetaCode::En => b"EN",
            MetaCode::Ns => b"NS",
            MetaCode::Ex => b"EX",
            MetaCode::Nf => b"NF",
            MetaCode::Mn => b"MN",
            MetaCode::Me => b"ME",
        }
    }

    pub(crate) fn from_word(w: &[u8]) -> Option<Self> {
        Some(match w {
            b"HD" => MetaCode::Hd,
            b"VA" => MetaCode::Va,
            b"EN" => MetaCode::En,
            b"NS" => MetaCode::Ns,
            b"EX" => MetaCode::Ex,
            b"NF" => MetaCode::Nf,
            b"MN" => MetaCode::Mn,
            b"ME" => MetaCode::Me,
            _ => return None,
        })
    }
}

pub(super) fn encode<B: BufMut>(out: &mut B, code: MetaCode, flags: &[u8], data: Option<&[u8]>) {
    out.put_slice(code.as_bytes());
    if code == MetaCode::Va {
        out.put_u8(b' ');
        put_u64(out, data.map_or(0, <[u8]>::len) as u64);
    }
    if !flags.is_empty() {
        out.put_u8(b' ');
        out.put_slice(flags);
    }
    if let Some(d) = data {
        out.put_slice(b"\r\n");
        out.put_slice(d);
    }
}

pub(super) fn decode_va<'a>(
    buf: &'a [u8],
    line: &'a [u8],
    rest: &'a [u8],
    line_len: usize,
) -> Result<Option<(Reply<'a>, usize)>, ReplyError> {
    let (size, flags) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let len = parse_u64(size).and_then(|l| usize::try_from(l).ok()).ok_or_else(|| super::malformed(line))?;
    Ok(take_block(buf, line_len, len)?
        .map(|(data, used)| (Reply::Meta { code: MetaCode::Va, flags, data: Some(data) }, used)))
}

/// Iterates over the flag tokens of a meta reply's flag text.
pub fn meta_flag_tokens(flags: &[u8]) -> impl Iterator<Item = &[u8]> {
    flags.split(|&b| b == b' ').filter(|t| !t.is_empty())
}
