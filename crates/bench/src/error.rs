//! Why a benchmark could not run.

/// A benchmark that could not produce a report. Failures *during* the run
/// (error replies, a dropped connection) are counted in the report instead.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The configuration is unusable (zero connections, ratio outside 0..=1, …).
    #[error("invalid bench config: {0}")]
    Config(String),
    /// Not a single connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The target address.
        addr: String,
        /// The last connect error.
        source: std::io::Error,
    },
    /// The dedicated runtime or its thread could not be started.
    #[error("cannot start the bench runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// Latency histograms could not be created or merged.
    #[error("latency histogram: {0}")]
    Histogram(String),
    /// The bench thread or a connection task panicked.
    #[error("bench aborted: {0}")]
    Aborted(String),
}
