//! memshard-proto: memcached's text and meta protocol as a pure codec.
//!
//! Bytes in, typed [`Request`]s and [`Reply`]s out, and back again. Decoding is
//! zero-copy (keys and values borrow the input buffer) and three-way: a complete
//! message with the bytes it used, `Ok(None)` when more bytes are needed, or a
//! [`ProtoError`] that carries the exact reply memcached 1.6 would send, whether
//! the following data block must be swallowed and whether to close.
//!
//! This crate does no I/O, reads no clock and keeps no state: the server, proxy
//! and client wrap it in their own connections. Semantics (what a TTL means,
//! what a CAS compare does) belong to the store, not here.

pub mod binary;
mod error;
/// Invariant checkers for the fuzz targets and the regression and property
/// tests; not part of the crate's API (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod line;
pub mod number;
mod reply;
mod request;
mod request_buf;

pub use error::{ProtoError, msg};
pub use line::{MAX_TOKENS, MAX_UNTERMINATED_LINE};
pub use reply::{MAX_REPLY_LINE, MetaCode, Reply, ReplyError, meta_flag_tokens};
pub use request::{
    Admin, AdminCmd, Arith, CacheMemlimit, DEFAULT_MAX_GET_LINE, DEFAULT_MAX_ITEM_SIZE, DecodeResult, Decoder, Delete,
    Factor, FlushAll, Get, GetCmd, Keys, MAX_KEY_LEN, MAX_META_FLAGS, MetaArith, MetaArithMode, MetaDelete, MetaFlags,
    MetaGet, MetaSet, MetaSetMode, Request, ShutdownMode, Stats, Store, StoreCmd, Touch, Verbosity, WatchFlags,
    item_size_ok,
};
pub use request_buf::{READ_CHUNK, RequestBuf, Step};

/// Writes a decimal number, the way every reply writes numbers.
pub fn put_u64<B: bytes::BufMut>(out: &mut B, v: u64) {
    request::put_u64(out, v);
}
