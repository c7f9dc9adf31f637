//! Fault injection on a replicated tier (`replicas: 2`) of real processes on
//! loopback, every read checked by the version checker: a shard killed, a
//! shard hung, a shard restarted empty. No acknowledged write is lost (a
//! read of a key whose write was acknowledged never misses), no request
//! fails, no read is wrong. The control: with one owner per key the same
//! kill loses writes, which the checker sees. Each case prints a `FIGURE`
//! line; the figures are recorded in docs/RELIABILITY.md.

mod tier_support;

use std::time::Duration;
use tier_support::load::{Load, Report};
use tier_support::run::{figure, sleep_ms, wait_until};
use tier_support::tier::{RETRY_MS, TIMEOUT_MS, Tier};

/// One case at a time: they measure timing against the proxy's timeouts.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TASKS: usize = 8;
const KEYS: usize = 40;
const REPLICAS: &str = "  replicas: 2\n";

/// The load's keys that shard `i` owns (first owner or not).
fn keys_owned_by(tier: &Tier, i: usize) -> Vec<String> {
    let all = (0..TASKS).flat_map(|t| (0..KEYS).map(move |k| format!("k{t}:{k}")));
    all.filter(|k| tier.owners_of(k).contains(&i)).collect()
}

/// Reads of `keys` the load made in `[from, to)`.
fn reads_of(report: &Report, keys: &[String], from: Duration, to: Duration) -> usize {
    report.between(from, to).filter(|e| keys.contains(&e.key)).count()
}

fn assert_clean(report: &Report, what: &str) {
    assert!(report.wrong.is_empty(), "{what}: wrong data:\n{}", report.wrong.join("\n"));
    let lost = &report.lost;
    assert!(lost.is_empty(), "{what}: {} acknowledged writes lost, first: {:?}", lost.len(), lost.first());
    let failed: Vec<_> = report.events.iter().filter(|e| e.error.is_some()).take(3).collect();
    assert!(failed.is_empty(), "{what}: requests failed: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_a_killed_shard_loses_nothing_and_fails_nothing() {
    let _one = SERIAL.lock().await;
    let mut tier = Tier::start("r2-kill", 3, REPLICAS);
    let victim = 1;
    let owned = keys_owned_by(&tier, victim);
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;
    let t_fault = load.elapsed();
    tier.kill_shard(victim);
    wait_until(5, "the dead shard is ejected", async || tier.ejections().await >= 1).await;
    let t_eject = load.elapsed();
    sleep_ms(1500).await;
    let end = load.elapsed();
    let report = load.stop().await;

    assert_clean(&report, "shard killed");
    let served = reads_of(&report, &owned, t_fault, end);
    assert!(served > 100, "the dead shard's keys were read meanwhile ({served} requests)");
    let failovers = tier.pool_stat("replica_failovers").await;
    figure(format!(
        "replicas 2, shard killed: {} requests, 0 failed, 0 acknowledged writes lost, 0 wrong reads; ejected {} ms \
         after the kill; {served} requests for the {} keys it owned served by their other owner; {failovers} \
         requests failed over",
        report.events.len(),
        (t_eject - t_fault).as_millis(),
        owned.len(),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_a_hung_shard_costs_one_timeout_and_nothing_else() {
    let _one = SERIAL.lock().await;
    let tier = Tier::start("r2-hang", 3, REPLICAS);
    let victim = 2;
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;
    let t_fault = load.elapsed();
    tier.signal_shard(victim, "STOP");
    wait_until(5, "the hung shard is ejected", async || tier.ejections().await >= 1).await;
    let t_eject = load.elapsed();
    sleep_ms(1000).await;
    tier.signal_shard(victim, "CONT");
    wait_until(10, "the resumed shard is back in the ring", async || tier.in_ring(victim).await).await;
    let t_back = load.elapsed();
    sleep_ms(1000).await;
    let end = load.elapsed();
    let report = load.stop().await;

    // Its keys were written on the other owner while it was out; it was
    // flushed before it came back, so no older value is read from it.
    assert_clean(&report, "shard hung");
    let slowest = report.max_latency();
    let bound = Duration::from_millis(TIMEOUT_MS + 600);
    assert!(slowest < bound, "a request took {slowest:?}: the proxy's timeout is {TIMEOUT_MS} ms");
    let after = report.latency_quantile(t_eject + Duration::from_millis(100), end, 0.99);
    figure(format!(
        "replicas 2, shard hung (SIGSTOP): {} requests, 0 failed, 0 acknowledged writes lost, 0 wrong reads; \
         ejected {} ms after the stop; slowest request {} ms (timeout {TIMEOUT_MS} ms), p99 after the ejection {} ms; \
         back (probed, flushed) {} ms after the ejection",
        report.events.len(),
        (t_eject - t_fault).as_millis(),
        slowest.as_millis(),
        after.as_millis(),
        (t_back - t_eject).as_millis(),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_a_shard_restarted_empty_keeps_every_key_a_hit() {
    let _one = SERIAL.lock().await;
    let mut tier = Tier::start("r2-restart", 3, REPLICAS);
    let victim = 0;
    let owned = keys_owned_by(&tier, victim);
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;
    tier.kill_shard(victim);
    wait_until(5, "the dead shard is ejected", async || tier.ejections().await >= 1).await;
    tier.restart_shard(victim);
    let t_restart = load.elapsed();
    wait_until(10, "the restarted shard is back in the ring", async || tier.in_ring(victim).await).await;
    let t_back = load.elapsed();
    sleep_ms(1500).await;
    let end = load.elapsed();
    let report = load.stop().await;

    // Every read of an acknowledged key hit, before and after the return:
    // the empty shard's misses went to the other owner and refilled it.
    assert_clean(&report, "shard restarted empty");
    let fills = tier.pool_stat("replica_fills").await;
    assert!(fills > 0, "the returning shard was refilled by reads");
    let read_after = reads_of(&report, &owned, t_back, end);
    assert!(read_after > 100, "its keys were read after its return ({read_after})");
    figure(format!(
        "replicas 2, shard restarted empty: {} requests, 0 failed, 0 acknowledged writes lost (every read of a \
         written key a hit), 0 wrong reads; back {} ms after the restart; {read_after} requests for its {} keys after \
         its return; {fills} items written back to it by reads (retry timeout {RETRY_MS} ms)",
        report.events.len(),
        (t_back - t_restart).as_millis(),
        owned.len(),
    ));
}

/// The control: with one owner per key the same kill loses the dead
/// shard's keys (their reads miss after acknowledged writes), and the
/// checker counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_with_one_replica_a_killed_shard_loses_its_keys() {
    let _one = SERIAL.lock().await;
    let mut tier = Tier::start("r1-kill", 3, "");
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;
    tier.kill_shard(1);
    wait_until(5, "the dead shard is ejected", async || tier.ejections().await >= 1).await;
    sleep_ms(1500).await;
    let report = load.stop().await;
    assert!(report.wrong.is_empty(), "wrong data:\n{}", report.wrong.join("\n"));
    assert!(!report.lost.is_empty(), "the checker saw no lost write where one owner per key loses them");
    figure(format!(
        "control, replicas 1, shard killed: the checker counted {} reads that missed an acknowledged write",
        report.lost.len()
    ));
}
