//! The open loop: it offers the rate asked for, and a server stall shows in
//! its latencies (timed from the schedule) where the closed loop hides it.
//!
//! Assertions are about correctness, not speed: request counts follow from
//! the schedule, and a 500 ms stall must produce at least 500 ms of latency.

mod common;

use common::{FakeMemcached, Faults};
use memshard_bench::{Arrivals, BenchConfig, BenchReport, run};
use std::time::Duration;
use tokio::time::Instant;

const RATE: f64 = 2000.0;
const STALL: Duration = Duration::from_millis(500);

fn open(addr: String) -> BenchConfig {
    BenchConfig {
        addr,
        connections: 4,
        rate: Some(RATE),
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(200),
        key_space: 1000,
        ..BenchConfig::default()
    }
}

#[tokio::test]
async fn open_loop_offers_the_target_rate() {
    let server = common::memshard_server().await;
    for arrivals in [Arrivals::Uniform, Arrivals::Poisson] {
        let r = run(BenchConfig { arrivals, ..open(server.addr.to_string()) }, None).await.unwrap();
        assert_eq!((r.mode, r.latency_from, r.target_rate), ("open", "schedule", Some(RATE)));
        assert_eq!(r.errors, 0, "{r}");
        // 2 s at 2000/s: 4000 requests scheduled in the window. Uniform
        // spacing makes the count exact to one; a Poisson count has a
        // standard deviation of 63, so 8 % is five of them.
        let tolerance = if arrivals == Arrivals::Uniform { 0.01 } else { 0.08 };
        let expected = RATE * 2.0;
        assert!((r.ops as f64 - expected).abs() <= expected * tolerance, "{arrivals}: {r}");
        // The achieved rate divides by the time to the last answer, so a
        // late reply on a busy machine lowers it a little: 10 %.
        assert!((r.ops_per_sec - RATE).abs() <= RATE * 0.1, "{arrivals}: {r}");
        let lag = (r.send_lag_p50_us, r.send_lag_p99_us, r.send_lag_max_us);
        assert!(matches!(lag, (Some(a), Some(b), Some(c)) if a <= b && b <= c), "{r}");
        assert_eq!(r.misses, 0, "prefilled: {r}");
    }
}

#[tokio::test]
async fn request_count_bounds_the_open_loop() {
    let server = common::memshard_server().await;
    let cfg = BenchConfig { requests: Some(500), duration: Duration::from_secs(60), ..open(server.addr.to_string()) };
    let r = run(cfg, None).await.unwrap();
    assert_eq!((r.ops, r.errors), (500, 0), "{r}");
    // 500 requests at 2000/s take a quarter of a second, not the 60 s bound.
    assert!(r.duration_secs < 5.0, "{r}");
}

/// Runs `cfg` against a fake whose replies all stop for [`STALL`] once,
/// from the first requests read after one second of load.
async fn stalled(mut cfg: BenchConfig) -> BenchReport {
    let server = FakeMemcached::with(Faults {
        stall_at: Some(Instant::now() + Duration::from_secs(1)),
        stall_for: STALL,
        ..Faults::default()
    })
    .await;
    cfg.addr = server.addr.to_string();
    cfg.prefill = false;
    let r = run(cfg, None).await.unwrap();
    assert!(server.stall_until().is_some(), "the stall did not happen");
    assert_eq!(r.errors, 0, "{r}");
    r
}

#[tokio::test]
async fn stall_shows_in_open_loop_latency_and_hides_in_closed_loop() {
    let open_loop = stalled(BenchConfig { pipeline: 2, ..open(String::new()) }).await;
    // The request whose arrival started the stall was scheduled no later
    // than it arrived, and answered no earlier than the stall's end.
    assert!(open_loop.max_us >= STALL.as_micros() as f64, "{open_loop}");
    // Requests scheduled during the first half of the stall waited at least
    // 250 ms: 0.25 s x 2000/s = 500 of ~4000 measured, 12 % of them, so
    // the 99th (even the 90th) percentile is at least 250 ms.
    assert!(open_loop.p99_us >= 250_000.0, "{open_loop}");
    assert!(open_loop.p90_us >= 250_000.0, "{open_loop}");
    // Nothing was dropped: the backlog was sent once the server came back.
    assert!((open_loop.ops as f64 - RATE * 2.0).abs() <= RATE * 2.0 * 0.01, "{open_loop}");

    // The closed loop only had its connections x pipeline requests in flight
    // during the stall: they show in its max, but its percentiles stay low,
    // as the stall merely paused the generator.
    let closed = stalled(BenchConfig { rate: None, pipeline: 2, ..open(String::new()) }).await;
    assert!(closed.max_us >= STALL.as_micros() as f64, "{closed}");
    assert!(closed.p99_us < open_loop.p99_us, "closed {closed}\nopen {open_loop}");
}
