//! The result of a run: [`BenchReport`], as JSON or as a short table.

use crate::config::BenchConfig;
use crate::error::BenchError;
use crate::stats::{ConnStats, ErrorCounts};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What a run measured. Counters cover the measured window only (requests
/// written, or in the open loop scheduled, after the warmup); `errors` also
/// counts connection failures at any time, so a run with `errors == 0` had no
/// failure at all. Latencies are in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `"closed"` or `"open"`.
    pub mode: &'static str,
    /// Open loop: the requests per second asked for.
    pub target_rate: Option<f64>,
    /// Requests answered without error in the window (`gets + sets`).
    pub ops: u64,
    /// `ops / duration_secs`.
    pub ops_per_sec: f64,
    /// Answered reads (`get` and `mg`; a multi-get is one).
    pub gets: u64,
    /// Answered writes (`set` and `ms`).
    pub sets: u64,
    /// Keys the reads found.
    pub hits: u64,
    /// Keys the reads did not find.
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 without reads.
    pub hit_ratio: f64,
    /// Every failure (`error_kinds` summed).
    pub errors: u64,
    /// Failures by kind.
    pub error_kinds: ErrorCounts,
    /// Connections that were established.
    pub connections: usize,
    /// Connections that failed during the run (`disconnected + protocol`).
    pub connections_lost: u64,
    /// Keys set by the prefill.
    pub prefilled: u64,
    /// Prefill sets that were not stored, and connections lost during the
    /// prefill (not in `errors` unless the connection was lost).
    pub prefill_errors: u64,
    /// What latency is measured from: `"write"` (closed loop: the write of
    /// the request's batch) or `"schedule"` (open loop: the request's
    /// scheduled send time).
    pub latency_from: &'static str,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile latency.
    pub p90_us: f64,
    /// 99th percentile latency.
    pub p99_us: f64,
    /// 99.9th percentile latency.
    pub p999_us: f64,
    /// 99.99th percentile latency.
    pub p9999_us: f64,
    /// Largest latency.
    pub max_us: f64,
    /// Mean latency.
    pub mean_us: f64,
    /// Open loop: median delay from scheduled time to write (a free pipeline
    /// slot, a busy generator).
    pub send_lag_p50_us: Option<f64>,
    /// Open loop: 99th percentile of that delay.
    pub send_lag_p99_us: Option<f64>,
    /// Open loop: largest delay.
    pub send_lag_max_us: Option<f64>,
    /// Length of the measured window, seconds: from the end of the warmup to
    /// the last measured answer (not before the nominal end of a
    /// duration-bounded run).
    pub duration_secs: f64,
    /// The configuration that produced this report.
    pub config: BenchConfig,
}

/// Per-run totals the runner gathers besides the connections' counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunTotals {
    pub(crate) connections: usize,
    /// Failures outside the measuring tasks (connect, prefill).
    pub(crate) errors: ErrorCounts,
    pub(crate) prefilled: u64,
    pub(crate) prefill_errors: u64,
    pub(crate) measured: Duration,
}

/// Percentiles of a histogram in microseconds; zeros when it is empty.
struct Quantiles<'a>(&'a Histogram<u64>);

impl Quantiles<'_> {
    fn at(&self, q: f64) -> f64 {
        if self.0.is_empty() { 0.0 } else { self.0.value_at_quantile(q) as f64 / 1_000.0 }
    }
    fn max(&self) -> f64 {
        if self.0.is_empty() { 0.0 } else { self.0.max() as f64 / 1_000.0 }
    }
}

impl BenchReport {
    /// Merges per-connection counters and histograms into the report.
    pub(crate) fn build(config: BenchConfig, conns: Vec<ConnStats>, totals: RunTotals) -> Result<Self, BenchError> {
        let hist_err = |e: hdrhistogram::AdditionError| BenchError::Histogram(e.to_string());
        let mut merged = ConnStats::new()?;
        let mut errors = totals.errors;
        for c in &conns {
            merged.gets += c.gets;
            merged.sets += c.sets;
            merged.hits += c.hits;
            merged.misses += c.misses;
            errors.add(&c.errors);
            merged.latency.add(&c.latency).map_err(hist_err)?;
            merged.send_lag.add(&c.send_lag).map_err(hist_err)?;
        }
        let ops = merged.gets + merged.sets;
        let secs = totals.measured.as_secs_f64();
        let (lat, lag) = (Quantiles(&merged.latency), Quantiles(&merged.send_lag));
        let open = config.is_open_loop();
        let lag_at = |q: Option<f64>| if open { Some(q.map_or_else(|| lag.max(), |q| lag.at(q))) } else { None };
        let keys = merged.hits + merged.misses;
        Ok(BenchReport {
            mode: if open { "open" } else { "closed" },
            target_rate: config.rate,
            ops,
            ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            gets: merged.gets,
            sets: merged.sets,
            hits: merged.hits,
            misses: merged.misses,
            hit_ratio: if keys == 0 { 0.0 } else { merged.hits as f64 / keys as f64 },
            errors: errors.total(),
            error_kinds: errors,
            connections: totals.connections,
            connections_lost: errors.disconnected + errors.protocol,
            prefilled: totals.prefilled,
            prefill_errors: totals.prefill_errors,
            latency_from: if open { "schedule" } else { "write" },
            p50_us: lat.at(0.50),
            p90_us: lat.at(0.90),
            p99_us: lat.at(0.99),
            p999_us: lat.at(0.999),
            p9999_us: lat.at(0.9999),
            max_us: lat.max(),
            mean_us: if merged.latency.is_empty() { 0.0 } else { merged.latency.mean() / 1_000.0 },
            send_lag_p50_us: lag_at(Some(0.5)),
            send_lag_p99_us: lag_at(Some(0.99)),
            send_lag_max_us: lag_at(None),
            duration_secs: secs,
            config,
        })
    }

