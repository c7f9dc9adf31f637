//! Requests: the typed form of every command, its decoder and its encoder.
//!
//! One file per command family; [`Decoder::decode`] dispatches on the command
//! word exactly as memcached's `process_command_ascii` does, so malformed input
//! gets the same reply, the same swallowing of data blocks and the same closes.

mod admin;
mod arith;
mod delete;
mod meta;
mod meta_arith;
mod meta_delete;
mod meta_get;
mod meta_set;
mod misc;
mod retrieval;
mod storage;
mod touch;

pub use admin::{Admin, AdminCmd, Factor, ShutdownMode, WatchFlags};
pub use arith::Arith;
pub use delete::Delete;
pub use meta::{MAX_META_FLAGS, MetaFlags};
pub use meta_arith::{MetaArith, MetaArithMode};
pub use meta_delete::MetaDelete;
pub use meta_get::MetaGet;
pub use meta_set::{MetaSet, MetaSetMode};
pub use misc::{CacheMemlimit, FlushAll, Stats, Verbosity};
pub use retrieval::{Get, GetCmd, Keys};
pub use storage::{Store, StoreCmd};
pub use touch::Touch;

use crate::error::{ProtoError, msg};
use crate::line::{MAX_UNTERMINATED_LINE, Tokens, find_line};
use bytes::BufMut;

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const MAX_KEY_LEN: usize = 250;

/// Default `-I` item size limit (1 MiB), as memcached.
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

/// Longest multi-get line we buffer before giving up (memcached has no bound).
pub const DEFAULT_MAX_GET_LINE: usize = 2 * 1024 * 1024;

