//! JSON bodies for the requests hyper refuses before the app sees them.
//!
//! hyper answers a request it cannot parse — a URI past its limit (414),
//! too many or too large headers (431), a malformed request line such as
//! one with a raw space (400) — itself, with an empty body, and closes the
//! connection. Every other 4xx of the app has a JSON body, so the listener
//! wraps each connection: when hyper writes such an answer (a 4xx head with
//! `content-length: 0` and `connection: close`, which no route of the app
//! ever sends), the same answer goes out with the app's JSON error body.

use axum::serve::Listener;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections carry [`JsonErrors`].
#[derive(Debug)]
pub(crate) struct JsonErrorListener(pub(crate) TcpListener);

impl Listener for JsonErrorListener {
    type Io = JsonErrors<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.0).await;
        (JsonErrors { inner: io, pending: None }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that rewrites hyper's own empty 4xx answers.
#[derive(Debug)]
pub(crate) struct JsonErrors<S> {
    inner: S,
    /// A rewritten answer being written: its bytes, how many are out, and
    /// the length of the write it replaces.
    pending: Option<(Vec<u8>, usize, usize)>,
}

/// The JSON answer for hyper's empty one in `buf`, if `buf` is one.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_end != buf.len() || !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let has = |h: &str| headers.iter().any(|l| l.eq_ignore_ascii_case(h));
    if !has("content-length: 0") || !has("connection: close") {
        return None;
    }
    let (error, detail) = match status_line.get(9..12)? {
        "414" => ("uri too long", "the request's URI is longer than the server accepts"),
        "431" => ("headers too large", "the request has more or larger header fields than the server accepts"),
        "400" => ("bad request", "the request is not valid HTTP/1.1 (e.g. a raw space or control byte in its URI)"),
        _ => ("bad request", "the server could not read the request"),
    };
    let body = serde_json::json!({ "error": error, "detail": detail }).to_string();
    let mut out = format!("{status_line}\r\nconnection: close\r\ncontent-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n", body.len()));
    for h in headers.iter().filter(|h| h.to_ascii_lowercase().starts_with("date:")) {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match rewrite(buf) {
                Some(answer) => this.pending = Some((answer, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let Some((answer, written, replaced)) = this.pending.as_mut() else { return Poll::Ready(Ok(0)) };
        while *written < answer.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let replaced = *replaced;
        this.pending = None;
        Poll::Ready(Ok(replaced))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn only_hypers_empty_refusals_are_rewritten() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 22:23:25 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper).expect("rewritten")).expect("utf8");
        let (head, body) = out.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("content-type: application/json") && head.contains("date: Sun, 06 Dec"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"], "headers too large");
        // The app's own answers, and anything with a body, pass untouched.
        assert!(
            rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n")
                .is_none()
        );
        assert!(rewrite(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n{}").is_none());
    }
}
