//! Who is connected, for `stats conns` and the `cfd=` of `watch` lines: each
//! connection is known by its socket's file descriptor, as in memcached.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A stream that can say who it is.
pub(crate) trait Peer: AsRawFd {
    /// memcached's `addr` text: `tcp:IP:PORT`, `tcp6:[IP]:PORT`, `unix:PATH`.
    fn describe_peer(&self) -> String;
    /// The same for the local end (`listen_addr`).
    fn describe_local(&self) -> String;
}

fn tcp(addr: std::io::Result<std::net::SocketAddr>) -> String {
    match addr {
        Ok(std::net::SocketAddr::V4(a)) => format!("tcp:{a}"),
        Ok(std::net::SocketAddr::V6(a)) => format!("tcp6:{a}"),
        Err(_) => "tcp:unknown".into(),
    }
}

impl Peer for tokio::net::TcpStream {
    fn describe_peer(&self) -> String {
        tcp(self.peer_addr())
    }
    fn describe_local(&self) -> String {
        tcp(self.local_addr())
    }
}

impl Peer for tokio::net::UnixStream {
    fn describe_peer(&self) -> String {
        // memcached prints the listening path for both ends of a unix socket.
        self.describe_local()
    }
    fn describe_local(&self) -> String {
        let path = self.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.display().to_string()));
        format!("unix:{}", path.unwrap_or_default())
    }
}

impl<S: Peer> Peer for memshard_tls::ServerStream<S> {
    fn describe_peer(&self) -> String {
        self.get_ref().0.describe_peer()
    }
    fn describe_local(&self) -> String {
        self.get_ref().0.describe_local()
    }
}

/// One connection's entry.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    addr: String,
    listen: String,
    /// Unix seconds of its last command.
    pub(crate) last_cmd: AtomicU32,
    /// In `watch` mode.
    pub(crate) watching: AtomicBool,
}

/// Every open connection by descriptor, and the listener.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    conns: Mutex<BTreeMap<i32, Arc<ConnInfo>>>,
    listener: Mutex<Option<(i32, String)>>,
}

/// Removes its connection from the table when dropped.
pub(crate) struct Registered<'t> {
    table: &'t ConnTable,
    pub(crate) fd: i32,
    pub(crate) info: Arc<ConnInfo>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut conns = self.table.conns.lock();
        // Only our own entry: the descriptor may already belong to a newer
        // connection if the kernel reused it.
        if conns.get(&self.fd).is_some_and(|i| Arc::ptr_eq(i, &self.info)) {
            conns.remove(&self.fd);
        }
    }
}

impl ConnTable {
    pub(crate) fn set_listener(&self, fd: i32, addr: String) {
        *self.listener.lock() = Some((fd, addr));
    }

    /// The listener's address text (`tcp:IP:PORT`, `unix:PATH`).
    pub(crate) fn listener_text(&self) -> String {
        self.listener.lock().as_ref().map(|(_, a)| a.clone()).unwrap_or_default()
    }

    pub(crate) fn register<S: Peer>(&self, stream: &S, now: u32) -> Registered<'_> {
        let fd = stream.as_raw_fd();
        let info = Arc::new(ConnInfo {
            addr: stream.describe_peer(),
            listen: stream.describe_local(),
            last_cmd: AtomicU32::new(now),
            watching: AtomicBool::new(false),
        });
        self.conns.lock().insert(fd, info.clone());
        Registered { table: self, fd, info }
    }

    /// `stats conns` lines, by descriptor; `me` is the asking connection.
    pub(crate) fn report(&self, me: i32, now: u32, out: &mut Vec<u8>) {
        use std::io::Write;
        if let Some((fd, addr)) = &*self.listener.lock() {
            let _ = write!(out, "STAT {fd}:addr {addr}\r\nSTAT {fd}:state conn_listening\r\n");
            let _ = write!(out, "STAT {fd}:secs_since_last_cmd 0\r\n");
        }
        for (fd, c) in self.conns.lock().iter() {
            let state = if *fd == me {
                "conn_parse_cmd"
            } else if c.watching.load(Ordering::Relaxed) {
                "conn_watch"
            } else {
                "conn_waiting"
            };
            let idle = now.saturating_sub(c.last_cmd.load(Ordering::Relaxed));
            let _ = write!(out, "STAT {fd}:addr {}\r\nSTAT {fd}:listen_addr {}\r\n", c.addr, c.listen);
            let _ = write!(out, "STAT {fd}:state {state}\r\nSTAT {fd}:secs_since_last_cmd {idle}\r\n");
        }
    }
}
