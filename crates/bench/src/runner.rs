//! Running a benchmark: the dedicated runtime, the three phases (connect,
//! prefill, measure) and the tasks of the measuring phase.

use crate::closed_loop;
use crate::config::BenchConfig;
use crate::connection::{BenchConn, ConnError};
use crate::error::BenchError;
use crate::open_loop::{self, Arrival};
use crate::pacer::{self, Plan};
use crate::progress::{self, Live, Phase, Progress, ProgressFn, Window};
use crate::report::{BenchReport, RunTotals};
use crate::stats::ConnStats;
use crate::workload::Workload;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio::time::{Instant, error::Elapsed};

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
    let wl = Arc::new(Workload::new(&cfg)?);
    let mut totals = RunTotals::default();
    let mut conns = connect_all(&cfg, &mut totals).await?;

    // Prefill: each connection sets its own stripe of the keys.
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
                    totals.prefill_errors += 1;
                    match e {
                        ConnError::Timeout => totals.errors.timeout += 1,
                        ConnError::Io(_) => totals.errors.disconnected += 1,
                        _ => totals.errors.protocol += 1,
                    }
                }
            }
        }
        if let Some(f) = &progress {
            let ops = totals.prefilled;
            f(&Progress { phase: Phase::Prefill, elapsed_secs: 0.0, ops, ops_per_sec: 0.0, p99_us: None, errors: 0 });
        }
    }
    totals.connections = conns.len();

    // Measure: warmup then the window, one task per connection.
    let live = Arc::new(Live::default());
    let stats =
        (0..conns.len()).map(|_| ConnStats::new().map(|s| Arc::new(Mutex::new(s)))).collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let window = Window { measure_from: start + cfg.warmup, end: start + cfg.warmup + cfg.duration };
    let ticker = progress.map(|f| tokio::spawn(progress::report(f, Arc::clone(&live), stats.clone(), start, window)));
    // Requests unanswered this long after the end are given up on.
    let give_up = window.end + cfg.timeout;
    let n = conns.len() as u64;
    let mut senders = Vec::new();
    let mut tasks = JoinSet::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let (wl, live, st, pipeline) = (Arc::clone(&wl), Arc::clone(&live), Arc::clone(&stats[i]), cfg.pipeline);
        if cfg.is_open_loop() {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Arrival>();
            senders.push(tx);
            c.set_record_lag(true);
            tasks.spawn(async move {
                let r = tokio::time::timeout_at(give_up, open_loop::run(&mut c, &wl, pipeline, &mut rx, &st, &live));
                settle(r.await, &c, &st, Some(&mut rx));
            });
        } else {
            // The request quota split evenly; the first `requests % n` take one more.
            let quota = cfg.requests.map(|r| r / n + u64::from((i as u64) < r % n));
            tasks.spawn(async move {
                let r = closed_loop::run(&mut c, &wl, pipeline, window, quota, &st, &live);
                settle(tokio::time::timeout_at(give_up, r).await, &c, &st, None);
            });
        }
    }
    if let Some(rate) = cfg.rate {
        let plan = Plan {
            rate,
            arrivals: cfg.arrivals,
            start: start.into_std(),
            measure_from: window.measure_from.into_std(),
            end: window.end.into_std(),
            quota: cfg.requests,
            seed: cfg.seed,
        };
        // Detached: it ends by itself at the end of the plan or when every
        // connection has gone.
        pacer::spawn(plan, senders)?;
    }
    while let Some(r) = tasks.join_next().await {
        joined(r)?;
    }
    let finish = Instant::now();
    if let Some(t) = ticker {
        t.abort();
        // Wait for it to drop its handles on the stats.
        let _ = t.await;
    }
    let stats: Vec<ConnStats> = stats
        .into_iter()
        .map(|s| match Arc::try_unwrap(s) {
            Ok(m) => m.into_inner().unwrap_or_else(PoisonError::into_inner),
            Err(shared) => shared.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        })
        .collect();
    // The window closes with the last measured answer; with a duration
    // bound, not before the nominal end unless every connection died.
    let last = stats.iter().filter_map(|s| s.last_answer).max();
    let nominal = finish.min(window.end);
    let measured_end = match (cfg.requests, last) {
        (Some(_), Some(l)) => l,
        (None, Some(l)) => l.max(nominal),
        (_, None) => nominal,
    };
    totals.measured = measured_end.saturating_duration_since(window.measure_from);
    BenchReport::build(cfg, stats, totals)
}

/// Connects every connection before any load, so late connects do not shift
/// the measured window. Fails only if none could connect.
async fn connect_all(cfg: &BenchConfig, totals: &mut RunTotals) -> Result<Vec<BenchConn>, BenchError> {
    let mut tasks = JoinSet::new();
    for i in 0..cfg.connections {
        let (addr, seed) = (cfg.addr.clone(), conn_seed(cfg.seed, i));
        let (timeout, pipeline, tls) = (cfg.timeout, cfg.pipeline, cfg.tls.clone());
        tasks.spawn(async move { BenchConn::connect(&addr, timeout, seed, pipeline, tls.as_ref()).await });
    }
    let mut conns = Vec::with_capacity(cfg.connections);
    let mut last_err: Option<io::Error> = None;
    while let Some(r) = tasks.join_next().await {
        match joined(r)? {
            Ok(c) => conns.push(c),
            Err(e) => {
                totals.errors.connect += 1;
                last_err = Some(e);
            }
        }
    }
    if conns.is_empty() {
        let source = last_err.unwrap_or_else(|| io::Error::other("no connection attempted"));
        return Err(BenchError::Connect { addr: cfg.addr.clone(), source });
    }
    if let Some(e) = &last_err {
        tracing::warn!(failed = totals.errors.connect, error = %e, "some bench connections failed");
    }
    Ok(conns)
}

/// Accounts for how a connection's measuring ended: a failure by its kind;
/// giving up at the deadline as one `timeout` per measured request still in
/// flight or, in the open loop, scheduled but never sent.
fn settle(
    r: Result<Result<(), ConnError>, Elapsed>,
    conn: &BenchConn,
    stats: &Mutex<ConnStats>,
    backlog: Option<&mut UnboundedReceiver<Arrival>>,
) {
    let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "bench connection failed");
            e.count(&mut s);
        }
        Err(_) => {
            let unsent = backlog.map_or(0, open_loop::unsent);
            tracing::warn!(in_flight = conn.in_flight(), unsent, "bench requests unanswered past the deadline");
            s.errors.timeout += conn.measured_in_flight() + unsent;
        }
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
        let cfg = BenchConfig { connections: 0, ..BenchConfig::default() };
        assert!(matches!(run_blocking(cfg, None), Err(BenchError::Config(_))));
        let cfg = BenchConfig { key_prefix: "a b".into(), ..BenchConfig::default() };
        assert!(matches!(run_blocking(cfg, None), Err(BenchError::Config(_))));
    }
}
