//! memshard-bench: a load generator for memcached-compatible servers
//! (memcached itself, the memshard server, the memshard proxy), closed loop
//! or open loop, with HDR latency percentiles.
//!
//! [`run`] opens `connections` TCP connections, optionally sets every key once
//! (prefill, so gets hit), then loads the server for `warmup` (not recorded)
//! plus `duration` (recorded), or until `requests` measured requests:
//!
//! * **Closed loop** (default): each connection writes a batch of `pipeline`
//!   requests and reads every reply before the next batch. Offered load adapts
//!   to the server, so this measures capacity (ops/s); latency runs from the
//!   batch's write.
//! * **Open loop** (`rate`): requests are scheduled at `rate` per second in
//!   total (evenly spaced or Poisson), handed to the connections in turn by a
//!   pacing thread, and written at their scheduled time when the connection
//!   has fewer than `pipeline` in flight. Latency runs from the *scheduled*
//!   time, so a stalled server shows in the percentiles with every request
//!   that waited, instead of merely slowing the generator (coordinated
//!   omission). The report adds the send lag, how late requests were written.
//!
//! Requests follow a [`Mix`] of text `get`/`set` and meta `mg`/`ms` (gets
//! optionally multi-key), over `key_space` keys picked uniformly or by a
//! [`Zipf`] law, with [`ValueSize`]s fixed, uniform in a range, or a weighted
//! choice. Latencies go into per-connection HDR histograms (p50 to p99.99 and
//! max), answers are counted as hits, misses and errors by kind, and all of it
//! is merged into a [`BenchReport`] (JSON via [`BenchReport::to_json`], a short
//! table via `Display`). A [`ProgressFn`] gets ops/s and p99 once per second.
//!
//! The generator is built to be cheap, since it usually shares a small machine
//! with the server it measures: raw sockets, one task per connection, buffers
//! reused for the whole run, keys written straight into the write buffer,
//! `SmallRng`, no allocation per request, and a dedicated runtime of
//! [`BenchConfig::threads`] threads (one by default) so its CPU use is bounded
//! and known.
//!
//! It is not a correctness checker (replies are classified, not compared with
//! what was stored) and it speaks only the text and meta protocols over TCP.
//! The `memshard bench` CLI subcommand is a thin wrapper around this crate.

mod closed_loop;
mod config;
mod connection;
mod error;
mod keys;
mod mix;
mod open_loop;
mod pacer;
mod progress;
mod report;
mod runner;
mod stats;
mod values;
mod workload;

pub use config::{Arrivals, BenchConfig, BenchTls, MAX_MULTIGET};
pub use error::BenchError;
pub use keys::{DEFAULT_ZIPF_EXPONENT, KeyDist, Zipf};
pub use mix::{Mix, Op};
pub use progress::{PROGRESS_INTERVAL, Phase, Progress, ProgressFn};
pub use report::BenchReport;
pub use runner::{run, run_blocking};
pub use stats::ErrorCounts;
pub use values::ValueSize;
