//! Rolling restarts that keep the cache, proved under load with real
//! processes: three `memshard server -e` shards, two proxies with the
//! system's pool settings, writers through one proxy and readers through
//! the other, every read checked against the versions acknowledged before it
//! was sent. Each case prints its figures (`FIGURE` lines, recorded in
//! docs/RELIABILITY.md).

mod tier_support;

use std::time::{Duration, Instant};
use tier_support::run::{figure, sleep_ms, wait_until};
use tier_support::warm::{SplitLoad, SplitReport, WarmTier, hits, key_name, prefill};

/// One case at a time: they share the machine's two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Keys written before the restarts and never again: the warm cache.
const COLD: usize = 3000;
/// Keys the load writes and reads throughout.
const HOT: usize = 600;
/// Writer tasks (and as many readers).
const TASKS: usize = 4;

/// What a rolling restart did.
struct Rollout {
    report: SplitReport,
    cold_before: usize,
    cold_after: usize,
    wrong_cold: Vec<String>,
    away: Vec<Duration>,
    ejections: (u64, u64),
}

/// Stops every shard in turn with SIGTERM and starts it again on its port
/// and file, under the split load; `extra` is added to the pool's keys.
async fn rolling_restart(name: &str, extra: &str) -> Rollout {
    let mut tier = WarmTier::start(name, 3, extra);
    prefill(tier.proxy(0), "cold:", COLD).await;
    let (cold_before, _) = hits(tier.proxy(1), "cold:", COLD).await;
    let load = SplitLoad::start(tier.proxy(0), tier.proxy(1), TASKS, HOT, "hot:");
    sleep_ms(500).await;
    let mut away = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        tier.stop_shard(i);
        assert!(tier.has_file(i), "shard {i} saved its memory file");
        tier.start_shard(i);
        away.push(t.elapsed());
        assert!(!tier.has_file(i), "shard {i} removed its file once loaded");
        // As a rollout's minReadySeconds: serve a while before the next one.
        sleep_ms(700).await;
    }
    sleep_ms(500).await;
    let report = load.stop().await;
    let (cold_after, wrong_cold) = hits(tier.proxy(1), "cold:", COLD).await;
    let ejections = (tier.ejections(0).await, tier.ejections(1).await);
    Rollout { report, cold_before, cold_after, wrong_cold, away, ejections }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn describe(what: &str, r: &Rollout) -> String {
    format!(
        "{what}: {} writes ({} failed), {} reads ({} failed), {} stale; cold keys hit {}/{COLD} before, {}/{COLD} \
         after; shards away {:?} ms; ejections {}+{}",
        r.report.writes,
        r.report.failed_writes,
        r.report.reads,
        r.report.failed_reads,
        r.report.stale.len(),
        r.cold_before,
        r.cold_after,
        r.away.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        r.ejections.0,
        r.ejections.1,
    )
}

/// The goodbye keeps every shard's keys in place while it restarts: no
/// proxy writes them elsewhere, so the items it saved are still the latest
/// when it is back, and nothing needs a flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_keeps_the_cache_and_serves_nothing_stale() {
    let _one = SERIAL.lock().await;
    let r = rolling_restart("rolling", "").await;
    figure(describe("rolling restart of 3 shards (-e, goodbye, server_restart_timeout 30000)", &r));
    assert!(r.report.stale.is_empty(), "stale reads: {:?}", &r.report.stale[..r.report.stale.len().min(5)]);
    assert!(r.wrong_cold.is_empty(), "wrong cold values: {:?}", r.wrong_cold);
    assert_eq!(r.cold_before, COLD, "every cold key was cached before");
    assert!(r.cold_after * 100 >= COLD * 95, "only {} of {COLD} cold keys still hit", r.cold_after);
    assert_eq!(r.ejections, (0, 0), "a shard that said goodbye is not ejected");
    assert!(r.report.reads > 1000 && r.report.writes > 1000, "the load ran");
}

/// A shard that says no goodbye (memcached's own `-e`, or a timeout of 0):
/// its stop is a failure, it is ejected and flushed when it returns, and
/// the settle keeps the two proxies' readmissions apart. Correct, but the
/// cache is thrown away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_goodbye_a_rollout_is_correct_but_cold() {
    let _one = SERIAL.lock().await;
    let r = rolling_restart("cold", "  server_restart_timeout: 0\n").await;
    figure(describe("same rollout, goodbye ignored (server_restart_timeout 0; flush and settle on)", &r));
    assert!(r.report.stale.is_empty(), "stale reads: {:?}", &r.report.stale[..r.report.stale.len().min(5)]);
    assert!(r.cold_after * 2 < COLD, "flushed shards still hit {} of {COLD}", r.cold_after);
    assert!(r.ejections.0 >= 1 && r.ejections.1 >= 1, "every proxy ejected the stopped shards");
}

/// The tier as it was before the goodbye and the settle: a stop is a
/// failure, the shard is ejected, and flushed when it returns. The cache is
/// thrown away; the figure also counts what the proxies' different moments
/// of readmission let through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_before_a_rollout_empties_every_restarted_shard() {
    let _one = SERIAL.lock().await;
    let r = rolling_restart("before", "  server_restart_timeout: 0\n  ring_change_settle: 0\n").await;
    figure(describe("same rollout as before (no goodbye, no settle; flush on return)", &r));
    assert!(r.cold_after * 2 < COLD, "flushed shards still hit {} of {COLD}", r.cold_after);
}

