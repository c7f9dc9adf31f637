//! Listening sockets the accept loops serve: TCP, or a unix socket file.
//!
//! The accept loops are generic over [`Accept`], so each kind of listener
//! gets its own monomorphic connection handler: a TCP connection is read and
//! written as a plain `TcpStream`, with no dispatch per read. [`Listener`] is
//! the value a role is handed when the kind is only known at run time (a
//! pool's `listen:` line); the role matches on it once, at start.

use crate::{NetError, ServeConfig};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};

/// A listener [`serve`](crate::serve) and [`serve_pinned`](crate::serve_pinned)
/// can accept connections from.
pub trait Accept: Send + Sync + 'static {
    /// An accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// An accepted connection detached from the accepting runtime, on its way
    /// to a worker thread's runtime (or parked while idle).
    type Detached: Send + std::os::fd::AsRawFd + 'static;

    /// Waits for the next connection.
    fn accept_stream(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Applies the per-connection socket options of `cfg` that exist for this
    /// kind of socket.
    fn tune(stream: &Self::Stream, cfg: &ServeConfig);

    /// Leaves the current runtime's reactor.
    fn detach(stream: Self::Stream) -> io::Result<Self::Detached>;

    /// Registers a detached connection with the current runtime.
    fn attach(detached: Self::Detached) -> io::Result<Self::Stream>;
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    type Detached = std::net::TcpStream;

    async fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(s, _)| s)
    }

    fn tune(stream: &TcpStream, cfg: &ServeConfig) {
        // Best effort: a socket that refuses an option still works.
        if cfg.nodelay {
            let _ = stream.set_nodelay(true);
        }
        if cfg.keepalive {
            let _ = crate::set_keepalive(stream);
        }
    }

    fn detach(stream: TcpStream) -> io::Result<std::net::TcpStream> {
        stream.into_std()
    }

    fn attach(detached: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_std(detached)
    }
}

/// A listening unix socket that owns its socket file: the file is removed
/// when the listener is dropped (clean shutdown included), unless another
/// process has replaced it at that path since.
#[derive(Debug)]
pub struct UnixListener {
    inner: tokio::net::UnixListener,
    file: SocketFile,
}

impl UnixListener {
    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

impl std::os::fd::AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.as_raw_fd()
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    type Detached = std::os::unix::net::UnixStream;

    async fn accept_stream(&self) -> io::Result<UnixStream> {
        self.inner.accept().await.map(|(s, _)| s)
    }

    /// TCP_NODELAY and SO_KEEPALIVE mean nothing on a unix socket.
    fn tune(_stream: &UnixStream, _cfg: &ServeConfig) {}

    fn detach(stream: UnixStream) -> io::Result<std::os::unix::net::UnixStream> {
        stream.into_std()
    }

    fn attach(detached: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_std(detached)
    }
}

/// The socket file a [`UnixListener`] created, identified by device and
/// inode so that dropping it never removes a file someone else bound since.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else { return };
        if meta.file_type().is_socket() && self.id == Some((meta.dev(), meta.ino())) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds a unix socket at `path`, as twemproxy binds a pool's
/// `listen: /path [perm]`: a stale socket file at the path is removed first,
/// the socket is bound, chmod-ed to `perm` when given (before `listen`, so
/// no client can connect while the mode is still the umask's), and listens
/// with `backlog`. Anything but a socket at `path` (a regular file, a
/// directory) is left alone and the bind fails.
pub async fn bind_unix(path: &Path, perm: Option<u32>, backlog: u32) -> Result<UnixListener, NetError> {
    let err = |source| NetError::Bind { addr: path.display().to_string(), source };
    remove_stale(path).map_err(err)?;
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(err)?;
    sock.bind(&socket2::SockAddr::unix(path).map_err(err)?).map_err(err)?;
    let meta = std::fs::symlink_metadata(path).map_err(err)?;
    // From here on the file is ours: any failure below removes it again.
    let file = SocketFile { path: path.to_path_buf(), id: Some((meta.dev(), meta.ino())) };
    if let Some(mode) = perm {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    sock.listen(i32::try_from(backlog).unwrap_or(i32::MAX)).map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    let inner = tokio::net::UnixListener::from_std(sock.into()).map_err(err)?;
    Ok(UnixListener { inner, file })
}

/// Removes a socket file left at `path` (by a process that did not clean up,
/// or one this bind takes the path over from, as twemproxy does).
fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A listener of either kind, for roles whose listen address comes from
/// configuration.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A unix socket listener.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

impl Listener {
    /// Where the listener accepts connections.
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Listener::Unix(l) => Ok(ListenAddr::Unix(l.path().to_path_buf())),
        }
    }
}

/// A listener's address: what the `listening on ADDR` line prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `host:port`.
    Tcp(std::net::SocketAddr),
    /// The socket file's path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("memshard-net-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[tokio::test]
    async fn unix_listener_sets_mode_replaces_stale_socket_and_cleans_up() {
        let dir = scratch("unix");
        let path = dir.join("s.sock");
        // A stale socket file from a process that is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
        assert!(path.exists());
        let l = bind_unix(&path, Some(0o600), 16).await.expect("bind over a stale socket");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let client = UnixStream::connect(&path).await.expect("connect");
        let accepted = l.accept_stream().await.expect("accept");
        drop((client, accepted));
        drop(l);
        assert!(!path.exists(), "the socket file outlived its listener");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_regular_file_is_not_removed() {
        let dir = scratch("file");
        let path = dir.join("not-a-socket");
        std::fs::write(&path, b"data").expect("write");
        assert!(bind_unix(&path, None, 16).await.is_err());
        assert_eq!(std::fs::read(&path).expect("still there"), b"data");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_replaced_socket_file_is_left_to_its_new_owner() {
        let dir = scratch("replaced");
        let path = dir.join("s.sock");
        let first = bind_unix(&path, None, 16).await.expect("first");
        // Another process takes the path over (twemproxy-style unlink + bind).
        let second = bind_unix(&path, None, 16).await.expect("second");
        drop(first);
        assert!(path.exists(), "dropping the old listener removed the new one's file");
        drop(second);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
