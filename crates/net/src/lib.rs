//! memshard-net: the tokio plumbing every memshard role shares.
//!
//! * [`Shutdown`]: a cloneable "stop now" signal handed to every accept loop,
//!   connection task and background task, plus [`os_signal`] for SIGINT/SIGTERM.
//! * [`serve`]: an accept loop with a connection limit (over the limit the client
//!   gets a configurable reply and is closed, the others are unaffected), backoff
//!   on accept errors, and a drain that waits for in-flight connections.
//! * [`serve_pinned`]: the same, with connections pinned to N worker threads,
//!   each a single-threaded runtime (memcached's threading model);
//!   [`serve_pinned_local`] for handlers that share non-`Send` state with
//!   tasks on their own thread; [`serve_balanced_local`], whose handlers can
//!   hand their connection back between requests ([`Seat`]), so that it
//!   keeps as few workers active as the load needs ([`Spread::Adaptive`]).
//! * [`fill`]: reads a connection's bytes into its `memshard_proto::RequestBuf`.
//! * [`bind`]: a TCP listener on `host:port` (port 0 allowed); [`bind_unix`]: a
//!   unix socket listener on a path, with twemproxy's stale-file removal and
//!   chmod, whose socket file goes away with it.
//! * [`Accept`]: what the accept loops serve (TCP or unix listeners), and
//!   [`Listener`], either kind, for roles whose address comes from configuration.
//!
//! It holds no protocol knowledge: the handler gets the accepted stream
//! (`TcpStream` or `UnixStream`, each its own monomorphic handler) and does the rest.
//!
//! ```text
//!   serve ── accept ──► permit? ──yes──► spawn handler(stream, Shutdown)
//!                         │                 (permit dropped when it ends)
//!                         └─no──► write reject line, close
//!   shutdown ──► stop accepting ──► wait for handlers (bounded) ──► return
//! ```

mod balance;
mod limit;
mod listener;
mod load;
mod memory;
mod parking;
mod read_buf;
mod shutdown;
mod workers;

pub use limit::{ServeConfig, ServeStats, serve};
pub use listener::{Accept, ListenAddr, Listener, UnixListener, bind_unix};
pub use load::{PARK_TICK, Seat};
pub use memory::{TRIM_AFTER_CLOSES, trim, trim_after_closes};
pub use read_buf::fill;
pub use shutdown::{Shutdown, ShutdownTrigger, StopSignal, os_signal};
pub use workers::{Spread, serve_balanced_local, serve_pinned, serve_pinned_local};

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

/// Listener options (twemproxy's `backlog` and `reuseport` pool keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindOptions {
    /// listen(2) backlog.
    pub backlog: u32,
    /// Set SO_REUSEPORT, so several processes can share the port.
    pub reuseport: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions { backlog: 1024, reuseport: false }
    }
}

/// Binds `addr` (e.g. `0.0.0.0:11211`, `127.0.0.1:0`) with SO_REUSEADDR.
pub async fn bind(addr: &str) -> Result<TcpListener, NetError> {
    bind_with(addr, BindOptions::default()).await
}

/// Sets SO_KEEPALIVE on an accepted socket (twemproxy's `tcpkeepalive`).
pub fn set_keepalive(stream: &tokio::net::TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_keepalive(true)
}

/// [`bind`] with a backlog and SO_REUSEPORT choice.
pub async fn bind_with(addr: &str, opts: BindOptions) -> Result<TcpListener, NetError> {
    let err = |source| NetError::Bind { addr: addr.to_string(), source };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr).await.map_err(err)?.collect();
    let mut last = None;
    for a in addrs {
        let sock = if a.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
        let attempt = sock.and_then(|s| {
            s.set_reuseaddr(true)?;
            if opts.reuseport {
                s.set_reuseport(true)?;
            }
            s.bind(a)?;
            s.listen(opts.backlog)
        });
        match attempt {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuseport_lets_two_listeners_share_a_port() {
        let opts = BindOptions { backlog: 16, reuseport: true };
        let a = bind_with("127.0.0.1:0", opts).await.expect("first");
        let port = a.local_addr().expect("addr").port();
        let b = bind_with(&format!("127.0.0.1:{port}"), opts).await;
        assert!(b.is_ok(), "second bind with SO_REUSEPORT failed: {b:?}");
        let c = bind(&format!("127.0.0.1:{port}")).await;
        assert!(c.is_err(), "a bind without SO_REUSEPORT must not share the port");
    }

    #[tokio::test]
    async fn keepalive_is_set_on_a_stream() {
        let l = bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = l.accept().await.expect("accept");
        assert!(!socket2::SockRef::from(&server).keepalive().expect("get"));
        set_keepalive(&server).expect("set");
        assert!(socket2::SockRef::from(&server).keepalive().expect("get"));
        drop(client);
    }
}
