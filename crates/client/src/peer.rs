//! Where a connection goes: a TCP address or a unix socket path (memcached's
//! `-s PATH`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The server end of a [`crate::Client`]'s connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP server.
    Tcp(SocketAddr),
    /// A server listening on a unix socket at this path.
    Unix(PathBuf),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "{a}"),
            Peer::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}
