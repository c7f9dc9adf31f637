//! The socket side of a backend connection: its task connects, then
//! writes what client tasks queued, reads answers and hands them out (see
//! `upstream`), and watches the oldest request's deadline, until the
//! connection is retired or breaks.

use crate::control::refresh;
use crate::control::resolve::Dest;
use crate::control::stats;
use crate::data::backend::answer::Failure;
use crate::data::backend::upstream::Upstream;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, Sleep};

/// The read buffer's size, and what it shrinks back to after a large answer.
const READ_CHUNK: usize = 64 * 1024;

/// Most yields before a write while each brings more requests.
const MAX_YIELDS: u32 = 4;

/// Keeps the `server_connections` gauge right however the task ends.
struct Connected<'a>(&'a Upstream);
impl Drop for Connected<'_> {
    fn drop(&mut self) {
        stats::gauge(&self.0.server.stats.server_connections, -1);
    }
}

/// The connection's task: connect, then serve the socket until retired or
/// broken.
pub(crate) async fn run(up: Rc<Upstream>, reconnect: bool) {
    let failure = match connect(&up, reconnect).await {
        Err(f) => f,
        Ok(stream) => {
            stats::gauge(&up.server.stats.server_connections, 1);
            let _gauge = Connected(&up);
            up.restamp();
            let res = match stream {
                Stream::Tcp(s) => serve(&up, s).await,
                Stream::Unix(s) => serve(&up, s).await,
                Stream::Tls(s) => serve(&up, *s).await,
            };
            match res {
                Ok(()) => return,
                Err(f) => f,
            }
        }
    };
    up.break_with(&failure);
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// `server_tls: true` (boxed: a TLS session is large).
    Tls(Box<memshard_tls::ClientStream<TcpStream>>),
}

/// A connect bounded by `timeout`, as a failure to report.
fn bounded<S>(r: Result<std::io::Result<S>, tokio::time::error::Elapsed>) -> Result<S, Failure> {
    match r {
        Err(_) => Err(Failure::timeout()),
        Ok(Err(e)) => Err(Failure::io(&e)),
        Ok(Ok(s)) => Ok(s),
    }
}

