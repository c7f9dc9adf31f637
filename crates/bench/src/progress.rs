//! Progress while a run goes on: what is reported once per second, and the
//! task that reports it.

use crate::stats::ConnStats;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
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
    /// 99th percentile latency of the measured window so far, microseconds
    /// (`None` before anything was measured).
    pub p99_us: Option<f64>,
    /// Error replies since the load started.
    pub errors: u64,
}

/// Counters every connection bumps and the reporter reads.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) ops: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// The phases of the run, as instants every connection compares against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Requests scheduled (open loop) or written (closed loop) from here on
    /// are recorded.
    pub(crate) measure_from: Instant,
    /// No request is scheduled or written from here on.
    pub(crate) end: Instant,
}

/// Calls `f` every [`PROGRESS_INTERVAL`] until the window ends (or the task
/// is aborted). The p99 merges every connection's histogram, taking each
/// connection's lock for the length of one histogram addition.
pub(crate) async fn report(
    f: ProgressFn,
    live: Arc<Live>,
    stats: Vec<Arc<Mutex<ConnStats>>>,
    start: Instant,
    window: Window,
) {
    let mut tick = tokio::time::interval_at(start + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
    let (mut last_ops, mut last_at) = (0, start);
    let mut merged: Option<Histogram<u64>> = None;
    loop {
        let now = tick.tick().await;
        if now > window.end {
            return;
        }
        let ops = live.ops.load(Ordering::Relaxed);
        let dt = now.saturating_duration_since(last_at).as_secs_f64();
        let phase = if now <= window.measure_from { Phase::Warmup } else { Phase::Measure };
        let mut p99_us = None;
        if phase == Phase::Measure {
            for s in &stats {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                let m = merged.get_or_insert_with(|| Histogram::new_from(&s.latency));
                // Both come from the same bounds, so adding cannot fail; a
                // failure would only make this line's p99 approximate.
                let _ = m.add(&s.latency);
            }
            if let Some(m) = merged.as_mut() {
                if !m.is_empty() {
                    p99_us = Some(m.value_at_quantile(0.99) as f64 / 1_000.0);
                }
                m.reset();
            }
        }
        f(&Progress {
            phase,
            elapsed_secs: now.saturating_duration_since(start).as_secs_f64(),
            ops,
            ops_per_sec: if dt > 0.0 { ops.saturating_sub(last_ops) as f64 / dt } else { 0.0 },
            p99_us,
            errors: live.errors.load(Ordering::Relaxed),
        });
        (last_ops, last_at) = (ops, now);
    }
}