    /// The report as pretty-printed JSON (config durations in seconds).
    pub fn to_json(&self) -> String {
        // Plain structs of numbers and strings: serialization cannot fail, but
        // say so in the output rather than panic if it ever does.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let mode = match c.rate {
            Some(r) => format!("open loop at {r:.0} req/s ({} arrivals)", c.arrivals),
            None => "closed loop".to_owned(),
        };
        writeln!(
            f,
            "memshard bench {}: {mode}, {} conns x pipeline {}, {} thread(s), {:.2} s measured after {:.1} s warmup",
            c.addr,
            self.connections,
            c.pipeline,
            c.threads,
            self.duration_secs,
            c.warmup.as_secs_f64()
        )?;
        let multiget = if c.multiget > 1 { format!(", {} keys per get", c.multiget) } else { String::new() };
        writeln!(
            f,
            "  workload    {}, {} keys {}, values {} bytes{multiget}",
            c.mix, c.key_space, c.key_dist, c.value_size
        )?;
        writeln!(
            f,
            "  throughput  {:.0} ops/s  ({} ops: {} gets, {:.2}% hits; {} sets)",
            self.ops_per_sec,
            self.ops,
            self.gets,
            self.hit_ratio * 100.0,
            self.sets
        )?;
        writeln!(
            f,
            "  latency us  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}  mean {:.1}  (from {})",
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.p9999_us,
            self.max_us,
            self.mean_us,
            self.latency_from
        )?;
        if let (Some(p50), Some(p99), Some(max)) = (self.send_lag_p50_us, self.send_lag_p99_us, self.send_lag_max_us) {
            writeln!(f, "  send lag us p50 {p50:.1}  p99 {p99:.1}  max {max:.1}")?;
        }
        let kinds: Vec<String> = self.error_kinds.nonzero().iter().map(|(k, n)| format!("{k} {n}")).collect();
        let kinds = if kinds.is_empty() { String::new() } else { format!(": {}", kinds.join(", ")) };
        write!(
            f,
            "  errors      {}{kinds}  (prefill: {} keys, {} errors)",
            self.errors, self.prefilled, self.prefill_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::Op;
    use crate::stats::{Answer, ReplyFault};
    use tokio::time::Instant;

    #[test]
    fn merges_and_orders_percentiles() {
        let (mut a, mut b) = (ConnStats::new().unwrap(), ConnStats::new().unwrap());
        let now = Instant::now();
        for us in [10, 20, 30] {
            a.count(Op::Get, Answer::Read { hits: 1, misses: 0 }, Duration::from_micros(us), None, now);
        }
        a.count(Op::Get, Answer::Read { hits: 0, misses: 1 }, Duration::from_micros(40), None, now);
        b.count(Op::Set, Answer::Stored, Duration::from_millis(5), None, now);
        b.count(Op::Set, Answer::Failed(ReplyFault::ServerError), Duration::ZERO, None, now);
        let mut totals = RunTotals { connections: 2, measured: Duration::from_secs(2), ..RunTotals::default() };
        totals.errors.connect = 1;
        let r = BenchReport::build(BenchConfig::default(), vec![a, b], totals).unwrap();
        assert_eq!((r.ops, r.gets, r.sets, r.hits, r.misses), (5, 4, 1, 3, 1));
        assert_eq!((r.errors, r.error_kinds.server_error, r.error_kinds.connect), (2, 1, 1));
        assert!((r.ops_per_sec - 2.5).abs() < 1e-9 && (r.hit_ratio - 0.75).abs() < 1e-9);
        assert!(r.p50_us <= r.p99_us && r.p99_us <= r.p999_us && r.p999_us <= r.p9999_us && r.p9999_us <= r.max_us);
        assert!((r.max_us - 5000.0).abs() / 5000.0 < 0.01);
        assert_eq!((r.mode, r.latency_from, r.send_lag_p99_us), ("closed", "write", None));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["config"]["duration"], 10.0);
        assert_eq!(json["config"]["mix"], "get=90,set=10");
        assert_eq!(json["error_kinds"]["server_error"], 1);
        let text = r.to_string();
        assert!(text.contains("ops/s") && text.contains("server_error 1"), "{text}");
    }

    #[test]
    fn empty_run_reports_zeros() {
        let r = BenchReport::build(BenchConfig::default(), Vec::new(), RunTotals::default()).unwrap();
        assert_eq!((r.ops, r.ops_per_sec, r.p50_us, r.max_us, r.hit_ratio), (0, 0.0, 0.0, 0.0, 0.0));
    }
}
