//! Every way a request can fail, and the HTTP answer each one gets.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use memshard_client::ClientError;
use serde::Serialize;

/// A failed request. Client mistakes are 4xx, cache trouble is 503; every
/// answer has a JSON body `{"error": "...", "detail": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The `lookup` parameter is missing or cannot be a memcached key.
    #[error("{0}")]
    BadKey(String),
    /// No route for this path.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The cache could not be reached or answered with an error.
    #[error("cache unavailable: {0}")]
    Cache(#[from] ClientError),
    /// The cache did not answer within the request's time budget.
    #[error("cache did not answer within {0} ms")]
    Timeout(u128),
    /// The value added a moment ago was gone when read back (evicted or
    /// flushed in between); the caller may retry.
    #[error("cache lost the value while it was being added; retry")]
    Vanished,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: String,
}

impl AppError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadKey(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Cache(_) | AppError::Timeout(_) | AppError::Vanished => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short machine-readable name of the error kind.
    fn kind(&self) -> &'static str {
        match self {
            AppError::BadKey(_) => "bad key",
            AppError::NotFound(_) => "not found",
            AppError::MethodNotAllowed => "method not allowed",
            AppError::Cache(_) | AppError::Timeout(_) | AppError::Vanished => "cache unavailable",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!("{self}");
        }
        let body = ErrorBody { error: self.kind(), detail: self.to_string() };
        (self.status(), Json(body)).into_response()
    }
}
