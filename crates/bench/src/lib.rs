//! memshard-bench: a closed-loop load generator for memcached-compatible
//! servers (memcached itself, the memshard server, the memshard proxy).
//!
//! [`run`] opens `connections` TCP connections, optionally sets every key once
//! (prefill, so gets hit), then has each connection write batches of
//! `pipeline` random `get`/`set` requests and read all their replies before the
//! next batch, for `warmup` (not recorded) plus `duration` (recorded). Each
//! request's latency, from the write of its batch to the arrival of its reply,
//! goes into a per-connection HDR histogram; counters and histograms are merged
//! into a [`BenchReport`] (JSON via [`BenchReport::to_json`], a short table via
//! `Display`).
//!
//! The generator is built to be cheap, since it usually shares a small machine
//! with the server it measures: raw sockets, one task per connection, buffers
//! reused for the whole run, keys formatted once, `SmallRng`, no allocation per
//! request, and a dedicated runtime of [`BenchConfig::threads`] threads (one by
//! default) so its CPU use is bounded and known.
//!
//! It is not an open-loop (fixed-rate) generator, so under overload it reports
//! the server's capacity, not the latency clients at a fixed rate would see
//! (coordinated omission). It speaks only `get` and `set` of the text protocol.
//! The `memshard bench` CLI subcommand is a thin wrapper around this crate.

mod config;
mod connection;
mod error;
mod report;
mod runner;
mod workload;

pub use config::BenchConfig;
pub use error::BenchError;
pub use report::BenchReport;
pub use runner::{PROGRESS_INTERVAL, Phase, Progress, ProgressFn, run, run_blocking};