/// One decoded request, borrowing keys and values from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// get, gets, gat, gats.
    Get(Get<'a>),
    /// set, add, replace, append, prepend, cas.
    Store(Store<'a>),
    /// delete.
    Delete(Delete<'a>),
    /// incr, decr.
    Arith(Arith<'a>),
    /// touch.
    Touch(Touch<'a>),
    /// flush_all [delay] [noreply].
    FlushAll(FlushAll),
    /// version.
    Version,
    /// verbosity level [noreply].
    Verbosity(Verbosity),
    /// stats [group].
    Stats(Stats<'a>),
    /// quit.
    Quit,
    /// cache_memlimit.
    CacheMemlimit(CacheMemlimit),
    /// mg.
    MetaGet(MetaGet<'a>),
    /// ms.
    MetaSet(MetaSet<'a>),
    /// md.
    MetaDelete(MetaDelete<'a>),
    /// ma.
    MetaArith(MetaArith<'a>),
    /// mn.
    MetaNoop,
    /// Operator commands: me, shutdown, slabs, lru, lru_crawler, watch.
    Admin(AdminCmd<'a>),
}

impl Request<'_> {
    /// Writes the request in wire form.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            Request::Get(r) => r.encode(out),
            Request::Store(r) => r.encode(out),
            Request::Delete(r) => r.encode(out),
            Request::Arith(r) => r.encode(out),
            Request::Touch(r) => r.encode(out),
            Request::FlushAll(r) => r.encode(out),
            Request::Version => out.put_slice(b"version\r\n"),
            Request::Verbosity(r) => r.encode(out),
            Request::Stats(r) => r.encode(out),
            Request::Quit => out.put_slice(b"quit\r\n"),
            Request::CacheMemlimit(r) => r.encode(out),
            Request::MetaGet(r) => r.encode(out),
            Request::MetaSet(r) => r.encode(out),
            Request::MetaDelete(r) => r.encode(out),
            Request::MetaArith(r) => r.encode(out),
            Request::MetaNoop => out.put_slice(b"mn\r\n"),
            Request::Admin(r) => r.encode(out),
        }
    }

    /// The command word, for logs and stats.
    pub fn command(&self) -> &'static str {
        match self {
            Request::Get(g) => g.cmd.as_str(),
            Request::Store(s) => s.cmd.as_str(),
            Request::Delete(_) => "delete",
            Request::Arith(a) => {
                if a.incr {
                    "incr"
                } else {
                    "decr"
                }
            }
            Request::Touch(_) => "touch",
            Request::FlushAll(_) => "flush_all",
            Request::Version => "version",
            Request::Verbosity(_) => "verbosity",
            Request::Stats(_) => "stats",
            Request::Quit => "quit",
            Request::CacheMemlimit(_) => "cache_memlimit",
            Request::MetaGet(_) => "mg",
            Request::MetaSet(_) => "ms",
            Request::MetaDelete(_) => "md",
            Request::MetaArith(_) => "ma",
            Request::MetaNoop => "mn",
            Request::Admin(a) => a.command(),
        }
    }
}

/// Result of one decode step: a request and the bytes it used, `None` when more
/// bytes are needed, or an error that says how to answer.
pub type DecodeResult<'a> = Result<Option<(Request<'a>, usize)>, ProtoError<'a>>;

/// The request decoder, with the limits that shape its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    /// `-I`: largest item (memcached's item header + key + value) accepted.
    pub max_item_size: usize,
    /// Longest multi-get line buffered before the connection is refused.
    pub max_get_line: usize,
    /// Answer a request that starts with the binary protocol's magic (0x80)
    /// with a clear error and a close (the proxy, which routes text only).
    /// Off for a server that decides each connection's protocol by its first
    /// byte, as memcached does: a 0x80 later on is then just a bad command.
    pub refuse_binary: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { max_item_size: DEFAULT_MAX_ITEM_SIZE, max_get_line: DEFAULT_MAX_GET_LINE, refuse_binary: true }
    }
}

/// The first byte of every binary-protocol request.
const BINARY_REQUEST_MAGIC: u8 = 0x80;

impl Decoder {
    /// A decoder with the given item size limit.
    pub fn new(max_item_size: usize) -> Self {
        Decoder { max_item_size, ..Decoder::default() }
    }

    /// Decodes the first request in `buf`.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> DecodeResult<'a> {
        // A binary-protocol client (request magic 0x80) would wait for a
        // binary answer that never comes, since binary requests carry no
        // newline. Say why at once and close: text cannot follow on a
        // connection whose framing is binary. memcached, which still speaks
        // the deprecated binary protocol, answers it instead.
        if self.refuse_binary && buf.first() == Some(&BINARY_REQUEST_MAGIC) {
            let mut e = ProtoError::new(msg::BINARY_UNSUPPORTED, buf.len());
            e.close = true;
            return Err(e);
        }
        let Some((line, line_len)) = find_line(buf) else {
            return self.unterminated(buf);
        };
        let t = Tokens::new(line);
        let ctx = Ctx { buf, line_len, dec: self };
        if t.ntokens() < 2 || t.at(0).len() < 2 {
            return Err(ProtoError::new(msg::ERROR, line_len));
        }
        let cmd = t.at(0);
        if cmd[0] == b'm' && cmd.len() == 2 {
            return match cmd[1] {
                b'g' => meta_get::decode(&t, &ctx),
                b's' => meta_set::decode(&t, &ctx),
                b'd' => meta_delete::decode(&t, &ctx),
                b'a' => meta_arith::decode(&t, &ctx),
                b'n' => Ok(Some((Request::MetaNoop, line_len))),
                b'e' => admin::decode(cmd, &t, line, &ctx).unwrap_or(Err(ProtoError::new(msg::ERROR, line_len))),
                _ => Err(ProtoError::new(msg::ERROR, line_len)),
            };
        }
        match cmd {
            b"get" | b"bget" => retrieval::decode(GetCmd::Get, &t, line, &ctx),
            b"gets" => retrieval::decode(GetCmd::Gets, &t, line, &ctx),
            b"gat" => retrieval::decode(GetCmd::Gat, &t, line, &ctx),
            b"gats" => retrieval::decode(GetCmd::Gats, &t, line, &ctx),
            b"set" => storage::decode(StoreCmd::Set, &t, &ctx),
            b"add" => storage::decode(StoreCmd::Add, &t, &ctx),
            b"replace" => storage::decode(StoreCmd::Replace, &t, &ctx),
            b"append" => storage::decode(StoreCmd::Append, &t, &ctx),
            b"prepend" => storage::decode(StoreCmd::Prepend, &t, &ctx),
            b"cas" => storage::decode(StoreCmd::Cas, &t, &ctx),
            b"delete" => delete::decode(&t, &ctx),
            b"incr" => arith::decode(true, &t, &ctx),
            b"decr" => arith::decode(false, &t, &ctx),
            b"touch" => touch::decode(&t, &ctx),
            b"flush_all" => misc::decode_flush_all(&t, &ctx),
            b"version" => Ok(Some((Request::Version, line_len))),
            b"quit" => Ok(Some((Request::Quit, line_len))),
            b"verbosity" => misc::decode_verbosity(&t, &ctx),
            b"stats" => misc::decode_stats(&t, &ctx),
            b"cache_memlimit" => misc::decode_cache_memlimit(&t, &ctx),
            _ if cmd[0] == b'g' && t.ntokens() < 3 => Err(ProtoError::new(msg::ERROR, line_len)),
            _ => {
                if let Some(r) = admin::decode(cmd, &t, line, &ctx) {
                    return r;
                }
                // A stray HTTP request: memcached hangs up without a word.
                let last = t.at(t.len() - 1);
                if last.starts_with(b"HTTP/") {
                    Err(ProtoError::close_silently(line_len))
                } else {
                    Err(ProtoError::new(msg::ERROR, line_len))
                }
            }
        }
    }

    /// No newline yet: wait, or give up on junk as memcached does.
    fn unterminated<'a>(&self, buf: &'a [u8]) -> DecodeResult<'a> {
        if buf.len() <= MAX_UNTERMINATED_LINE {
            return Ok(None);
        }
        let spaces = buf.iter().take_while(|&&b| b == b' ').count();
        let rest = &buf[spaces..];
        let is_get = rest.starts_with(b"get ") || rest.starts_with(b"gets ");
        if spaces > 100 || !is_get {
            return Err(ProtoError::close_silently(buf.len()));
        }
        if buf.len() > self.max_get_line {
            let mut e = ProtoError::new(msg::LINE_TOO_LONG, buf.len());
            e.close = true;
            return Err(e);
        }
        Ok(None)
    }
}

