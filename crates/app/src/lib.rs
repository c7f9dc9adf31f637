//! memshard-app: the web app in front of the cache tier.
//!
//! `GET /memcache?lookup=KEY` answers from the cache; on a miss it stores a
//! random value for KEY with `add` (so two racing misses agree on one value)
//! and says so. `/healthz` says the process is alive, `/readyz` that the cache
//! answers, `/metrics` renders Prometheus metrics. The cache is reached through
//! pooled, pipelined `memshard-client` connections, normally to the memshard
//! proxy; every cache call is bounded in time, so a dead cache gives a 503
//! with a JSON body, never a hang. Bad requests get a 4xx with a JSON body.
//!
//! It is a demonstration service, not a general HTTP gateway to memcached: it
//! only reads and adds, and values are random strings.

mod accept;
mod cache;
mod config;
mod error;
mod http_errors;
mod key;
mod metrics;
mod routes;

pub use cache::{Cache, Lookup};
pub use config::AppConfig;
pub use error::AppError;
pub use key::{MAX_KEY_LEN, lookup_key};
pub use metrics::Metrics;

use axum::Router;
use axum::routing::get;
use memshard_net::Shutdown;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The cache client.
    pub cache: Cache,
    /// The metrics registry.
    pub metrics: Metrics,
}

impl AppState {
    /// State for `config`; does not connect yet.
    pub fn new(config: &AppConfig) -> Arc<AppState> {
        Arc::new(AppState { cache: Cache::new(config), metrics: Metrics::default() })
    }
}

/// The app's routes, with metrics recorded for every request.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/memcache", get(routes::memcache))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .with_state(state)
}

/// Why the app stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Serving HTTP failed.
    #[error("http server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the app on `listener` until `shutdown`; then stops accepting and
/// lets requests in flight finish for up to `config.drain_timeout`.
pub async fn run(listener: TcpListener, config: AppConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let addr = listener.local_addr()?;
    let state = AppState::new(&config);
    tracing::info!(role = "app", cache = %config.cache, "listening on {addr}");
    let mut stop = shutdown.clone();
    // hyper's own refusals (414, 431, 400) get the app's JSON error body too.
    let listener = http_errors::JsonErrorListener(listener);
    let serve = axum::serve(listener, router(state)).with_graceful_shutdown(async move { stop.wait().await });
    let mut drain = shutdown;
    let deadline = async move {
        drain.wait().await;
        tokio::time::sleep(config.drain_timeout).await;
    };
    tokio::select! {
        result = serve => result?,
        () = deadline => tracing::warn!(role = "app", "drain timed out; closing open connections"),
    }
    tracing::info!(role = "app", "stopped");
    Ok(())
}
