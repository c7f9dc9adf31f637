//! Opening a [`Client`]: over TCP, TLS over TCP or a unix socket, or
//! around a stream already connected.

use crate::connection::{Client, ClientConfig};
use crate::error::{ClientError, Result};
use crate::peer::Peer;
use std::path::{Path, PathBuf};
use tokio::net::{TcpStream, ToSocketAddrs, UnixStream};

impl Client {
    /// Connects with [`ClientConfig::default`].
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client> {
        Self::connect_with(addr, ClientConfig::default()).await
    }

    /// Connects (bounded by `config.connect_timeout`), sets `TCP_NODELAY` and
    /// starts the connection's reader and writer tasks on the current runtime.
    pub async fn connect_with(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout)??;
        Self::from_stream(stream, config)
    }

    /// Wraps an already connected stream (sets `TCP_NODELAY`). Must be called
    /// within a tokio runtime, which runs the connection's tasks.
    pub fn from_stream(stream: TcpStream, config: ClientConfig) -> Result<Client> {
        stream.set_nodelay(true)?;
        let peer = Peer::Tcp(stream.peer_addr()?);
        let (rd, wr) = stream.into_split();
        Ok(Self::start(rd, wr, peer, config))
    }

    /// Connects over TLS: TCP (bounded by `config.connect_timeout`), then the
    /// handshake with `tls`, checking the server's certificate against
    /// `name` (bounded by the same timeout).
    pub async fn connect_tls_with(
        addr: impl ToSocketAddrs,
        tls: &memshard_tls::ClientTls,
        name: &str,
        config: ClientConfig,
    ) -> Result<Client> {
        let limit = config.connect_timeout;
        let stream =
            tokio::time::timeout(limit, TcpStream::connect(addr)).await.map_err(|_| ClientError::Timeout)??;
        stream.set_nodelay(true)?;
        let peer = Peer::Tcp(stream.peer_addr()?);
        let stream =
            tokio::time::timeout(limit, tls.connect(name, stream)).await.map_err(|_| ClientError::Timeout)??;
        Ok(Self::from_tls(stream, peer, config))
    }

    /// Wraps a TLS stream whose handshake is done. Must be called within a
    /// tokio runtime, which runs the connection's tasks.
    pub fn from_tls<S>(stream: memshard_tls::ClientStream<S>, peer: Peer, config: ClientConfig) -> Client
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // One TLS session serves both directions: its halves share it.
        let (rd, wr) = tokio::io::split(stream);
        Self::start(rd, wr, peer, config)
    }

    /// Connects to a unix socket with [`ClientConfig::default`].
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Client> {
        Self::connect_unix_with(path, ClientConfig::default()).await
    }

    /// Connects to the unix socket at `path` (bounded by
    /// `config.connect_timeout`) and starts the connection's tasks on the
    /// current runtime.
    pub async fn connect_unix_with(path: impl AsRef<Path>, config: ClientConfig) -> Result<Client> {
        let path = path.as_ref();
        let stream = tokio::time::timeout(config.connect_timeout, UnixStream::connect(path))
            .await
            .map_err(|_| ClientError::Timeout)??;
        Ok(Self::start_unix(stream, path.to_path_buf(), config))
    }

    /// Wraps an already connected unix stream. Must be called within a tokio
    /// runtime, which runs the connection's tasks.
    pub fn from_unix_stream(stream: UnixStream, config: ClientConfig) -> Result<Client> {
        // An unnamed peer (a socketpair) has no path; it is still a valid peer.
        let path = stream.peer_addr()?.as_pathname().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self::start_unix(stream, path, config))
    }

    fn start_unix(stream: UnixStream, path: PathBuf, config: ClientConfig) -> Client {
        let (rd, wr) = stream.into_split();
        Self::start(rd, wr, Peer::Unix(path), config)
    }
}