/// Connects to where the server's name resolves now (looked up again on a
/// reconnect), or to its unix socket, within `timeout`.
async fn connect(up: &Upstream, reconnect: bool) -> Result<Stream, Failure> {
    let (dest, _) = refresh::destination(&up.pool, &up.server, reconnect || up.server.health.is_failing())
        .await
        .map_err(|e| Failure::io(&e))?;
    match dest {
        Dest::Tcp(addrs) => {
            let s: TcpStream = bounded(tokio::time::timeout(up.timeout(), TcpStream::connect(&addrs[..])).await)?;
            s.set_nodelay(true).map_err(|e| Failure::io(&e))?;
            // The set in force when connecting says whether to speak TLS,
            // with which certificates, and what name to check.
            let set = up.pool.servers();
            match &set.tls.servers {
                None => Ok(Stream::Tcp(s)),
                Some(tls) => {
                    let name = set.tls.name_for(up.server.target.host());
                    let handshake = tokio::time::timeout(up.timeout(), tls.connect(&name, s)).await;
                    if let Ok(Err(e)) = &handshake {
                        // A certificate problem is the operator's to fix: say which.
                        tracing::warn!(pool = %up.pool.name, server = %up.server.addr, name = %name, error = %e,
                            "TLS handshake with the server failed");
                    }
                    Ok(Stream::Tls(Box::new(bounded(handshake)?)))
                }
            }
        }
        Dest::Unix(path) => {
            Ok(Stream::Unix(bounded(tokio::time::timeout(up.timeout(), UnixStream::connect(&*path)).await)?))
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(up: &Upstream, stream: S) -> Result<(), Failure> {
    let mut link = Link {
        stream,
        rbuf: vec![0; READ_CHUNK],
        lo: 0,
        hi: 0,
        written: 0,
        sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        armed: false,
    };
    let (mut yields, mut seen) = (0, 0);
    poll_fn(|cx| {
        // Requests are queued: before writing them, let the clients whose
        // requests arrived in this same turn of the event loop queue theirs
        // too (a yield runs after the pending I/O events are handed out), so
        // one write carries them all and the backend wakes once for them.
        // While each yield brings more, yield again (a few times at most):
        // on a busy worker the batch grows; on a quiet one the first yield
        // brings nothing and the write goes at once.
        if up.has_output() {
            let taken = up.taken();
            if yields == 0 || (taken != seen && yields < MAX_YIELDS) {
                yields += 1;
                seen = taken;
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                return Poll::Pending;
            }
        }
        yields = 0;
        let res = link.turn(up, cx);
        up.flush_tally();
        res
    })
    .await
}

/// The socket side of a connection.
struct Link<S> {
    stream: S,
    /// Answers read, at `lo..hi`.
    rbuf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// Bytes of the output buffer already written.
    written: usize,
    /// Fires at the oldest waiter's deadline (or earlier: then re-armed).
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    /// One pass: write what is queued, hand out what arrived, watch the
    /// deadline. Ready when the connection is done (retired) or broken.
    fn turn(&mut self, up: &Upstream, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        up.arm(cx.waker());
        if let Err(f) = self.flush(up, cx) {
            return Poll::Ready(Err(f));
        }
        loop {
            if self.hi == self.rbuf.len() {
                self.make_room();
            }
            let mut rb = ReadBuf::new(&mut self.rbuf[self.hi..]);
            match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Failure::io(&e))),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(Failure::eof()));
                    }
                    self.hi += n;
                    match up.dispatch(&self.rbuf[self.lo..self.hi]) {
                        Ok(used) => self.lo += used,
                        Err(f) => return Poll::Ready(Err(f)),
                    }
                    if self.lo == self.hi {
                        (self.lo, self.hi) = (0, 0);
                        if self.rbuf.len() > 4 * READ_CHUNK {
                            self.rbuf = vec![0; READ_CHUNK];
                        }
                    }
                }
            }
        }
        while let Some(deadline) = up.oldest_deadline() {
            if !self.armed {
                self.sleep.as_mut().reset(deadline);
                self.armed = true;
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                break;
            }
            self.armed = false;
            if deadline <= Instant::now() {
                return Poll::Ready(Err(Failure::timeout()));
            }
        }
        if up.finished() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Writes the output buffer: everything queued since the last pass, in
    /// one call unless the socket is full.
    fn flush(&mut self, up: &Upstream, cx: &mut Context<'_>) -> Result<(), Failure> {
        up.with_output(|out| {
            while self.written < out.len() {
                match Pin::new(&mut self.stream).poll_write(cx, &out[self.written..]) {
                    Poll::Pending => return Ok(()),
                    Poll::Ready(Ok(0)) => return Err(Failure::io(&std::io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => self.written += n,
                    Poll::Ready(Err(e)) => return Err(Failure::io(&e)),
                }
            }
            // What a TLS stream still holds goes out too; until it has, the
            // output stays (a socket has nothing to flush).
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Err(e)) => return Err(Failure::io(&e)),
                Poll::Ready(Ok(())) => {}
            }
            self.written = 0;
            out.clear();
            if out.capacity() > 4 * READ_CHUNK {
                // One huge value should not pin its buffer for the connection's life.
                *out = Vec::new();
            }
            Ok(())
        })
    }

    /// Room at the end of the read buffer: move the unread bytes to the
    /// front, or grow when they fill it (one answer larger than the buffer).
    fn make_room(&mut self) {
        if self.lo > 0 {
            self.rbuf.copy_within(self.lo..self.hi, 0);
            self.hi -= self.lo;
            self.lo = 0;
        } else {
            let grown = self.rbuf.len() * 2;
            self.rbuf.resize(grown, 0);
        }
    }
}
