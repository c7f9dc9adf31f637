//! The app's settings.

use std::time::Duration;

/// Settings of [`run`](crate::run). `memshard app` fills them from flags and
/// the `MEMSHARD_*` environment variables.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `host:port` of the cache (the proxy's Service in Kubernetes), resolved
    /// at every connect so a restarted proxy with a new IP is found.
    /// Default `127.0.0.1:11211`.
    pub cache: String,
    /// Pipelined connections to the cache. Default 4.
    pub connections: usize,
    /// Longest one cache operation may take; past it the connection is
    /// replaced. Default 500 ms, just above the proxy's 400 ms `timeout`, so a
    /// slow shard shows up as the proxy's `SERVER_ERROR` rather than a broken
    /// connection.
    pub cache_timeout: Duration,
    /// Longest a whole lookup (connect, get, add, get) may take before the app
    /// answers 503. Default 2 s.
    pub request_timeout: Duration,
    /// Longest a shutdown waits for requests in flight. Default 10 s, inside
    /// the Kubernetes manifests' grace period.
    pub drain_timeout: Duration,
    /// Length of the random value stored on a miss. Default 16.
    pub value_len: usize,
    /// Expiry of stored values in seconds, memcached's exptime (0 = never).
    /// Default 0.
    pub ttl: u32,
    /// TLS to the cache, and the name its certificate is checked against
    /// (`--cache-tls-ca`…). Default `None`: plaintext.
    pub cache_tls: Option<(std::sync::Arc<memshard_tls::ClientTls>, String)>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            cache: "127.0.0.1:11211".to_owned(),
            connections: 4,
            cache_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(10),
            value_len: 16,
            ttl: 0,
            cache_tls: None,
        }
    }
}
