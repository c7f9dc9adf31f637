//! Running a benchmark: the dedicated runtime, the three phases (connect,
//! prefill, measure) and progress reports.

use crate::config::BenchConfig;
use crate::connection::{BenchConn, ConnStats, Live, Window};
use crate::error::BenchError;
use crate::report::{BenchReport, RunTotals};
use crate::workload::Workload;
use serde::Serialize;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often progress is reported during warmup and measurement.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A progress callback. It runs on the generator's own runtime thread, so it
/// should be quick (format a line, send it on a channel).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Keys were set; `ops` is the number stored. Reported once.
    Prefill,
    /// Load is on but not recorded.
    Warmup,
    /// Load is on and recorded.
    Measure,
}

/// A snapshot reported every [`PROGRESS_INTERVAL`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Seconds since the load started (the start of warmup).
    pub elapsed_secs: f64,
    /// Requests answered since the load started (warmup included).
    pub ops: u64,
    /// Requests answered per second over the last interval.
    pub ops_per_sec: f64,
    /// Error replies since the load started.
    pub errors: u64,
}

/// Runs the benchmark on a dedicated runtime (see [`BenchConfig::threads`])
/// in its own OS thread, and waits for it without blocking the caller's
/// runtime. This keeps the generator's CPU use what `threads` says, whatever
/// runtime the caller uses.
pub async fn run(cfg: BenchConfig, progress: Option<ProgressFn>) -> Result<BenchReport, BenchError> {
    cfg.validate()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("memshard-bench".to_owned()).spawn(move || {
        let _ = tx.send(run_blocking(cfg, progress));
    })?;
    rx.await.map_err(|_| BenchError::Aborted("the bench thread panicked".to_owned()))?
}

/// Runs the benchmark on a dedicated runtime, blocking the calling thread.
/// Must not be called from within an async runtime (use [`run`] there).
pub fn run_blocking(cfg: BenchConfig, progress: Option<ProgressFn>) -> Result<BenchReport, BenchError> {
    cfg.validate()?;
    let mut builder = if cfg.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cfg.threads);
        b
    };
    let rt = builder.enable_all().thread_name("memshard-bench").build()?;
    rt.block_on(drive(cfg, progress))
}

/// A distinct, well-mixed seed per connection (SplitMix64 of seed + index).
fn conn_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, BenchError> {
    r.map_err(|e| BenchError::Aborted(e.to_string()))
}

