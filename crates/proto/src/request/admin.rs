//! Operator commands: `me`, `shutdown`, `slabs`, `lru`, `lru_crawler` and
//! `watch`, parsed with memcached 1.6.18's token rules, so each malformed form
//! gets memcached's own reply (`proto_text.c`: `process_meta_command`,
//! `process_shutdown_command`, `process_slabs_command`, `process_lru_command`,
//! `process_lru_crawler_command`, `process_watch_command`). What a valid
//! form does is the server's business.

use super::{Ctx, DecodeResult, MAX_KEY_LEN, Request, noreply_token};
use crate::error::msg;
use crate::line::Tokens;
use crate::number::{parse_f64, parse_i32, parse_u32};
use base64::Engine;
use bytes::BufMut;
use std::borrow::Cow;

/// A floating-point setting (a ratio or an age factor), compared bit for bit.
#[derive(Debug, Clone, Copy)]
pub struct Factor(pub f64);

impl PartialEq for Factor {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Factor {}

/// What `shutdown` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// `shutdown`: stop now (memcached raises SIGINT).
    Now,
    /// `shutdown graceful`: memcached's SIGUSR1 (save, then stop).
    Graceful,
    /// Any other argument: `CLIENT_ERROR invalid shutdown mode` — but only
    /// when shutdown is enabled; otherwise the refusal comes first.
    Invalid,
}

/// The log streams of `watch`, memcached's `LOG_*` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchFlags(pub u16);

impl WatchFlags {
    /// `rawcmds`.
    pub const RAWCMDS: u16 = 1 << 0;
    /// `evictions`.
    pub const EVICTIONS: u16 = 1 << 1;
    /// `fetchers`: every item lookup.
    pub const FETCHERS: u16 = 1 << 2;
    /// `mutations`: every store.
    pub const MUTATIONS: u16 = 1 << 3;
    /// `sysevents`.
    pub const SYSEVENTS: u16 = 1 << 4;
    /// `connevents`: connections opened and closed.
    pub const CONNEVENTS: u16 = 1 << 5;
    /// `proxyreqs`.
    pub const PROXYREQS: u16 = 1 << 6;
    /// `proxyevents`.
    pub const PROXYEVENTS: u16 = 1 << 7;
    /// `proxyuser`.
    pub const PROXYUSER: u16 = 1 << 8;

    const NAMES: [(&'static [u8], u16); 9] = [
        (b"rawcmds", Self::RAWCMDS),
        (b"evictions", Self::EVICTIONS),
        (b"fetchers", Self::FETCHERS),
        (b"mutations", Self::MUTATIONS),
        (b"sysevents", Self::SYSEVENTS),
        (b"connevents", Self::CONNEVENTS),
        (b"proxyreqs", Self::PROXYREQS),
        (b"proxyevents", Self::PROXYEVENTS),
        (b"proxyuser", Self::PROXYUSER),
    ];

    /// Whether `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// An operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin<'a> {
    /// `me <key> [b]`: the meta debug line of one item.
    MetaDebug {
        /// The key (base64-decoded when `b` was given).
        key: Cow<'a, [u8]>,
    },
    /// `shutdown [graceful]`.
    Shutdown(ShutdownMode),
    /// `slabs reassign <src> <dst>`.
    SlabsReassign {
        /// Source class (-1: any).
        src: i32,
        /// Destination class.
        dst: i32,
    },
    /// `slabs automove <0|1|2>`.
    SlabsAutomove {
        /// The level.
        level: u32,
    },
    /// `slabs automove ratio <r>`.
    SlabsAutomoveRatio(Factor),
    /// `lru tune <hot pct> <warm pct> <hot factor> <warm factor>`.
    LruTune {
        /// Share of the HOT segment, percent.
        hot_pct: u32,
        /// Share of the WARM segment, percent.
        warm_pct: u32,
        /// HOT age factor.
        hot_factor: Factor,
        /// WARM age factor.
        warm_factor: Factor,
    },
    /// `lru mode flat|segmented`.
    LruMode {
        /// `segmented` (true) or `flat`.
        segmented: bool,
    },
    /// `lru temp_ttl <ttl>` (negative: the TEMP LRU off).
    LruTempTtl(i32),
    /// `lru_crawler crawl <classes|all|hash>`.
    LruCrawlerCrawl(&'a [u8]),
    /// `lru_crawler metadump <classes|all|hash>`.
    LruCrawlerMetadump(&'a [u8]),
    /// `lru_crawler tocrawl <n>`.
    LruCrawlerToCrawl(u32),
    /// `lru_crawler sleep <µs>`.
    LruCrawlerSleep(u32),
    /// `lru_crawler enable|disable`.
    LruCrawlerEnable(bool),
    /// `watch [streams…]`.
    Watch(WatchFlags),
    /// `refresh_certs [noreply]`: reload the TLS certificate files.
    RefreshCerts,
}

/// An operator command and its `noreply`, for the commands whose replies
/// memcached lets `noreply` suppress (`slabs automove`, `lru`, `watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCmd<'a> {
    /// The command.
    pub op: Admin<'a>,
    /// Suppress the reply.
    pub noreply: bool,
    /// The request line as sent (without `\r\n`), for `encode`.
    pub line: &'a [u8],
}

impl AdminCmd<'_> {
    /// Writes the request line as it was sent.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(self.line);
        out.put_slice(b"\r\n");
    }

