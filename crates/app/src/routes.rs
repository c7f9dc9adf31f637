//! The HTTP endpoints.

use crate::AppState;
use crate::accept::wants_text;
use crate::error::AppError;
use crate::key::lookup_key;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// The JSON answer of `/memcache`.
#[derive(Serialize)]
struct LookupBody<'a> {
    key: &'a str,
    value: &'a str,
    hit: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

const MISS_MESSAGE: &str = "cache miss, added to cache";

/// `GET /memcache?lookup=KEY`.
pub(crate) async fn memcache(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match lookup(&state, query.as_deref(), &headers).await {
        Ok(r) | Err(r) => r,
    }
}

async fn lookup(state: &AppState, query: Option<&str>, headers: &HeaderMap) -> Result<Response, Response> {
    let key = lookup_key(query).map_err(IntoResponse::into_response)?;
    let found = state.cache.lookup(&key).await.map_err(IntoResponse::into_response)?;
    state.metrics.lookup(found.hit);
    if wants_text(headers) {
        let line = if found.hit {
            format!("{key} = {} (cache hit)\n", found.value)
        } else {
            format!("{key} = {} ({MISS_MESSAGE})\n", found.value)
        };
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response());
    }
    let message = (!found.hit).then_some(MISS_MESSAGE);
    Ok(Json(LookupBody { key: &key, value: &found.value, hit: found.hit, message }).into_response())
}

/// `GET /healthz`: the process is alive; never looks at the cache, so a cache
/// outage does not get every app pod restarted.
pub(crate) async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the cache answers.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.cache.ready().await {
        Ok(version) => Json(serde_json::json!({ "status": "ready", "cache": version })).into_response(),
        Err(e) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "unready", "error": e.to_string() })))
                .into_response()
        }
    }
}

/// `GET /metrics`: OpenMetrics text.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

/// Any other path.
pub(crate) async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(uri.path().to_owned())
}

/// A known path with another method than GET.
pub(crate) async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
