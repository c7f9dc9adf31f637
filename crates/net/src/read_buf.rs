//! Reading a connection's requests into its [`RequestBuf`] (the buffer and
//! memcached's rules for it live in `memshard-proto`; the I/O is here).

use memshard_proto::RequestBuf;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads more bytes from `r` into `rb`; `Ok(0)` at end of stream.
pub async fn fill<R: AsyncRead + Unpin>(rb: &mut RequestBuf, r: &mut R) -> std::io::Result<usize> {
    r.read_buf(rb.read_space()).await
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
