//! A raw TCP connection that reads in the background while the test writes.
//!
//! Reading concurrently matters for two reasons: a case may need a CAS value
//! from an earlier reply before it can write its next chunk, and a server
//! that answers while we are still writing large chunks must not deadlock
//! against our full send buffer.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

/// How the read side of a connection ended, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Still open as far as we know.
    Open,
    /// The server sent FIN (orderly close).
    Eof,
    /// The read failed, typically a reset (RST) from the server.
    Error(String),
}

impl Closed {
    /// True for any kind of close.
    pub fn is_closed(&self) -> bool {
        !matches!(self, Closed::Open)
    }
}

enum ReadEvent {
    Data(Vec<u8>),
    Eof,
    Error(io::Error),
}

/// A connection whose received bytes accumulate in [`Wire::received`].
pub(crate) struct Wire {
    writer: OwnedWriteHalf,
    events: mpsc::UnboundedReceiver<ReadEvent>,
    received: Vec<u8>,
    closed: Closed,
    reader: tokio::task::JoinHandle<()>,
}

impl Wire {
    /// Connects with Nagle disabled, so each write leaves as its own segment.
    pub(crate) async fn connect(addr: SocketAddr, within: Duration) -> io::Result<Wire> {
        let stream = tokio::time::timeout(within, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let (mut read_half, writer) = stream.into_split();
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let event = match read_half.read(&mut buf).await {
                    Ok(0) => ReadEvent::Eof,
                    Ok(n) => ReadEvent::Data(buf[..n].to_vec()),
                    Err(e) => ReadEvent::Error(e),
                };
                let last = !matches!(event, ReadEvent::Data(_));
                if tx.send(event).is_err() || last {
                    return;
                }
            }
        });
        Ok(Wire { writer, events, received: Vec::new(), closed: Closed::Open, reader })
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> &[u8] {
        &self.received
    }

    /// Whether the server closed the connection (as observed so far).
    pub(crate) fn closed(&self) -> &Closed {
        &self.closed
    }

    /// Writes all of `bytes`.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Moves already-arrived bytes into `received` without waiting.
    pub(crate) fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.absorb(event);
        }
    }

    fn absorb(&mut self, event: ReadEvent) {
        match event {
            ReadEvent::Data(d) => self.received.extend_from_slice(&d),
            ReadEvent::Eof => self.closed = Closed::Eof,
            ReadEvent::Error(e) => self.closed = Closed::Error(e.to_string()),
        }
    }

    /// Receives until `done(received)` holds, the connection closes, or the
    /// deadline passes. Returns whether `done` held.
    pub(crate) async fn read_until(&mut self, deadline: Instant, mut done: impl FnMut(&[u8]) -> bool) -> bool {
        loop {
            self.drain();
            if done(&self.received) {
                return true;
            }
            if self.closed.is_closed() {
                return false;
            }
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.absorb(event),
                // The reader task ended without telling us why: treat as EOF.
                Ok(None) => self.closed = Closed::Eof,
                Err(_) => return false,
            }
        }
    }

    /// Receives until nothing arrives for `idle`, the connection closes, or
    /// `cap` passes; for recording replies of unknown length.
    pub(crate) async fn read_until_idle(&mut self, idle: Duration, cap: Instant) {
        loop {
            self.drain();
            if self.closed.is_closed() {
                return;
            }
            let deadline = (Instant::now() + idle).min(cap);
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.absorb(event),
                Ok(None) => self.closed = Closed::Eof,
                Err(_) => return,
            }
        }
    }

    /// Waits until the server closes the connection or the deadline passes.
    pub(crate) async fn wait_closed(&mut self, deadline: Instant) -> bool {
        self.read_until(deadline, |_| false).await;
        self.closed.is_closed()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
