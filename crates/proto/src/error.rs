//! Decode errors that carry the reply memcached would send.

use std::borrow::Cow;

/// A request that cannot be served, with everything a connection needs to
/// answer it exactly as memcached does and carry on (or close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError<'a> {
    /// The reply line without `\r\n` (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`);
    /// `None` means close silently, as memcached does for unterminated junk.
    pub reply: Option<&'static str>,
    /// Bytes of the buffer this error accounts for (the request line, and the data
    /// block when it was already read).
    pub consumed: usize,
    /// Further bytes to discard as they arrive (the data block of a rejected
    /// storage command, memcached's `conn_swallow`).
    pub swallow: u64,
    /// Close the connection after sending the reply.
    pub close: bool,
    /// The request asked for `noreply`: memcached then suppresses even this error.
    pub noreply: bool,
    /// A key whose current item must be removed ("avoid stale data" after a set
    /// that was rejected as too large).
    pub unlink: Option<Cow<'a, [u8]>>,
}

impl<'a> ProtoError<'a> {
    pub(crate) fn new(reply: &'static str, consumed: usize) -> Self {
        ProtoError { reply: Some(reply), consumed, swallow: 0, close: false, noreply: false, unlink: None }
    }

    pub(crate) fn close_silently(consumed: usize) -> Self {
        ProtoError { reply: None, consumed, swallow: 0, close: true, noreply: false, unlink: None }
    }

    pub(crate) fn noreply(mut self, noreply: bool) -> Self {
        self.noreply = noreply;
        self
    }

    pub(crate) fn swallow(mut self, n: u64) -> Self {
        self.swallow = n;
        self
    }

    /// Detaches the error from the input buffer.
    pub fn into_owned(self) -> ProtoError<'static> {
        ProtoError {
            reply: self.reply,
            consumed: self.consumed,
            swallow: self.swallow,
            close: self.close,
            noreply: self.noreply,
            unlink: self.unlink.map(|k| Cow::Owned(k.into_owned())),
        }
    }

    /// Whether a reply line must be written for this error.
    pub fn reply_line(&self) -> Option<&'static str> {
        if self.noreply { None } else { self.reply }
    }
}

/// memcached's exact reply strings.
pub mod msg {
    /// Unknown command or wrong number of tokens.
    pub const ERROR: &str = "ERROR";
    /// Generic malformed request line.
    pub const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
    /// The data block did not end with `\r\n`.
    pub const BAD_CHUNK: &str = "CLIENT_ERROR bad data chunk";
    /// memshard's own: the last line a `memshard server -e` sends on each
    /// text connection at a graceful stop. It is a planned restart: the
    /// server will come back with its items, so a proxy should wait for it
    /// rather than move its keys elsewhere. A client that sent a request
    /// the server did not read reads this as its (failed) answer.
    pub const GOODBYE: &str = "SERVER_ERROR restarting";
    /// Declared value larger than the item size limit.
    pub const TOO_LARGE: &str = "SERVER_ERROR object too large for cache";
    /// incr/decr on a value that is not a decimal number.
    pub const NON_NUMERIC: &str = "CLIENT_ERROR cannot increment or decrement non-numeric value";
    /// incr/decr delta that is not a number.
    pub const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
    /// touch/gat/flush_all exptime that is not a number.
    pub const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
    /// delete with a stray argument.
    pub const DELETE_USAGE: &str = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
    /// Meta flag seen twice (mg, ms).
    pub const DUP_FLAG: &str = "CLIENT_ERROR duplicate flag";
    /// Unknown meta flag.
    pub const INVALID_FLAG: &str = "CLIENT_ERROR invalid flag";
    /// md/ma flag error.
    pub const INVALID_OR_DUP_FLAG: &str = "CLIENT_ERROR invalid or duplicate flag";
    /// A meta numeric token that does not parse.
    pub const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";
    /// Opaque longer than 32 bytes.
    pub const OPAQUE_TOO_LONG: &str = "CLIENT_ERROR opaque token too long";
    /// Too many flags on mg.
    pub const MG_FLAGS_TOO_LONG: &str = "CLIENT_ERROR options flags are too long";
    /// Too many flags on ms/md/ma.
    pub const FLAGS_TOO_LONG: &str = "CLIENT_ERROR options flags too long";
    /// Base64 key that does not decode.
    pub const BAD_BASE64: &str = "CLIENT_ERROR error decoding key";
    /// `M` token not one character.
    pub const BAD_MODE_LEN: &str = "CLIENT_ERROR incorrect length for M token";
    /// Unknown ms mode.
    pub const BAD_MS_MODE: &str = "CLIENT_ERROR invalid mode for ms M token";
    /// Unknown ma mode.
    pub const BAD_MA_MODE: &str = "CLIENT_ERROR invalid mode for ma M token";
    /// Bad `J` token.
    pub const BAD_INITIAL: &str = "CLIENT_ERROR invalid numeric initial value";
    /// Bad `D` token.
    pub const BAD_DELTA_TOKEN: &str = "CLIENT_ERROR invalid numeric delta value";
    /// A request starting with the binary protocol's request magic (0x80).
    pub const BINARY_UNSUPPORTED: &str = "CLIENT_ERROR binary protocol is not supported";
    /// A multi-get line longer than the decoder accepts.
    pub const LINE_TOO_LONG: &str = "CLIENT_ERROR line too long";
}
