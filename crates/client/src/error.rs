//! The one error type of the client.

use memshard_proto::ReplyError;
use std::sync::Arc;

/// Shorthand for results of client operations.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Why a request failed.
///
/// `Io`, `Timeout`, `Closed` and `Protocol` mean the connection is (now) broken:
/// every request in flight on it fails with the same error and later requests
/// fail with `Closed`; a [`Pool`](crate::Pool) replaces such connections.
/// `Server`, `Unexpected` and `InvalidArgument` concern one request only and
/// leave the connection usable.
///
/// The type is `Clone` (I/O errors are shared behind an `Arc`) because one
/// connection failure is reported to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("i/o error: {0}")]
    Io(Arc<std::io::Error>),
    /// A request (or the connect) took longer than the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection is closed: the server hung up, or it was broken earlier.
    #[error("connection closed")]
    Closed,
    /// The server sent bytes that are not memcached's protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] ReplyError),
    /// The server answered `ERROR`, `CLIENT_ERROR …` or `SERVER_ERROR …`
    /// (the whole line, without `\r\n`).
    #[error("server error: {0}")]
    Server(String),
    /// A well-formed reply that does not answer the command sent (e.g.
    /// `STORED` to a `get`); the connection stays aligned and usable.
    #[error("unexpected reply to {command}: {reply}")]
    Unexpected {
        /// The command that was sent.
        command: &'static str,
        /// The reply received, debug-formatted.
        reply: String,
    },
    /// The request was refused before sending: a key with spaces or control
    /// bytes, a too-long key, a quiet meta flag, bad meta flags.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(Arc::new(e))
    }
}

impl ClientError {
    /// Whether this error means the connection it happened on is unusable.
    pub fn breaks_connection(&self) -> bool {
        matches!(self, ClientError::Io(_) | ClientError::Timeout | ClientError::Closed | ClientError::Protocol(_))
    }
}