    /// The command word.
    pub fn command(&self) -> &'static str {
        match self.op {
            Admin::MetaDebug { .. } => "me",
            Admin::Shutdown(_) => "shutdown",
            Admin::SlabsReassign { .. } | Admin::SlabsAutomove { .. } | Admin::SlabsAutomoveRatio(_) => "slabs",
            Admin::LruTune { .. } | Admin::LruMode { .. } | Admin::LruTempTtl(_) => "lru",
            Admin::LruCrawlerCrawl(_)
            | Admin::LruCrawlerMetadump(_)
            | Admin::LruCrawlerToCrawl(_)
            | Admin::LruCrawlerSleep(_)
            | Admin::LruCrawlerEnable(_) => "lru_crawler",
            Admin::Watch(_) => "watch",
            Admin::RefreshCerts => "refresh_certs",
        }
    }
}

/// Decodes an operator command whose word is `cmd`, or `None` when `cmd` is
/// not one.
pub(super) fn decode<'a>(cmd: &[u8], t: &Tokens<'a>, line: &'a [u8], ctx: &Ctx<'a, '_>) -> Option<DecodeResult<'a>> {
    let op = match cmd {
        b"me" => meta_debug(t),
        b"shutdown" => Ok((shutdown(t), false)),
        b"slabs" => slabs(t),
        b"lru" => lru(t),
        b"lru_crawler" => lru_crawler(t),
        b"watch" => watch(t),
        // memcached takes a trailing `noreply` and ignores anything else.
        b"refresh_certs" => Ok((Admin::RefreshCerts, noreply_token(t))),
        _ => return None,
    };
    Some(match op {
        Ok((op, noreply)) => Ok(Some((Request::Admin(AdminCmd { op, noreply, line }), ctx.line_len))),
        Err((reply, noreply)) => Err(ctx.err(reply).noreply(noreply)),
    })
}

type Parsed<'a> = Result<(Admin<'a>, bool), (&'static str, bool)>;

fn meta_debug<'a>(t: &Tokens<'a>) -> Parsed<'a> {
    // memcached checks only the length here: `me` reads, it never stores.
    if t.ntokens() < 3 || t.at(1).len() > MAX_KEY_LEN {
        return Err((msg::BAD_FORMAT, false));
    }
    let raw = t.at(1);
    let key = if t.ntokens() >= 4 && t.at(2) == b"b" {
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(k) if !k.is_empty() => Cow::Owned(k),
            _ => return Err((msg::BAD_FORMAT, false)),
        }
    } else {
        Cow::Borrowed(raw)
    };
    Ok((Admin::MetaDebug { key }, false))
}

