//! The listening side: a rustls server configuration from PEM files, swapped
//! whole on reload, and the handshake of each accepted connection.

use crate::loaded::{Files, Loaded};
use crate::log_limit::LogLimit;
use crate::{Fingerprint, MinVersion, TlsError, TlsStats, files, provider};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// How long a client has to complete its handshake before it is closed: a
/// stalled handshake holds a connection slot no longer than this.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether clients must present a certificate (memcached's
/// `ssl_verify_mode`: 0 none, 1 request, 2 require, 3 once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// One is asked for and verified if sent; a client without one is let in.
    Optional,
    /// A client without a certificate from the CA is refused.
    Required,
}

/// The files and settings of a listening side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM); `None`: it is in the `cert` file.
    pub key: Option<PathBuf>,
    /// The CA whose certificates clients present (PEM); needed unless
    /// `client_auth` is [`ClientAuth::None`].
    pub client_ca: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// The oldest protocol accepted.
    pub min_version: MinVersion,
}

impl ServerTlsFiles {
    /// Every file the configuration is built from.
    pub fn paths(&self) -> Vec<PathBuf> {
        [Some(&self.cert), self.key.as_ref(), self.client_ca.as_ref()].into_iter().flatten().cloned().collect()
    }
}

impl Files for ServerTlsFiles {
    type Config = rustls::ServerConfig;

    fn paths(&self) -> Vec<PathBuf> {
        ServerTlsFiles::paths(self)
    }

    fn build(&self) -> Result<rustls::ServerConfig, TlsError> {
        let rustls_err = |what: &str| {
            let what = what.to_string();
            move |source| TlsError::Rustls { what: what.clone(), source }
        };
        let chain = files::certs(&self.cert)?;
        let key = files::key(self.key.as_ref().unwrap_or(&self.cert))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.min_version.versions())
            .map_err(rustls_err("protocol versions"))?;
        let builder = match (self.client_auth, &self.client_ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsError::Setting("verifying client certificates needs a client CA file".into()));
            }
            (auth, Some(ca)) => {
                let roots = Arc::new(files::roots(ca)?);
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
                let v = if auth == ClientAuth::Optional { v.allow_unauthenticated() } else { v };
                let v = v.build().map_err(|e| TlsError::Setting(format!("{}: {e}", ca.display())))?;
                builder.with_client_cert_verifier(v)
            }
        };
        // rustls' defaults otherwise: no ALPN (memcached speaks none),
        // resumption by session id, no tickets.
        builder
            .with_single_cert(chain, key)
            .map_err(rustls_err(&format!("certificate {} and its key", self.cert.display())))
    }

    fn describe(&self) -> String {
        format!("from {}", self.cert.display())
    }
}

/// A listening side's TLS: the configuration in use, reloadable, with its
/// counters.
#[derive(Debug)]
pub struct ServerTls {
    inner: Loaded<ServerTlsFiles>,
    handshake_timeout: Duration,
    log: LogLimit,
}

impl ServerTls {
    /// Loads the files; an error says which file and why.
    pub fn new(files: ServerTlsFiles, role: impl Into<String>) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            inner: Loaded::new(files, role.into())?,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            log: LogLimit::default(),
        })
    }

    /// The same, with another handshake deadline.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ServerTls {
        self.handshake_timeout = timeout;
        self
    }

    /// The files it is built from.
    pub fn files(&self) -> &ServerTlsFiles {
        &self.inner.files
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.inner.stats
    }

    /// Rebuilds the configuration from the files. On success new
    /// connections use it (established ones keep theirs); on failure the
    /// one in use stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.inner.reload()
    }

    /// Whether the files' contents differ from what is in use.
    pub fn changed(&self) -> bool {
        self.inner.changed()
    }

    /// Runs the handshake of an accepted connection within the deadline.
    /// A failure (not TLS, a refused or missing client certificate, a
    /// stall) is counted, logged with `peer` and the reason, and the
    /// connection closed: `None`.
    pub async fn accept<S>(&self, stream: S, peer: impl FnOnce() -> String) -> Option<crate::ServerStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let why = match tokio::time::timeout(self.handshake_timeout, self.handshake(stream)).await {
            Ok(Ok(s)) => {
                TlsStats::bump(&self.inner.stats.handshakes);
                return Some(s);
            }
            Ok(Err(why)) => why,
            Err(_) => format!("no handshake within {} ms", self.handshake_timeout.as_millis()),
        };
        TlsStats::bump(&self.inner.stats.handshake_errors);
        if let Some(dropped) = self.log.allow() {
            let more = if dropped > 0 { format!(" ({dropped} more not logged)") } else { String::new() };
            tracing::warn!(role = %self.inner.role, "TLS handshake from {} failed: {why}{more}", peer());
        }
        None
    }

    /// The handshake. The first record's header is read here: a client
    /// that does not open with a TLS handshake record (a plaintext
    /// memcached command, garbage) is closed without a byte sent, as
    /// memcached's OpenSSL does, instead of getting a TLS alert it cannot
    /// read.
    async fn handshake<S>(&self, mut stream: S) -> Result<crate::ServerStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.map_err(|e| format!("closed before a handshake ({e})"))?;
        // A handshake record (22) of TLS 1.x (3.x) — 3.1 for most hellos.
        if head[0] != 22 || head[1] != 3 {
            let shown: String =
                head.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
            return Err(format!("not a TLS client: it opened with {shown:?}"));
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(self.inner.current());
        // The header goes to rustls first; the rest of the hello follows from the socket.
        acceptor
            .accept_with(stream, |conn| {
                let _ = conn.read_tls(&mut &head[..]);
            })
            .await
            .map_err(|e| e.to_string())
    }
}

impl crate::watch::Reload for ServerTls {
    fn paths(&self) -> Vec<PathBuf> {
        self.inner.paths()
    }
    fn loaded(&self) -> Fingerprint {
        self.inner.loaded()
    }
    fn reload(&self) -> Result<(), TlsError> {
        self.inner.reload()
    }
    fn failed(&self) -> &std::sync::Mutex<Option<Fingerprint>> {
        self.inner.failed()
    }
}
