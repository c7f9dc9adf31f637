//! What a TLS side counts: handshakes done and failed, reloads and when the
//! certificates in use were loaded (memcached's `ssl_handshake_errors` and
//! `time_since_server_cert_refresh`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one [`ServerTls`](crate::ServerTls) or
/// [`ClientTls`](crate::ClientTls), shared with whoever reports them.
#[derive(Debug, Default)]
pub struct TlsStats {
    /// Handshakes that completed.
    pub handshakes: AtomicU64,
    /// Handshakes that failed (bad or no certificate, not TLS, timed out).
    pub handshake_errors: AtomicU64,
    /// Reloads that installed new certificates.
    pub reloads: AtomicU64,
    /// Reloads refused (the old certificates stay in use).
    pub reload_errors: AtomicU64,
    /// Unix seconds when the certificates in use were loaded.
    pub loaded_at: AtomicU64,
}

impl TlsStats {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stamp(&self) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.loaded_at.store(now, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