fn shutdown(t: &Tokens<'_>) -> Admin<'static> {
    Admin::Shutdown(match (t.ntokens(), t.at(1)) {
        (2, _) => ShutdownMode::Now,
        (3, b"graceful") => ShutdownMode::Graceful,
        _ => ShutdownMode::Invalid,
    })
}

fn slabs<'a>(t: &Tokens<'a>) -> Parsed<'a> {
    let n = t.ntokens();
    if n == 5 && t.at(1) == b"reassign" {
        return match (parse_i32(t.at(2)), parse_i32(t.at(3))) {
            (Some(src), Some(dst)) => Ok((Admin::SlabsReassign { src, dst }, false)),
            _ => Err((msg::BAD_FORMAT, false)),
        };
    }
    if n >= 4 && t.at(1) == b"automove" {
        let noreply = noreply_token(t);
        if t.at(2) == b"ratio" {
            return match parse_f64(t.at(3)) {
                Some(r) if n >= 5 => Ok((Admin::SlabsAutomoveRatio(Factor(r)), noreply)),
                _ => Err((msg::ERROR, noreply)),
            };
        }
        return match parse_u32(t.at(2)) {
            None => Err((msg::BAD_FORMAT, noreply)),
            Some(level @ 0..=2) => Ok((Admin::SlabsAutomove { level }, noreply)),
            Some(_) => Err((msg::ERROR, noreply)),
        };
    }
    Err((msg::ERROR, false))
}

fn lru<'a>(t: &Tokens<'a>) -> Parsed<'a> {
    let n = t.ntokens();
    if n < 3 {
        return Err((msg::ERROR, false));
    }
    let noreply = noreply_token(t);
    let err = |m| Err((m, noreply));
    match t.at(1) {
        b"tune" if n >= 7 => {
            let parsed = (parse_u32(t.at(2)), parse_u32(t.at(3)), parse_f64(t.at(4)), parse_f64(t.at(5)));
            let (Some(hot_pct), Some(warm_pct), Some(hot), Some(warm)) = parsed else {
                return err(msg::ERROR);
            };
            if u64::from(hot_pct) + u64::from(warm_pct) > 80 {
                return err("ERROR hot and warm pcts must not exceed 80");
            }
            if hot <= 0.0 || warm <= 0.0 {
                return err("ERROR hot/warm age factors must be greater than 0");
            }
            Ok((Admin::LruTune { hot_pct, warm_pct, hot_factor: Factor(hot), warm_factor: Factor(warm) }, noreply))
        }
        b"mode" if n >= 4 => match t.at(2) {
            b"flat" => Ok((Admin::LruMode { segmented: false }, noreply)),
            b"segmented" => Ok((Admin::LruMode { segmented: true }, noreply)),
            _ => err(msg::ERROR),
        },
        b"temp_ttl" if n >= 4 => match parse_i32(t.at(2)) {
            Some(ttl) => Ok((Admin::LruTempTtl(ttl), noreply)),
            None => err(msg::ERROR),
        },
        _ => err(msg::ERROR),
    }
}

fn lru_crawler<'a>(t: &Tokens<'a>) -> Parsed<'a> {
    let (n, sub) = (t.ntokens(), t.at(1));
    let op = match (n, sub) {
        (4, b"crawl") => Admin::LruCrawlerCrawl(t.at(2)),
        (4, b"metadump") => Admin::LruCrawlerMetadump(t.at(2)),
        (4, b"tocrawl") => Admin::LruCrawlerToCrawl(parse_u32(t.at(2)).ok_or((msg::BAD_FORMAT, false))?),
        (4, b"sleep") => match parse_u32(t.at(2)) {
            None => return Err((msg::BAD_FORMAT, false)),
            Some(us) if us > 1_000_000 => return Err(("CLIENT_ERROR sleep must be one second or less", false)),
            Some(us) => Admin::LruCrawlerSleep(us),
        },
        (3, b"enable") => Admin::LruCrawlerEnable(true),
        (3, b"disable") => Admin::LruCrawlerEnable(false),
        _ => return Err((msg::ERROR, false)),
    };
    Ok((op, false))
}

