//! memshard-tls: TLS for every hop of the tier — app → proxy → shards — on
//! rustls (the `ring` provider; no OpenSSL).
//!
//! * [`ServerTls`]: the listening side (`memshard server -Z`, a proxy pool's
//!   `tls_cert_file`): a rustls server configuration built from PEM files,
//!   optionally requiring client certificates from a CA (mutual TLS), that
//!   can be rebuilt from the files while serving ([`ServerTls::reload`]):
//!   new connections get the new certificate, established ones go on.
//!   [`ServerTls::accept`] runs one handshake within a deadline, and counts
//!   and logs (rate-limited) the ones that fail.
//! * [`ClientTls`]: the connecting side (the proxy towards TLS shards, the
//!   app towards a TLS proxy): trusted CA, optional client certificate,
//!   reloadable the same way.
//! * `loaded`: what both share — the configuration in use, swapped whole
//!   on reload, and the fingerprint of the files it came from.
//! * [`watch`]: polls the files behind any of them and reloads on change —
//!   Kubernetes updates a mounted Secret by swapping a symlink, which a
//!   poll of the files' contents sees and inotify on the file often does not.
//! * [`pki`]: a throw-away CA and certificates for `memshard up --tls` and
//!   the tests.
//!
//! ```text
//!   PEM files ──build──► Arc<rustls config> ──ArcSwap──► accept / connect (each new connection loads it once)
//!        ▲                                    ▲
//!        └── watch (poll contents) ───────────┴── reload (SIGHUP, refresh_certs, file change)
//! ```

mod client;
mod files;
mod loaded;
mod log_limit;
pub mod pki;
mod server;
mod stats;
pub mod watch;

pub use client::{ClientTls, ClientTlsFiles, host_of, server_name};
pub use files::Fingerprint;
pub use server::{ClientAuth, DEFAULT_HANDSHAKE_TIMEOUT, ServerTls, ServerTlsFiles};
pub use stats::TlsStats;
pub use tokio_rustls::client::TlsStream as ClientStream;
pub use tokio_rustls::server::TlsStream as ServerStream;

use std::path::PathBuf;

/// The oldest protocol version a side accepts. rustls speaks TLS 1.2 and
/// 1.3 only; memcached's `ssl_min_version` 0 and 1 (TLS 1.0 and 1.1) map
/// to 1.2, which is what memcached's own default is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl MinVersion {
    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static BOTH: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
        static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            MinVersion::Tls12 => &BOTH,
            MinVersion::Tls13 => &ONLY_13,
        }
    }

    /// The name memcached's `stats settings` uses (`tlsv1.2`, `tlsv1.3`).
    pub fn name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

/// Why a TLS configuration could not be built: always names the file and
/// the reason, so an operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind needed, or a bad one.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match the
    /// certificate, a CA file with no usable certificate…).
    #[error("{what}: {source}")]
    Rustls {
        /// Which part was being set up.
        what: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// A setting that cannot work (a client CA without verification…).
    #[error("{0}")]
    Setting(String),
}

/// The crypto provider every configuration uses: ring's, with X25519 as
/// the first key exchange. rustls marks ring's provider deprecated since
/// 0.23.48 because it has no post-quantum key exchange; aws-lc-rs has, at
/// the price of a large C build in every build of the tier. The tier's TLS
/// protects traffic inside a cluster, with certificates that rotate often;
/// X25519 and P-256 are what memcached's OpenSSL builds offer too.
///
/// The order matters for the cost of a connection: ring's default puts
/// P-384 first, whose key exchange is about ten times X25519's, and a
/// handshake then costs a shard or the proxy 12 M instructions, 90 % of them
/// P-384 (`docs/BENCHMARKS.md`, "TLS: what it costs").
#[allow(deprecated)]
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    std::sync::Arc::new(p)
}
