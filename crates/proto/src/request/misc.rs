//! Keyless commands: `flush_all`, `verbosity`, `stats` (and `version`/`quit`,
//! which need no fields).

use super::{Ctx, DecodeResult, Request, noreply_token, put_i64, put_u64};
use crate::error::msg;
use crate::line::Tokens;
use crate::number::{parse_i32, parse_u32};
use bytes::BufMut;

/// `flush_all [delay] [noreply]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushAll {
    /// Seconds until the flush takes effect (≤ 0: now).
    pub delay: i64,
    /// Suppress the reply.
    pub noreply: bool,
}

impl FlushAll {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"flush_all");
        if self.delay != 0 {
            out.put_u8(b' ');
            put_i64(out, self.delay);
        }
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
    }
}

/// `verbosity <level> [noreply]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// Requested level.
    pub level: u32,
    /// Suppress the reply.
    pub noreply: bool,
}

impl Verbosity {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"verbosity ");
        put_u64(out, u64::from(self.level));
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
    }
}

/// `cache_memlimit <megabytes> [noreply]`: change the memory limit at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheMemlimit {
    /// New limit in megabytes.
    pub megabytes: u32,
    /// Suppress the reply.
    pub noreply: bool,
}

impl CacheMemlimit {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"cache_memlimit ");
        put_u64(out, u64::from(self.megabytes));
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
    }
}

/// `stats [group [arg]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats<'a> {
    /// The group (`settings`, `reset`, …); `None` for general stats.
    pub group: Option<&'a [u8]>,
    /// The group's argument, if any.
    pub arg: Option<&'a [u8]>,
    /// A second argument (`stats cachedump <class> <limit>`).
    pub arg2: Option<&'a [u8]>,
}

impl Stats<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"stats");
        for part in [self.group, self.arg, self.arg2].into_iter().flatten() {
            out.put_u8(b' ');
            out.put_slice(part);
        }
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode_flush_all<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if !(2..=4).contains(&n) {
        return Err(ctx.err(msg::ERROR));
    }
    let noreply = noreply_token(t);
    let mut delay = 0;
    if n != if noreply { 3 } else { 2 } {
        match parse_i32(t.at(1)) {
            Some(v) => delay = i64::from(v),
            None => return Err(ctx.err(msg::BAD_EXPTIME).noreply(noreply)),
        }
    }
    Ok(Some((Request::FlushAll(FlushAll { delay, noreply }), ctx.line_len)))
}

pub(super) fn decode_verbosity<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if n != 3 && n != 4 {
        return Err(ctx.err(msg::ERROR));
    }
    let noreply = noreply_token(t);
    let Some(level) = parse_u32(t.at(1)) else {
        return Err(ctx.err(msg::BAD_FORMAT).noreply(noreply));
    };
    Ok(Some((Request::Verbosity(Verbosity { level, noreply }), ctx.line_len)))
}

pub(super) fn decode_cache_memlimit<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if n != 3 && n != 4 {
        return Err(ctx.err(msg::ERROR));
    }
    let noreply = noreply_token(t);
    // memcached answers a non-number here with a plain ERROR.
    let Some(megabytes) = parse_u32(t.at(1)) else {
        return Err(ctx.err(msg::ERROR).noreply(noreply));
    };
    Ok(Some((Request::CacheMemlimit(CacheMemlimit { megabytes, noreply }), ctx.line_len)))
}

pub(super) fn decode_stats<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    Ok(Some((Request::Stats(Stats { group: t.get(1), arg: t.get(2), arg2: t.get(3) }), ctx.line_len)))
}

#[cfg(test)]
mod tests {
    use crate::request::{Decoder, FlushAll, Request};

    #[test]
    fn flush_all_forms() {
        let d = Decoder::default();
        let f = |l: &[u8]| match d.decode(l) {
            Ok(Some((Request::FlushAll(f), _))) => Some(f),
            _ => None,
        };
        assert_eq!(f(b"flush_all\r\n"), Some(FlushAll { delay: 0, noreply: false }));
        assert_eq!(f(b"flush_all noreply\r\n"), Some(FlushAll { delay: 0, noreply: true }));
        assert_eq!(f(b"flush_all 10 noreply\r\n"), Some(FlushAll { delay: 10, noreply: true }));
        assert_eq!(d.decode(b"flush_all x\r\n").unwrap_err().reply, Some("CLIENT_ERROR invalid exptime argument"));
        assert_eq!(d.decode(b"flush_all 1 2 3\r\n").unwrap_err().reply, Some("ERROR"));
    }
}