fn watch<'a>(t: &Tokens<'a>) -> Parsed<'a> {
    let noreply = noreply_token(t);
    if t.ntokens() <= 2 {
        return Ok((Admin::Watch(WatchFlags(WatchFlags::FETCHERS)), noreply));
    }
    let mut flags = 0;
    for name in t.slice(1) {
        match WatchFlags::NAMES.iter().find(|(n, _)| n == name) {
            Some((_, bit)) => flags |= bit,
            None => return Err((msg::ERROR, noreply)),
        }
    }
    Ok((Admin::Watch(WatchFlags(flags)), noreply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Decoder;

    fn op(line: &[u8]) -> Result<Admin<'_>, Option<&'static str>> {
        match Decoder::default().decode(line) {
            Ok(Some((Request::Admin(a), _))) => Ok(a.op),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.reply_line()),
        }
    }

    #[test]
    fn malformed_forms_get_memcacheds_replies() {
        // t/strtol-testing.t and proto_text.c.
        assert_eq!(op(b"slabs automove invalid\r\n"), Err(Some(msg::BAD_FORMAT)));
        assert_eq!(op(b"slabs automove 3\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"slabs automove ratio x\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"slabs reassign a 2\r\n"), Err(Some(msg::BAD_FORMAT)));
        assert_eq!(op(b"slabs\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"lru\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"lru tune 50 40 0.1 2\r\n"), Err(Some("ERROR hot and warm pcts must not exceed 80")));
        assert_eq!(op(b"lru tune 10 10 0 2\r\n"), Err(Some("ERROR hot/warm age factors must be greater than 0")));
        assert_eq!(op(b"lru mode round\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"lru_crawler sleep 2000000\r\n"), Err(Some("CLIENT_ERROR sleep must be one second or less")));
        assert_eq!(op(b"lru_crawler tocrawl x\r\n"), Err(Some(msg::BAD_FORMAT)));
        assert_eq!(op(b"lru_crawler start\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"watch teapots\r\n"), Err(Some(msg::ERROR)));
        assert_eq!(op(b"me\r\n"), Err(Some(msg::BAD_FORMAT))); // no key
        assert_eq!(op(b"me !!!! b\r\n"), Err(Some(msg::BAD_FORMAT)));
        // noreply silences the replies memcached lets it silence.
        assert_eq!(op(b"lru mode round noreply\r\n"), Err(None));
    }

    #[test]
    fn valid_forms() {
        assert_eq!(op(b"slabs automove 2\r\n"), Ok(Admin::SlabsAutomove { level: 2 }));
        assert_eq!(op(b"slabs automove ratio 0.5\r\n"), Ok(Admin::SlabsAutomoveRatio(Factor(0.5))));
        assert_eq!(op(b"slabs reassign -1 3\r\n"), Ok(Admin::SlabsReassign { src: -1, dst: 3 }));
        assert_eq!(op(b"lru temp_ttl -1\r\n"), Ok(Admin::LruTempTtl(-1)));
        assert_eq!(op(b"shutdown\r\n"), Ok(Admin::Shutdown(ShutdownMode::Now)));
        assert_eq!(op(b"shutdown graceful\r\n"), Ok(Admin::Shutdown(ShutdownMode::Graceful)));
        assert_eq!(op(b"shutdown now\r\n"), Ok(Admin::Shutdown(ShutdownMode::Invalid)));
        assert_eq!(op(b"watch\r\n"), Ok(Admin::Watch(WatchFlags(WatchFlags::FETCHERS))));
        assert_eq!(
            op(b"watch fetchers mutations\r\n"),
            Ok(Admin::Watch(WatchFlags(WatchFlags::FETCHERS | WatchFlags::MUTATIONS)))
        );
        assert_eq!(op(b"me Zm9v b\r\n"), Ok(Admin::MetaDebug { key: Cow::Owned(b"foo".to_vec()) }));
        assert_eq!(op(b"lru_crawler metadump all\r\n"), Ok(Admin::LruCrawlerMetadump(b"all")));
    }
}