/// Shared decoding context for the per-command decoders.
pub(crate) struct Ctx<'a, 'd> {
    pub(crate) buf: &'a [u8],
    pub(crate) line_len: usize,
    pub(crate) dec: &'d Decoder,
}

impl<'a> Ctx<'a, '_> {
    pub(crate) fn err(&self, reply: &'static str) -> ProtoError<'a> {
        ProtoError::new(reply, self.line_len)
    }
}

/// memcached's `set_noreply_maybe`: the last token is exactly `noreply`.
pub(crate) fn noreply_token(t: &Tokens<'_>) -> bool {
    t.len() > 0 && t.at(t.len() - 1) == b"noreply"
}

/// Our key rule for text keys: memcached's length limit, plus no control bytes
/// (protocol.txt forbids them; memcached itself does not check).
pub(crate) fn key_ok(key: &[u8]) -> bool {
    key.len() <= MAX_KEY_LEN && !key.iter().any(|&b| b < 0x20 || b == 0x7f)
}

/// memcached's `item_size_ok`: header (48 bytes on 64-bit) + key + NUL + client
/// flags suffix (4 bytes when non-zero) + value + `\r\n` + CAS (8 bytes).
pub fn item_size_ok(max_item_size: usize, key_len: usize, flags: u32, value_len: usize) -> bool {
    let suffix = if flags == 0 { 0 } else { 4 };
    48 + key_len + 1 + suffix + value_len + 2 + 8 <= max_item_size
}

/// Waits for and checks a data block of `vlen` bytes after the line.
/// Returns `Ok(None)` when more bytes are needed, or the value and total length.
pub(crate) fn data_block<'a>(ctx: &Ctx<'a, '_>, vlen: usize) -> Result<Option<(&'a [u8], usize)>, usize> {
    let total = ctx.line_len + vlen + 2;
    if ctx.buf.len() < total {
        return Ok(None);
    }
    let block = &ctx.buf[ctx.line_len..total];
    if &block[vlen..] != b"\r\n" {
        return Err(total);
    }
    Ok(Some((&block[..vlen], total)))
}

pub(crate) fn put_u64<B: BufMut>(out: &mut B, v: u64) {
    let mut b = itoa::Buffer::new();
    out.put_slice(b.format(v).as_bytes());
}

pub(crate) fn put_i64<B: BufMut>(out: &mut B, v: i64) {
    let mut b = itoa::Buffer::new();
    out.put_slice(b.format(v).as_bytes());
}
