//! The admin port's HTTP: one `GET` per connection, within limits no client
//! can stretch.
//!
//! A request head must arrive whole within [`Limits::read_timeout`] and fit
//! in [`Limits::max_head`] bytes; at most [`Limits::max_connections`]
//! connections are served at once (the next one is told 503 and closed
//! without a task), and every answer is written within a deadline. So a slow
//! or huge request holds one bounded slot for a bounded time, and memory
//! stays at `max_connections × max_head` for requests.

use crate::Source;
use crate::routes::{self, Answer};
use memshard_net::Shutdown;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How much an admin client may ask of the port.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest time to receive a request head (default 5 s).
    pub read_timeout: Duration,
    /// Longest time to write an answer (default 5 s).
    pub write_timeout: Duration,
    /// Largest request head in bytes (default 8 KiB).
    pub max_head: usize,
    /// Connections served at once (default 64).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            max_connections: 64,
        }
    }
}

/// Serves `source` on `listener` until `shutdown`. Logs `listening on ADDR`
/// (role `<role>-admin`) first.
pub async fn run(
    listener: TcpListener,
    source: Arc<dyn Source>,
    limits: Limits,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let role = format!("{}-admin", source.role());
    tracing::info!(role = %role, "listening on {addr}");
    let seats = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.wait() => return Ok(()),
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    // Out of descriptors, mostly: wait rather than spin.
                    tracing::warn!(role = %role, error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(seat) = seats.clone().try_acquire_owned() else {
            let busy = routes::error(503, "busy", "the admin port serves as many connections as it takes; try again");
            // Never waits: a client that does not read loses the answer.
            let _ = stream.try_write(&busy.to_bytes(false));
            continue;
        };
        let source = source.clone();
        tokio::spawn(async move {
            serve(stream, &*source, limits).await;
            drop(seat);
        });
    }
}

/// Reads one request head, answers it, closes.
async fn serve(mut stream: TcpStream, source: &dyn Source, limits: Limits) {
    let answer = match tokio::time::timeout(limits.read_timeout, read_head(&mut stream, limits.max_head)).await {
        Err(_) => Some((routes::error(408, "request timeout", "the request head did not arrive in time"), false)),
        Ok(Err(_)) => None,
        Ok(Ok(Head::TooLarge)) => Some((
            routes::error(431, "headers too large", "the request head is larger than the admin port accepts"),
            false,
        )),
        Ok(Ok(Head::Closed)) => None,
        Ok(Ok(Head::Complete(buf))) => Some(answer(&buf, source)),
    };
    if let Some((answer, head_only)) = answer {
        let bytes = answer.to_bytes(head_only);
        let _ = tokio::time::timeout(limits.write_timeout, async {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        })
        .await;
        // Closing with unread bytes (the rest of a refused head) would reset
        // the connection and could lose the answer before the client reads
        // it: read a little more first, bounded in bytes and time.
        let _ = tokio::time::timeout(LINGER, async {
            let mut sink = [0u8; 4096];
            let mut left = LINGER_BYTES;
            while left > 0 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    }
}

/// How long, and how many bytes, a connection is read after its answer.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
}

/// Reads until the blank line that ends a request head, or `max` bytes.
async fn read_head(stream: &mut TcpStream, max: usize) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        // Look for the end from a little before the new bytes: it may span reads.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if buf[from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Head::Complete(buf));
        }
        if buf.len() >= max {
            return Ok(Head::TooLarge);
        }
    }
}

/// The answer to a complete head, and whether it is a `HEAD` (no body).
fn answer(buf: &[u8], source: &dyn Source) -> (Answer, bool) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return (routes::error(400, "bad request", "the request is not valid HTTP/1.1"), false);
        }
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return (routes::error(400, "bad request", "the request is not valid HTTP/1.1"), false);
    };
    match method {
        "GET" => (routes::route(target, source), false),
        "HEAD" => (routes::route(target, source), true),
        _ => (routes::error(405, "method not allowed", "the admin port answers GET and HEAD only"), false),
    }
}
