//! A connection's read buffer, shared by the server and the proxy frontend:
//! it grows only to hold one complete request, shrinks back after a large
//! one, and discards the data block of a rejected storage command as it
//! arrives (memcached's `conn_swallow`).

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read per call, and the capacity the buffer returns to.
pub const READ_CHUNK: usize = 16 * 1024;

/// A read buffer with a pending-discard count.
#[derive(Debug)]
pub struct ReadBuf {
    buf: BytesMut,
    /// Bytes of a rejected data block still to discard.
    swallow: u64,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf { buf: BytesMut::with_capacity(READ_CHUNK), swallow: 0 }
    }
}

impl ReadBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The buffered bytes, to decode from.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Drops `n` decoded bytes (at most what is buffered).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
    }

    /// Discards the next `n` bytes, now or as they arrive.
    pub fn swallow(&mut self, n: u64) {
        self.swallow = n;
    }

    /// Applies a pending discard; `true` when there is something to decode.
    pub fn ready(&mut self) -> bool {
        if self.swallow > 0 {
            let n = self.swallow.min(self.buf.len() as u64) as usize;
            self.buf.advance(n);
            self.swallow -= n as u64;
            if self.swallow > 0 {
                return false;
            }
        }
        !self.buf.is_empty()
    }

    /// Whether part of a request is buffered or owed (bytes left over after
    /// every complete request was decoded, or a data block still being
    /// discarded). A draining connection waits for the rest before closing,
    /// so a request in flight at shutdown is still answered.
    pub fn mid_request(&self) -> bool {
        !self.buf.is_empty() || self.swallow > 0
    }

    /// Reads more bytes from `r`; `Ok(0)` at end of stream. A buffer that grew
    /// for one large value is given back first.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> std::io::Result<usize> {
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = BytesMut::with_capacity(READ_CHUNK);
        }
        self.buf.reserve(READ_CHUNK);
        r.read_buf(&mut self.buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn swallow_spans_reads() {
        let mut rb = ReadBuf::new();
        let mut src: &[u8] = b"abcdefgh";
        assert_eq!(rb.fill(&mut src).await.expect("read"), 8);
        rb.swallow(10);
        assert!(!rb.ready(), "2 more bytes are owed");
        let mut more: &[u8] = b"xyget\r\n";
        rb.fill(&mut more).await.expect("read");
        assert!(rb.ready());
        assert_eq!(rb.bytes(), b"get\r\n");
        rb.consume(100);
        assert!(!rb.ready());
    }
}
