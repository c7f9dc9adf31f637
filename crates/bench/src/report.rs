//! The result of a run: [`BenchReport`], as JSON or as a short table.

use crate::config::BenchConfig;
use crate::connection::ConnStats;
use crate::error::BenchError;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What a run measured. Counters cover the measured window only (requests
/// written after the warmup); `errors` also counts connections lost at any
/// time, so a run with `errors == 0` had no failure at all.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Requests answered without error in the window (`gets + sets`).
    pub ops: u64,
    /// `ops / duration_secs`.
    pub ops_per_sec: f64,
    /// Answered gets.
    pub gets: u64,
    /// Answered sets.
    pub sets: u64,
    /// Gets that returned a value.
    pub hits: u64,
    /// Gets that returned none.
    pub misses: u64,
    /// Error replies (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`, or a reply that
    /// does not answer the request) plus connections that failed (I/O,
    /// undecodable reply, stuck past the timeout).
    pub errors: u64,
    /// Connections that were established.
    pub connections: usize,
    /// Connections that failed before the end (included in `errors`).
    pub connections_lost: u64,
    /// Keys set by the prefill.
    pub prefilled: u64,
    /// Prefill sets that were not stored or failed (not in `errors`).
    pub prefill_errors: u64,
    /// Median latency, microseconds (write of a request's batch to its reply).
    pub p50_us: f64,
    /// 90th percentile latency, microseconds.
    pub p90_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: f64,
    /// Largest latency, microseconds.
    pub max_us: f64,
    /// Mean latency, microseconds.
    pub mean_us: f64,
    /// Length of the measured window actually run, seconds.
    pub duration_secs: f64,
    /// The configuration that produced this report.
    pub config: BenchConfig,
}

/// Per-run totals the runner gathers besides the connections' counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunTotals {
    pub(crate) connections: usize,
    pub(crate) connect_failures: u64,
    pub(crate) prefilled: u64,
    pub(crate) prefill_errors: u64,
    pub(crate) measured: Duration,
}

impl BenchReport {
    /// Merges per-connection counters and histograms into the report.
    pub(crate) fn build(config: BenchConfig, conns: Vec<ConnStats>, totals: RunTotals) -> Result<Self, BenchError> {
        let mut latency: Histogram<u64> = match conns.first() {
            Some(c) => Histogram::new_from(&c.latency),
            None => Histogram::new(3).map_err(|e| BenchError::Histogram(e.to_string()))?,
        };
        let (mut gets, mut sets, mut hits, mut misses, mut errors, mut lost) = (0, 0, 0, 0, 0, 0);
        for c in &conns {
            gets += c.gets;
            sets += c.sets;
            hits += c.hits;
            misses += c.misses;
            errors += c.errors;
            lost += c.lost;
            latency.add(&c.latency).map_err(|e| BenchError::Histogram(e.to_string()))?;
        }
        // A connection that never came up is an error too.
        errors += totals.connect_failures;
        let ops = gets + sets;
        let secs = totals.measured.as_secs_f64();
        let us = |ns: u64| ns as f64 / 1_000.0;
        let empty = latency.is_empty();
        let pct = |q: f64| if empty { 0.0 } else { us(latency.value_at_quantile(q)) };
        Ok(BenchReport {
            ops,
            ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            gets,
            sets,
            hits,
            misses,
            errors,
            connections: totals.connections,
            connections_lost: lost,
            prefilled: totals.prefilled,
            prefill_errors: totals.prefill_errors,
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
            max_us: if empty { 0.0 } else { us(latency.max()) },
            mean_us: if empty { 0.0 } else { latency.mean() / 1_000.0 },
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

    /// Fraction of gets that hit, 0 when there were none.
    pub fn hit_ratio(&self) -> f64 {
        if self.gets == 0 { 0.0 } else { self.hits as f64 / self.gets as f64 }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "memshard bench {}: {} conns x pipeline {}, {} thread(s), {:.1} s measured after {:.1} s warmup",
            c.addr,
            self.connections,
            c.pipeline,
            c.threads,
            self.duration_secs,
            c.warmup.as_secs_f64()
        )?;
        writeln!(
            f,
            "  throughput  {:.0} ops/s  ({} ops: {} gets, {:.1}% hits; {} sets)",
            self.ops_per_sec,
            self.ops,
            self.gets,
            self.hit_ratio() * 100.0,
            self.sets
        )?;
        writeln!(
            f,
            "  latency us  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            self.p50_us, self.p90_us, self.p99_us, self.p999_us, self.max_us, self.mean_us
        )?;
        write!(
            f,
            "  errors      {}  (connections lost {}; prefill {} keys, {} errors)",
            self.errors, self.connections_lost, self.prefilled, self.prefill_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_orders_percentiles() {
        let mut a = ConnStats::new().unwrap();
        let mut b = ConnStats::new().unwrap();
        for ns in [10_000u64, 20_000, 30_000] {
            a.latency.record(ns).unwrap();
        }
        b.latency.record(5_000_000).unwrap();
        (a.gets, a.hits, b.sets) = (3, 2, 1);
        a.misses = 1;
        let totals = RunTotals { connections: 2, measured: Duration::from_secs(2), ..RunTotals::default() };
        let r = BenchReport::build(BenchConfig::default(), vec![a, b], totals).unwrap();
        assert_eq!((r.ops, r.gets, r.sets, r.hits, r.misses), (4, 3, 1, 2, 1));
        assert!((r.ops_per_sec - 2.0).abs() < 1e-9);
        assert!(r.p50_us <= r.p99_us && r.p99_us <= r.p999_us && r.p999_us <= r.max_us);
        assert!((r.max_us - 5000.0).abs() / 5000.0 < 0.01);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["config"]["duration"], 10.0);
        assert!(r.to_string().contains("ops/s"));
    }

    #[test]
    fn empty_run_reports_zeros() {
        let r = BenchReport::build(BenchConfig::default(), Vec::new(), RunTotals::default()).unwrap();
        assert_eq!((r.ops, r.ops_per_sec, r.p50_us, r.max_us), (0, 0.0, 0.0, 0.0));
    }
}