async fn drive(cfg: BenchConfig, progress: Option<ProgressFn>) -> Result<BenchReport, BenchError> {
    let wl = Arc::new(Workload::new(&cfg));
    let mut totals = RunTotals::default();

    // Phase 1: connect everything before any load, so late connects do not
    // shift the measured window.
    let mut tasks = JoinSet::new();
    for i in 0..cfg.connections {
        let (addr, seed) = (cfg.addr.clone(), conn_seed(cfg.seed, i));
        let (timeout, pipeline) = (cfg.timeout, cfg.pipeline);
        tasks.spawn(async move { BenchConn::connect(&addr, timeout, seed, pipeline).await });
    }
    let mut conns = Vec::with_capacity(cfg.connections);
    let mut last_err: Option<io::Error> = None;
    while let Some(r) = tasks.join_next().await {
        match joined(r)? {
            Ok(c) => conns.push(c),
            Err(e) => {
                totals.connect_failures += 1;
                last_err = Some(e);
            }
        }
    }
    if conns.is_empty() {
        let source = last_err.unwrap_or_else(|| io::Error::other("no connection attempted"));
        return Err(BenchError::Connect { addr: cfg.addr.clone(), source });
    }
    if let Some(e) = &last_err {
        tracing::warn!(failed = totals.connect_failures, error = %e, "some bench connections failed");
    }

    // Phase 2: prefill, each connection setting its own stripe of the keys.
    if cfg.prefill {
        let stripes = conns.len();
        let mut tasks = JoinSet::new();
        for (i, mut c) in conns.drain(..).enumerate() {
            let (wl, timeout) = (Arc::clone(&wl), cfg.timeout);
            tasks.spawn(async move {
                let r = c.prefill(&wl, (i..wl.key_count()).step_by(stripes), timeout).await;
                (c, r)
            });
        }
        while let Some(r) = tasks.join_next().await {
            match joined(r)? {
                (c, Ok((stored, failed))) => {
                    totals.prefilled += stored;
                    totals.prefill_errors += failed;
                    conns.push(c);
                }
                (_, Err(e)) => {
                    tracing::warn!(error = %e, "bench connection failed during prefill");
                    totals.connect_failures += 1;
                }
            }
        }
        if let Some(f) = &progress {
            let p = Progress {
                phase: Phase::Prefill,
                elapsed_secs: 0.0,
                ops: totals.prefilled,
                ops_per_sec: 0.0,
                errors: 0,
            };
            f(&p);
        }
    }
    totals.connections = conns.len();

    // Phase 3: warmup then measurement, one task per connection.
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let window = Window { measure_from: start + cfg.warmup, end: start + cfg.warmup + cfg.duration };
    let ticker = progress.map(|f| tokio::spawn(report_progress(f, Arc::clone(&live), start, window)));
    let mut tasks = JoinSet::new();
    for mut c in conns {
        let mut stats = ConnStats::new().map_err(|e| BenchError::Histogram(e.to_string()))?;
        let (wl, live, pipeline) = (Arc::clone(&wl), Arc::clone(&live), cfg.pipeline);
        // A connection stuck on a reply is abandoned this long after the end.
        let give_up = window.end + cfg.timeout;
        tasks.spawn(async move {
            match tokio::time::timeout_at(give_up, c.measure(&wl, pipeline, window, &mut stats, &live)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "bench connection failed");
                    stats.connection_lost();
                }
                Err(_) => {
                    tracing::warn!("bench connection stuck past the end of the run");
                    stats.connection_lost();
                }
            }
            stats
        });
    }
    let mut stats = Vec::with_capacity(totals.connections);
    while let Some(r) = tasks.join_next().await {
        stats.push(joined(r)?);
    }
    let finish = Instant::now();
    if let Some(t) = ticker {
        t.abort();
    }
    // The nominal window, unless every connection died before its end.
    totals.measured = finish.min(window.end).saturating_duration_since(window.measure_from);
    BenchReport::build(cfg, stats, totals)
}

async fn report_progress(f: ProgressFn, live: Arc<Live>, start: Instant, window: Window) {
    let mut tick = tokio::time::interval_at(start + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
    let (mut last_ops, mut last_at) = (0, start);
    loop {
        let now = tick.tick().await;
        if now > window.end {
            return;
        }
        let ops = live.ops.load(Ordering::Relaxed);
        let dt = now.saturating_duration_since(last_at).as_secs_f64();
        let phase = if now < window.measure_from { Phase::Warmup } else { Phase::Measure };
        f(&Progress {
            phase,
            elapsed_secs: now.saturating_duration_since(start).as_secs_f64(),
            ops,
            ops_per_sec: if dt > 0.0 { (ops - last_ops) as f64 / dt } else { 0.0 },
            errors: live.errors.load(Ordering::Relaxed),
        });
        (last_ops, last_at) = (ops, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_connection() {
        let seeds: std::collections::HashSet<_> = (0..1000).map(|i| conn_seed(7, i)).collect();
        assert_eq!(seeds.len(), 1000);
        assert_ne!(conn_seed(1, 0), conn_seed(2, 0));
    }

    #[test]
    fn bad_config_is_refused_before_connecting() {
        let cfg = BenchConfig { get_ratio: 1.5, ..BenchConfig::default() };
        assert!(matches!(run_blocking(cfg, None), Err(BenchError::Config(_))));
        let cfg = BenchConfig { connections: 0, ..BenchConfig::default() };
        assert!(matches!(run_blocking(cfg, None), Err(BenchError::Config(_))));
        let cfg = BenchConfig { key_prefix: "a b".into(), ..BenchConfig::default() };
        assert!(matches!(run_blocking(cfg, None), Err(BenchError::Config(_))));
    }
}
