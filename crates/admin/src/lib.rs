//! memshard-admin: the admin HTTP surface a proxy or a server shows its
//! operators on `--admin ADDR`.
//!
//! `GET /metrics` (Prometheus), `/healthz`, `/readyz`, `/ring?key=K`,
//! `/config`, `/hotkeys`, `/summary.json` and the live dashboard at `/`,
//! served from the binary (no CDN: clusters are often offline). The role
//! answers through a [`Source`]; this crate owns the HTTP side and its
//! limits: one `GET` per connection, a bounded request head read within a
//! deadline, a bounded number of connections, a JSON body on every error.
//! It runs on the role's control runtime, never on a data-path worker, and
//! reads only what the data path already counts.
//!
//! It is not a general HTTP server: no bodies, no keep-alive, no TLS.

mod exposition;
mod http;
mod routes;

pub use exposition::Exposition;
pub use http::{Limits, run};
pub use routes::MAX_KEY_LEN;

use serde_json::Value;

/// What a role shows on its admin port. Every method is called on the
/// admin task, once per request, and must not block for long.
pub trait Source: Send + Sync + 'static {
    /// `proxy` or `server`: shown on the dashboard.
    fn role(&self) -> &'static str;
    /// The Prometheus text exposition (see [`Exposition`]).
    fn metrics(&self) -> String;
    /// `Ok` when the role serves: the proxy is listening with a loaded
    /// config, the server is accepting. `Err` says why not (503).
    fn ready(&self) -> Result<(), String>;
    /// Where `key` lives (the proxy); `None` when the role has no ring (404).
    fn ring(&self, key: &str) -> Option<Value>;
    /// The running configuration, its sha256 and generation.
    fn config(&self) -> Value;
    /// The most requested keys, when the role tracks them (404 otherwise).
    fn hotkeys(&self) -> Option<Value>;
    /// The counters the dashboard draws: see `dashboard.html` for the shape.
    fn summary(&self) -> Value;
}