/// The checker sees stale reads when they happen: with neither the goodbye
/// nor the flush nor the settle (twemproxy's way), returning shards serve
/// what they saved while their keys were written elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_goodbye_or_flush_the_checker_catches_stale_reads() {
    let _one = SERIAL.lock().await;
    let extra = "  server_restart_timeout: 0\n  flush_on_return: false\n  ring_change_settle: 0\n";
    let r = rolling_restart("stale", extra).await;
    figure(describe("control: no goodbye, no flush, no settle (twemproxy's way)", &r));
    assert!(!r.report.stale.is_empty(), "the checker should have caught stale reads");
}

/// A crash saves nothing, and the file loaded at the last start is gone, so
/// a killed shard comes back empty: whatever the proxies did meanwhile, it
/// cannot serve a value from before the crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shard_restarts_empty_and_serves_nothing_stale() {
    let _one = SERIAL.lock().await;
    let mut tier = WarmTier::start("killed", 3, "");
    // A first graceful restart, so the shard started from a file once.
    let victim = 1;
    prefill(tier.proxy(0), "cold:", COLD).await;
    tier.stop_shard(victim);
    tier.start_shard(victim);
    let load = SplitLoad::start(tier.proxy(0), tier.proxy(1), TASKS, HOT, "hot:");
    sleep_ms(500).await;
    let t = Instant::now();
    tier.kill_shard(victim);
    assert!(!tier.has_file(victim), "a crash leaves no memory file");
    wait_until(5, "both proxies ejected the killed shard", async || {
        tier.ejections(0).await >= 1 && tier.ejections(1).await >= 1
    })
    .await;
    tier.start_shard(victim);
    let away = t.elapsed();
    sleep_ms(3000).await;
    let report = load.stop().await;
    let (cold_after, wrong_cold) = hits(tier.proxy(1), "cold:", COLD).await;
    let homed = (0..COLD).filter(|&i| tier.home_of(&key_name("cold:", i)) == victim).count();
    figure(format!(
        "SIGKILL of one shard and restart: {} writes ({} failed), {} reads ({} failed), {} stale; cold keys hit \
         {cold_after}/{COLD} after ({homed} were on the killed shard); away {} ms",
        report.writes,
        report.failed_writes,
        report.reads,
        report.failed_reads,
        report.stale.len(),
        ms(away),
    ));
    assert!(report.stale.is_empty(), "stale reads: {:?}", &report.stale[..report.stale.len().min(5)]);
    assert!(wrong_cold.is_empty(), "wrong cold values: {wrong_cold:?}");
    assert!(cold_after <= COLD - homed, "the killed shard's items did not come back");
}

/// A pool switched between 3 and 4 servers four times by reload, both
/// proxies told at once, under the split load: `extra` added to the pool.
async fn switching(name: &str, extra: &str) -> SplitReport {
    let mut tier = WarmTier::start_listing(name, 4, 3, extra);
    let load = SplitLoad::start(tier.proxy(0), tier.proxy(1), TASKS, HOT, "hot:");
    sleep_ms(700).await;
    for _ in 0..4 {
        tier.relist(4).await;
        sleep_ms(700).await;
        tier.relist(3).await;
        sleep_ms(700).await;
    }
    load.stop().await
}

fn hit_ratio(r: &SplitReport) -> f64 {
    r.hits as f64 / (r.reads - r.failed_reads).max(1) as f64
}

/// Keys that move on a reload and move back find no value they left
/// behind: the servers they arrive at are cleared of them first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_3_and_4_servers_by_reload_serves_nothing_stale() {
    let _one = SERIAL.lock().await;
    // A settle shorter than each phase, so both halves count: the clearing
    // of arriving keys, and the settle across the two proxies' moments.
    let r = switching("switch", "  ring_change_settle: 300\n").await;
    figure(format!(
        "pool switched 3 -> 4 -> 3 servers four times by reload (both proxies at once, ring_change_settle 300): {} \
         writes ({} failed), {} reads ({} failed), {} stale, hit ratio {:.3}",
        r.writes,
        r.failed_writes,
        r.reads,
        r.failed_reads,
        r.stale.len(),
        hit_ratio(&r)
    ));
    assert!(r.stale.is_empty(), "stale reads: {:?}", &r.stale[..r.stale.len().min(5)]);
    assert!(hit_ratio(&r) > 0.5, "the cache keeps hitting: {:.3}", hit_ratio(&r));
    assert!(r.reads > 1000, "the load ran");
}

/// The checker sees the values left behind when nothing clears them and
/// nothing settles (`flush_on_return: false`, `ring_change_settle: 0`:
/// twemproxy's behaviour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_switching_without_clearing_serves_values_left_behind() {
    let _one = SERIAL.lock().await;
    let r = switching("switch-stale", "  flush_on_return: false\n  ring_change_settle: 0\n").await;
    figure(format!(
        "control: same switching, flush_on_return false and ring_change_settle 0: {} reads, {} stale, hit ratio {:.3}",
        r.reads,
        r.stale.len(),
        hit_ratio(&r)
    ));
    assert!(!r.stale.is_empty(), "the checker should have caught values left behind");
}
