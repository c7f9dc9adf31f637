//! The request side of a memcached connection, shared by memshard server's
//! connection loop and memshard proxy's frontend: the buffer of bytes read
//! from the client, and one decode step over it with memcached's rules for
//! what follows a request — the bytes it used are consumed, the data block of
//! a rejected storage command is discarded as it arrives (memcached's
//! `conn_swallow`), and the connection closes when the error says so.
//!
//! The buffer holds only what is not yet decoded: bytes are appended as they
//! are read (into a scratch buffer the reader shares between connections),
//! and once every byte is taken it gives its memory back, so an idle
//! connection costs no buffer at all. Reading is the caller's (this crate
//! does no I/O): [`RequestBuf::append`].
//!
//! ```
//! use memshard_proto::{Decoder, Request, RequestBuf, Step};
//!
//! let mut rb = RequestBuf::new();
//! rb.append(b"get a\r\nbogus\r\n");
//! let decoder = Decoder::default();
//! assert!(matches!(rb.next(&decoder), Step::Request { req: Request::Get(_), .. }));
//! match rb.next(&decoder) {
//!     Step::Refused(e) => assert_eq!(e.reply_line(), Some("ERROR")),
//!     other => panic!("{other:?}"),
//! }
//! assert!(matches!(rb.next(&decoder), Step::NeedMore));
//! assert!(!rb.mid_request());
//! ```

use crate::{Decoder, ProtoError, Request};
use bytes::{Buf, BytesMut};

/// Bytes read per call, and the capacity the buffer returns to.
pub const READ_CHUNK: usize = 16 * 1024;

/// What one decode step found.
#[derive(Debug)]
// Returned by value and matched at once, as `Decoder::decode`'s result is:
// boxing the request would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Step<'a> {
    /// Every complete request was taken: read more.
    NeedMore,
    /// A request, and its bytes as the client sent them.
    Request {
        /// The request.
        req: Request<'a>,
        /// Its bytes (line and data block).
        raw: &'a [u8],
    },
    /// A request memcached refuses: answer [`ProtoError::reply_line`], then
    /// close if [`ProtoError::close`] says so.
    Refused(ProtoError<'a>),
}

/// A connection's read buffer.
#[derive(Debug)]
pub struct RequestBuf {
    buf: BytesMut,
    /// Bytes of a rejected data block still to discard.
    swallow: u64,
    /// What the last step used, consumed at the next step: the request it
    /// returned borrows the buffer until then.
    used: usize,
}

impl Default for RequestBuf {
    fn default() -> Self {
        RequestBuf { buf: BytesMut::new(), swallow: 0, used: 0 }
    }
}

impl RequestBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes what the last step used and discards what is owed of a
    /// rejected data block; an emptied buffer gives its memory back.
    fn settle(&mut self) {
        let used = std::mem::take(&mut self.used).min(self.buf.len());
        self.buf.advance(used);
        if self.swallow > 0 {
            let n = self.swallow.min(self.buf.len() as u64) as usize;
            self.buf.advance(n);
            self.swallow -= n as u64;
        }
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }

    /// Adds bytes read from the client (what a rejected data block still
    /// owes is discarded on the way in).
    pub fn append(&mut self, mut data: &[u8]) {
        self.settle();
        if self.swallow > 0 {
            let n = self.swallow.min(data.len() as u64) as usize;
            data = &data[n..];
            self.swallow -= n as u64;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes held now (what is not yet decoded), for tests and diagnostics.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next request in the buffer: the text protocol's decode step.
    pub fn next(&mut self, decoder: &Decoder) -> Step<'_> {
        self.settle();
        if self.swallow > 0 || self.buf.is_empty() {
            return Step::NeedMore;
        }
        match decoder.decode(&self.buf) {
            Ok(None) => Step::NeedMore,
            Ok(Some((req, used))) => {
                self.used = used;
                Step::Request { req, raw: &self.buf[..used] }
            }
            Err(e) => {
                self.used = e.consumed;
                self.swallow = e.swallow;
                Step::Refused(e)
            }
        }
    }

    /// The buffered bytes not yet taken, for another decoder (the binary
    /// protocol's); report what it used with [`RequestBuf::advance`].
    pub fn bytes(&mut self) -> &[u8] {
        self.settle();
        if self.swallow > 0 { &[] } else { &self.buf }
    }

    /// Marks `used` bytes as taken and `swallow` more to discard as they
    /// arrive.
    pub fn advance(&mut self, used: usize, swallow: u64) {
        self.settle();
        self.used = used;
        self.swallow = swallow;
        self.settle();
    }

    /// Takes what the last step used now (before handing the connection
    /// over, say).
    pub fn commit(&mut self) {
        self.settle();
    }

    /// Whether part of a request is buffered or owed (bytes left after
    /// every complete request, or a data block still being discarded). A
    /// draining connection waits for the rest before closing, so a request
    /// in flight at shutdown is still answered.
    pub fn mid_request(&self) -> bool {
        self.buf.len() > self.used || self.swallow > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_data_block_is_swallowed_across_reads() {
        let d = Decoder::default();
        let mut rb = RequestBuf::new();
        // Declared too large: refused at the line, its 2,000,002-byte block owed.
        rb.append(b"set k 0 0 2000000\r\nabc");
        match rb.next(&d) {
            Step::Refused(e) => assert_eq!(e.reply_line(), Some(crate::msg::TOO_LARGE)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(rb.next(&d), Step::NeedMore));
        assert!(rb.mid_request(), "the rest of the block is owed");
        let rest = 2_000_002 - 3;
        rb.append(&vec![b'x'; rest]);
        assert_eq!(rb.capacity(), 0, "a swallowed block is never buffered");
        rb.append(b"mn\r\n");
        assert!(matches!(rb.next(&d), Step::Request { req: Request::MetaNoop, raw: b"mn\r\n" }));
        assert!(matches!(rb.next(&d), Step::NeedMore));
        assert!(!rb.mid_request());
        assert_eq!(rb.capacity(), 0, "an idle connection holds no buffer");
    }

    #[test]
    fn advance_serves_another_decoder() {
        let mut rb = RequestBuf::new();
        rb.append(b"0123456789");
        assert_eq!(rb.bytes(), b"0123456789");
        rb.advance(4, 3);
        assert_eq!(rb.bytes(), b"789");
        rb.advance(1, 5);
        assert_eq!(rb.bytes(), b"");
        assert!(rb.mid_request(), "3 more bytes are owed");
        rb.append(b"abcdef");
        assert_eq!(rb.bytes(), b"def");
    }
}
