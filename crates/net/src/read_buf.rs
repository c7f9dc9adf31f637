//! Reading a connection's requests into its [`RequestBuf`] (the buffer and
//! memcached's rules for it live in `memshard-proto`; the I/O is here).
//!
//! Every read lands first in one scratch buffer per thread, and only the
//! bytes read are copied into the connection's own buffer, which holds
//! nothing once they are decoded. So a connection waiting for its next
//! request owns no read buffer: ten thousand idle clients cost no 16 KiB
//! each, and a busy one pays one small copy per read.

use memshard_proto::{READ_CHUNK, RequestBuf};
use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncRead, ReadBuf};

thread_local! {
    /// The thread's scratch buffer for reads (used within one poll, never
    /// across an await).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Reads more bytes from `r` into `rb`; `Ok(0)` at end of stream.
pub async fn fill<R: AsyncRead + Unpin>(rb: &mut RequestBuf, r: &mut R) -> std::io::Result<usize> {
    poll_fn(|cx| {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut buf = ReadBuf::new(scratch);
            match Pin::new(&mut *r).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    rb.append(buf.filled());
                    Poll::Ready(Ok(buf.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_land_in_the_buffer() {
        let mut rb = RequestBuf::new();
        let mut src: &[u8] = b"mn\r\n";
        assert_eq!(fill(&mut rb, &mut src).await.expect("read"), 4);
        assert_eq!(rb.bytes(), b"mn\r\n");
        assert_eq!(fill(&mut rb, &mut src).await.expect("eof"), 0);
    }
}
