//! The app's Prometheus metrics and the middleware that records them.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::time::Instant;

/// Labels of the per-request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: String,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// Counters and histograms, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    hits: Counter,
    misses: Counter,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s in 16 doublings: a cache hit through the proxy is
    // sub-millisecond, a timeout is seconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("memshard_app");
        let requests = Family::<RouteStatus, Counter>::default();
        let latency = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let hits = Counter::default();
        let misses = Counter::default();
        registry.register("http_requests", "HTTP requests by route and status code", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("cache_hits", "Lookups answered from the cache", hits.clone());
        registry.register("cache_misses", "Lookups that added a new value to the cache", misses.clone());
        Metrics { registry, requests, latency, hits, misses }
    }
}

impl Metrics {
    /// Counts one lookup outcome.
    pub fn lookup(&self, hit: bool) {
        if hit {
            self.hits.inc()
        } else {
            self.misses.inc()
        };
    }

    fn request(&self, route: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RouteStatus { route: route.to_owned(), status: status.to_string() }).inc();
        self.latency.get_or_create(&RouteLabel { route: route.to_owned() }).observe(seconds);
    }

    /// The OpenMetrics text exposition (Prometheus scrapes it as is).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: counts every request by its route template (not the raw path,
/// which would give one series per URL a scanner tries) and status, and
/// observes its latency.
pub(crate) async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    state.metrics.request(&route, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}
