//! memshard-net: the tokio plumbing every memshard role shares.
//!
//! * [`Shutdown`]: a cloneable "stop now" signal handed to every accept loop,
//!   connection task and background task, plus [`os_signal`] for SIGINT/SIGTERM.
//! * [`serve`]: an accept loop with a connection limit (over the limit the client
//!   gets a configurable reply and is closed, the others are unaffected), backoff
//!   on accept errors, and a drain that waits for in-flight connections.
//! * [`serve_pinned`]: the same, with connections pinned to N worker threads,
//!   each a single-threaded runtime (memcached's threading model).
//! * [`bind`]: a listener on `host:port` (port 0 allowed) that logs `listening on`.
//!
//! It holds no protocol knowledge: the handler gets a `TcpStream` and does the rest.
//!
//! ```text
//!   serve ── accept ──► permit? ──yes──► spawn handler(stream, Shutdown)
//!                         │                 (permit dropped when it ends)
//!                         └─no──► write reject line, close
//!   shutdown ──► stop accepting ──► wait for handlers (bounded) ──► return
//! ```

mod limit;
mod shutdown;
mod workers;

pub use limit::{ServeConfig, ServeStats, serve};
pub use shutdown::{Shutdown, ShutdownTrigger, os_signal};
pub use workers::serve_pinned;

use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Errors from setting up a listener.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// What we tried to bind.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` (e.g. `0.0.0.0:11211`, `127.0.0.1:0`) with SO_REUSEADDR.
pub async fn bind(addr: &str) -> Result<TcpListener, NetError> {
    let err = |source| NetError::Bind { addr: addr.to_string(), source };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr).await.map_err(err)?.collect();
    let mut last = None;
    for a in addrs {
        let sock = if a.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
        let attempt = sock.and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(a)?;
            s.listen(1024)
        });
        match attempt {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))))
}
