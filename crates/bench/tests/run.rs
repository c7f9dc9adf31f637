//! Short closed-loop runs of the generator against a fake and a real
//! memcached: counters, JSON, progress, errors.

mod common;

use memshard_bench::{BenchConfig, BenchError, BenchReport, Phase, Progress, run};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn short(addr: String) -> BenchConfig {
    BenchConfig {
        addr,
        connections: 8,
        duration: Duration::from_millis(1000),
        warmup: Duration::from_millis(200),
        key_space: 1000,
        ..BenchConfig::default()
    }
}

/// Invariants every report must satisfy, and every JSON field present.
fn check_sane(r: &BenchReport) {
    assert!(r.ops > 0, "{r}");
    assert_eq!(r.ops, r.gets + r.sets);
    assert!(r.p50_us > 0.0, "{r}");
    let ordered = [r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.p9999_us, r.max_us];
    assert!(ordered.windows(2).all(|w| w[0] <= w[1]), "{r}");
    assert!(r.mean_us > 0.0 && r.mean_us <= r.max_us);
    assert!(r.duration_secs >= r.config.duration.as_secs_f64() * 0.9, "{}", r.duration_secs);
    assert!(r.ops_per_sec > 0.0);
    assert_eq!(r.errors, r.error_kinds.total());
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for field in [
        "mode",
        "target_rate",
        "ops",
        "ops_per_sec",
        "gets",
        "sets",
        "hits",
        "misses",
        "hit_ratio",
        "errors",
        "error_kinds",
        "connections",
        "connections_lost",
        "latency_from",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "p9999_us",
        "max_us",
        "mean_us",
        "send_lag_p50_us",
        "send_lag_p99_us",
        "send_lag_max_us",
        "duration_secs",
        "config",
    ] {
        assert!(json.get(field).is_some(), "JSON lacks {field}: {json}");
    }
    for kind in ["error", "client_error", "server_error", "not_stored", "connect", "disconnected", "timeout"] {
        assert!(json["error_kinds"][kind].is_u64(), "JSON lacks error kind {kind}");
    }
    for field in ["rate", "mix", "key_dist", "value_size", "multiget", "requests", "pipeline", "duration"] {
        assert!(json["config"].get(field).is_some(), "JSON config lacks {field}: {json}");
    }
    assert_eq!(json["ops"].as_u64(), Some(r.ops));
    assert_eq!(json["config"]["connections"].as_u64(), Some(r.config.connections as u64));
}

#[tokio::test]
async fn bench_against_fake_memcached() {
    let server = common::FakeMemcached::start(0).await;
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let cfg = BenchConfig { pipeline: 4, ..short(server.addr.to_string()) };
    let r = run(cfg, Some(Arc::new(move |p: &Progress| sink.lock().unwrap().push(*p)))).await.unwrap();
    check_sane(&r);
    assert_eq!((r.mode, r.latency_from, r.send_lag_p99_us), ("closed", "write", None));
    assert_eq!(r.errors, 0, "{r}");
    assert_eq!((r.connections, r.prefilled, r.prefill_errors), (8, 1000, 0));
    assert_eq!((r.misses, r.hits, r.hit_ratio), (0, r.gets, 1.0), "prefill makes every get hit");
    let ratio = r.gets as f64 / r.ops as f64;
    assert!((0.85..0.95).contains(&ratio), "get ratio {ratio}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.first().map(|p| p.phase), Some(Phase::Prefill));
    let measuring: Vec<_> = seen.iter().filter(|p| p.phase == Phase::Measure).collect();
    assert!(measuring.iter().any(|p| p.ops > 0 && p.p99_us.is_some_and(|us| us > 0.0)), "{seen:?}");
}

#[tokio::test]
async fn error_replies_are_counted_by_kind_not_fatal() {
    let server = common::FakeMemcached::start(50).await;
    let cfg = BenchConfig { prefill: false, threads: 2, ..short(server.addr.to_string()) };
    let r = run(cfg, None).await.unwrap();
    assert!(r.ops > 0 && r.errors > 0, "{r}");
    assert_eq!(r.errors, r.error_kinds.server_error, "{r}");
    assert_eq!(r.connections_lost, 0);
    assert!(r.misses > 0, "no prefill: some gets miss");
    // Roughly one request in 50 fails.
    let share = r.errors as f64 / (r.ops + r.errors) as f64;
    assert!((0.01..0.03).contains(&share), "error share {share}");
}

#[tokio::test]
async fn request_count_bounds_the_closed_loop() {
    let server = common::FakeMemcached::start(0).await;
    let cfg = BenchConfig {
        requests: Some(1001),
        duration: Duration::from_secs(60),
        pipeline: 3,
        ..short(server.addr.to_string())
    };
    let r = run(cfg, None).await.unwrap();
    assert_eq!((r.ops, r.errors), (1001, 0), "{r}");
    assert!(r.duration_secs < 60.0);
}

#[tokio::test]
async fn unreachable_server_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = run(short(format!("127.0.0.1:{port}")), None).await;
    assert!(matches!(r, Err(BenchError::Connect { .. })), "{r:?}");
}

#[tokio::test]
async fn bench_against_memcached() {
    let Some(mc) = common::memcached_or_skip("bench_against_memcached") else { return };
    for (pipeline, mix) in [(1, "get=9,set=1"), (16, "mg=9,ms=1")] {
        let cfg = BenchConfig { pipeline, mix: mix.parse().unwrap(), ..short(mc.addr().to_string()) };
        let r = run(cfg, None).await.unwrap();
        check_sane(&r);
        assert_eq!(r.errors, 0, "{r}");
        assert_eq!(r.prefilled, 1000);
        assert_eq!(r.misses, 0, "{r}");
    }
}
