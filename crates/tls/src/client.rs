//! The connecting side: trusted CA and optional client certificate, a
//! rustls client configuration swapped whole on reload.

use crate::loaded::{Files, Loaded};
use crate::{Fingerprint, MinVersion, TlsError, TlsStats, files, provider};
use rustls::pki_types::ServerName;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// The files and settings of a connecting side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CA the peer's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// Our own certificate chain, for peers that require one (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); `None` with a `cert`: it is in that file.
    pub key: Option<PathBuf>,
    /// The oldest protocol offered.
    pub min_version: MinVersion,
}

impl ClientTlsFiles {
    /// Every file the configuration is built from.
    pub fn paths(&self) -> Vec<PathBuf> {
        [Some(&self.ca), self.cert.as_ref(), self.key.as_ref()].into_iter().flatten().cloned().collect()
    }
}

impl Files for ClientTlsFiles {
    type Config = rustls::ClientConfig;

    fn paths(&self) -> Vec<PathBuf> {
        ClientTlsFiles::paths(self)
    }

    fn describe(&self) -> String {
        format!("CA {}", self.ca.display())
    }

    fn build(&self) -> Result<rustls::ClientConfig, TlsError> {
        let roots = files::roots(&self.ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(self.min_version.versions())
            .map_err(|source| TlsError::Rustls { what: "protocol versions".into(), source })?
            .with_root_certificates(roots);
        match (&self.cert, &self.key) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (None, Some(k)) => Err(TlsError::Setting(format!("a client key ({}) without a certificate", k.display()))),
            (Some(cert), key) => {
                let chain = files::certs(cert)?;
                let key = files::key(key.as_ref().unwrap_or(cert))?;
                builder.with_client_auth_cert(chain, key).map_err(|source| TlsError::Rustls {
                    what: format!("client certificate {} and its key", cert.display()),
                    source,
                })
            }
        }
    }
}

/// A connecting side's TLS: the configuration in use, reloadable.
#[derive(Debug)]
pub struct ClientTls {
    inner: Loaded<ClientTlsFiles>,
}

impl ClientTls {
    /// Loads the files; an error says which file and why.
    pub fn new(files: ClientTlsFiles, role: impl Into<String>) -> Result<ClientTls, TlsError> {
        Ok(ClientTls { inner: Loaded::new(files, role.into())? })
    }

    /// The files it is built from.
    pub fn files(&self) -> &ClientTlsFiles {
        &self.inner.files
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.inner.stats
    }

    /// Rebuilds the configuration from the files; on failure the one in use
    /// stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.inner.reload()
    }

    /// Whether the files' contents differ from what is in use.
    pub fn changed(&self) -> bool {
        self.inner.changed()
    }

    /// Runs the handshake over a connected stream, verifying the peer's
    /// certificate against `name` (a DNS name or an IP address). The caller
    /// bounds it in time.
    pub async fn connect<S>(&self, name: &str, stream: S) -> std::io::Result<crate::ClientStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let server_name = server_name(name)?;
        let connector = tokio_rustls::TlsConnector::from(self.inner.current());
        match connector.connect(server_name, stream).await {
            Ok(s) => {
                TlsStats::bump(&self.inner.stats.handshakes);
                Ok(s)
            }
            Err(e) => {
                TlsStats::bump(&self.inner.stats.handshake_errors);
                Err(e)
            }
        }
    }
}

/// The host of a `host:port` address (`[v6]:port` keeps its brackets,
/// which [`server_name`] accepts): the name a server's certificate is
/// checked against when none is given.
pub fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

/// `name` as what a certificate is checked against.
pub fn server_name(name: &str) -> std::io::Result<ServerName<'static>> {
    // An IPv6 literal may come bracketed, as in `[::1]:11211`.
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    ServerName::try_from(bare.to_string()).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("'{name}' is not a TLS server name: {e}"))
    })
}

impl crate::watch::Reload for ClientTls {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_address_is_a_server_name() {
        for (addr, host) in
            [("memcache-proxy:11211", "memcache-proxy"), ("127.0.0.1:22121", "127.0.0.1"), ("[::1]:22121", "[::1]")]
        {
            assert_eq!(host_of(addr), host);
            assert!(server_name(host_of(addr)).is_ok(), "{addr}");
        }
        assert!(server_name("not a name!").is_err());
    }
}
