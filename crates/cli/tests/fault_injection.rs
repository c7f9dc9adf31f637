//! Fault injection on a tier of real processes on loopback, with every read
//! checked for wrong data. Each case prints a `FIGURE` line; the figures are
//! recorded in docs/RELIABILITY.md. The cases run one at a time (they time
//! failures against the proxy's 400 ms timeout and 2 s retry).

mod tier_support;

use memshard_testkit::{http, spawn_role};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tier_support::load::{Load, Report};
use tier_support::run::{figure, sleep_ms, wait_until};
use tier_support::slow;
use tier_support::tier::{RETRY_MS, TIMEOUT_MS, Tier};

/// One case at a time: they measure timing against the proxy's timeouts.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TASKS: usize = 8;
const KEYS: usize = 40;

/// Now, as a time since the Unix epoch (the clock of `server_ejected_at`).
fn wall() -> Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

/// The load's keys whose home is shard `i`.
fn keys_homed_at(tier: &Tier, i: usize) -> Vec<String> {
    (0..TASKS).flat_map(|t| (0..KEYS).map(move |k| format!("k{t}:{k}"))).filter(|k| tier.home_of(k) == i).collect()
}

fn assert_no_wrong_data(report: &Report) {
    assert!(report.wrong.is_empty(), "wrong data:\n{}", report.wrong.join("\n"));
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_killed_under_load_is_ejected_remapped_and_returns_after_a_probe() {
    let _one = SERIAL.lock().await;
    let mut tier = Tier::start("kill", 3, "");
    let victim = 1;
    let homed = keys_homed_at(&tier, victim);
    assert!(!homed.is_empty(), "some keys live on shard {victim}");
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;

    let t_fault = load.elapsed();
    tier.kill_shard(victim);
    wait_until(5, "the dead shard is ejected", async || tier.ejections().await >= 1).await;
    let t_eject = load.elapsed();
    sleep_ms(500).await;
    tier.restart_shard(victim);
    let t_restart = load.elapsed();
    // It returns once server_retry_timeout has passed and a probe succeeded:
    // then the load's writes for its keys land on it again.
    let ejected_at = tier.ejected_at(victim).await.expect("server_ejected_at");
    wait_until(10, "the restarted shard is back in the ring", async || tier.in_ring(victim).await).await;
    let t_return = load.elapsed();
    let out_for = wall().saturating_sub(ejected_at);
    sleep_ms(500).await;
    let end = load.elapsed();
    let report = load.stop().await;

    assert_no_wrong_data(&report);
    // Counted over the whole run: a request sent just before the kill can
    // fail because of it.
    let failed = report.failures(Duration::ZERO, end);
    // server_failure_limit (1) × requests in flight (one per client).
    assert!(failed <= TASKS, "{failed} requests failed; at most {TASKS} were in flight");
    let settled = t_eject + Duration::from_millis(100);
    assert_eq!(report.failures(settled, end), 0, "requests failed after the ejection");
    let remapped = report.between(settled, t_restart).filter(|e| homed.contains(&e.key)).count();
    assert!(remapped > 0, "the dead shard's keys were served elsewhere meanwhile");
    assert!(out_for >= Duration::from_millis(RETRY_MS), "back after {out_for:?}, before server_retry_timeout");
    assert!(t_return >= t_restart);
    figure(format!(
        "shard killed: {failed} failed requests of {} (limit 1 x {TASKS} in flight); ejected {} ms after the kill; \
         {remapped} requests for its keys served by other shards meanwhile; back {} ms after the ejection \
         (restart at +{} ms; {} ms by the proxy's clock; retry timeout {RETRY_MS} ms); 0 failures after ejection; \
         0 wrong reads",
        report.events.len(),
        ms(t_eject - t_fault),
        ms(t_return - t_eject),
        ms(t_restart - t_eject),
        ms(out_for),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_shard_times_out_without_hanging_anyone_and_recovers_flushed() {
    let _one = SERIAL.lock().await;
    let tier = Tier::start("hang", 3, "");
    let victim = 2;
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;

    let t_fault = load.elapsed();
    tier.signal_shard(victim, "STOP");
    wait_until(5, "the hung shard is ejected", async || tier.ejections().await >= 1).await;
    let t_eject = load.elapsed();
    sleep_ms(1000).await;
    tier.signal_shard(victim, "CONT");
    let t_cont = load.elapsed();
    let ejected_at = tier.ejected_at(victim).await.expect("server_ejected_at");
    wait_until(10, "the resumed shard is back in the ring", async || tier.in_ring(victim).await).await;
    let t_return = load.elapsed();
    let out_for = wall().saturating_sub(ejected_at);
    sleep_ms(1000).await;
    let end = load.elapsed();
    let report = load.stop().await;

    // Its keys were rewritten elsewhere while it was out; the values it held
    // were flushed before it came back, so none of them is read again.
    assert_no_wrong_data(&report);
    let failed = report.failures(Duration::ZERO, end);
    assert!(failed <= TASKS, "{failed} requests failed; at most {TASKS} were in flight");
    let slowest = report.max_latency();
    let bound = Duration::from_millis(TIMEOUT_MS + 600);
    assert!(slowest < bound, "a request took {slowest:?}: the proxy's timeout is {TIMEOUT_MS} ms");
    assert_eq!(report.failures(t_eject + Duration::from_millis(100), end), 0, "failures after the ejection");
    assert!(out_for >= Duration::from_millis(RETRY_MS), "back after {out_for:?}, before server_retry_timeout");
    figure(format!(
        "shard hung (SIGSTOP): {failed} failed requests of {}; ejected {} ms after the stop; slowest request {} ms \
         (timeout {TIMEOUT_MS} ms, none hung); SIGCONT at +{} ms, back {} ms after the ejection, flushed; \
         0 wrong reads",
        report.events.len(),
        ms(t_eject - t_fault),
        ms(slowest),
        ms(t_cont - t_eject),
        ms(t_return - t_eject),
    ));
}

/// The checker is not blind: with `flush_on_return: false` (twemproxy's
/// behaviour) the same fault serves the older values the hung shard held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_flush_on_return_a_resumed_shard_serves_stale_values() {
    let _one = SERIAL.lock().await;
    let tier = Tier::start("stale", 3, "  flush_on_return: false\n");
    let victim = 2;
    let load = Load::start(tier.proxy_addr, TASKS, KEYS, "k");
    sleep_ms(1000).await;
    tier.signal_shard(victim, "STOP");
    wait_until(5, "the hung shard is ejected", async || tier.ejections().await >= 1).await;
    sleep_ms(1000).await;
    tier.signal_shard(victim, "CONT");
    wait_until(10, "the resumed shard is back in the ring", async || tier.in_ring(victim).await).await;
    sleep_ms(500).await;
    let report = load.stop().await;
    assert!(!report.wrong.is_empty(), "stale values were expected without flush_on_return");
    figure(format!(
        "control: without flush_on_return the checker caught {} stale reads after the shard's return",
        report.wrong.len()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_shard_does_not_slow_clients_of_other_shards() {
    let _one = SERIAL.lock().await;
    let slow = 2;
    let delay = Arc::new(AtomicU64::new(0));
    let tier = Tier::start_with("slow", 3, "", |i, a| if i == slow { slow::start(a, delay.clone()) } else { a });
    // Four clients on keys of the fast shards, four on keys of the slow one.
    let keys: Vec<String> = (0..4000).map(|n| format!("s{n}")).collect();
    let (slow_keys, fast_keys): (Vec<String>, Vec<String>) = keys.into_iter().partition(|k| tier.home_of(k) == slow);
    let split = |ks: &[String]| ks.chunks(ks.len().div_ceil(4)).map(<[String]>::to_vec).collect::<Vec<_>>();
    let fast = Load::start_keys(tier.proxy_addr, split(&fast_keys));
    let slowed = Load::start_keys(tier.proxy_addr, split(&slow_keys));
    sleep_ms(1000).await;
    let t_slow = fast.elapsed();
    // Below the proxy's 400 ms timeout: slow, not failed.
    let delay_ms = 250;
    delay.store(delay_ms, Ordering::Relaxed);
    sleep_ms(2000).await;
    let end = fast.elapsed();
    let (fast, slowed) = (fast.stop().await, slowed.stop().await);

    assert_no_wrong_data(&fast);
    assert_no_wrong_data(&slowed);
    assert_eq!(tier.ejections().await, 0, "a slow shard is not a failed one");
    let before = fast.latency_quantile(Duration::ZERO, t_slow, 0.99);
    let during = fast.latency_quantile(t_slow + Duration::from_millis(100), end, 0.99);
    let slow_p50 = slowed.latency_quantile(t_slow + Duration::from_millis(500), end, 0.5);
    assert!(slow_p50 >= Duration::from_millis(delay_ms), "the slow shard's clients see the delay ({slow_p50:?})");
    assert!(during < Duration::from_millis(delay_ms / 2), "fast clients slowed to p99 {during:?}");
    figure(format!(
        "slow shard (+{delay_ms} ms per reply): clients of the other shards p99 {:.2} ms before, {:.2} ms during \
         ({} requests); the slow shard's clients p50 {} ms; 0 ejections; 0 wrong reads",
        before.as_secs_f64() * 1e3,
        during.as_secs_f64() * 1e3,
        fast.between(t_slow, end).count(),
        ms(slow_p50),
    ));
}

/// `memshard app` in front of `proxy`, answering 503 after 1 s without the cache.
fn start_app(proxy: std::net::SocketAddr) -> memshard_testkit::RoleProcess {
    let cache = proxy.to_string();
    let args = ["app", "--listen", "127.0.0.1:0", "--cache", &cache, "--request-timeout", "1000"];
    spawn_role(Path::new(env!("CARGO_BIN_EXE_memshard")), &args, 1).expect("start app")
}

/// One HTTP lookup's fate.
struct Answer {
    at: Duration,
    latency: Duration,
    status: u16,
    key: String,
    value: Option<String>,
}

/// Lookups of 50 keys in a loop until `stop`.
async fn http_load(app: std::net::SocketAddr, started: Instant, stop: Arc<AtomicBool>) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("web{}", n % 50);
        n += 1;
        let at = started.elapsed();
        let r = http::get(app, &format!("/memcache?lookup={key}")).await;
        let latency = started.elapsed() - at;
        let (status, value) = match r {
            Ok(r) => {
                let v = serde_json::from_str::<serde_json::Value>(&r.body).ok();
                (r.status, v.and_then(|v| v["value"].as_str().map(str::to_owned)))
            }
            Err(_) => (0, None),
        };
        out.push(Answer { at, latency, status, key, value });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_killed_under_app_load_gives_503_then_the_app_recovers_by_itself() {
    let _one = SERIAL.lock().await;
    let mut tier = Tier::start("proxy-kill", 3, "");
    let app = start_app(tier.proxy_addr);
    let (started, stop) = (Instant::now(), Arc::new(AtomicBool::new(false)));
    let workers: Vec<_> = (0..4).map(|_| tokio::spawn(http_load(app.addr(), started, stop.clone()))).collect();
    sleep_ms(1000).await;
    let t_kill = started.elapsed();
    tier.kill_proxy();
    sleep_ms(1500).await;
    tier.restart_proxy();
    let t_restart = started.elapsed();
    sleep_ms(3000).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for w in workers {
        answers.extend(w.await.expect("http load"));
    }

    let odd: Vec<u16> = answers.iter().map(|a| a.status).filter(|s| *s != 200 && *s != 503).collect();
    assert!(odd.is_empty(), "answers other than 200 and 503: {odd:?}");
    let outage: Vec<&Answer> = answers.iter().filter(|a| a.at >= t_kill && a.at < t_restart).collect();
    let unavailable = outage.iter().filter(|a| a.status == 503).count();
    assert!(unavailable > 0, "503s while the proxy was down");
    let slowest = answers.iter().map(|a| a.latency).max().unwrap_or_default();
    assert!(slowest < Duration::from_millis(2500), "an answer took {slowest:?}");
    let recovered = answers
        .iter()
        .filter(|a| a.at >= t_restart && a.status == 200)
        .map(|a| a.at)
        .min()
        .expect("the app answers 200 again after the proxy is back");
    assert!(recovered - t_restart < Duration::from_secs(3), "recovered {:?} after the restart", recovered - t_restart);
    let after = answers.iter().filter(|a| a.at >= recovered + Duration::from_millis(200));
    assert!(after.clone().all(|a| a.status == 200), "503s after recovery");
    // Never wrong data: a key's value, once added, never changes (the shards
    // stayed up, and the app only ever adds).
    let mut seen = std::collections::HashMap::new();
    for a in answers.iter().filter(|a| a.status == 200) {
        let v = a.value.clone().expect("a 200 carries a value");
        let first = seen.entry(a.key.clone()).or_insert_with(|| v.clone());
        assert_eq!(*first, v, "{} changed value", a.key);
    }
    figure(format!(
        "proxy killed under app load: {unavailable} of {} lookups during the {} ms outage answered 503 (slowest \
         answer {} ms); the app served again {} ms after the proxy restarted, by itself; values unchanged",
        outage.len(),
        ms(t_restart - t_kill),
        ms(slowest),
        ms(recovered - t_restart),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cache_tier_down_gives_bounded_503_unready_but_healthy() {
    let _one = SERIAL.lock().await;
    let mut tier = Tier::start("down", 3, "");
    let app = start_app(tier.proxy_addr);
    let ok = http::get(app.addr(), "/memcache?lookup=x").await.expect("answer");
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(http::get(app.addr(), "/readyz").await.expect("answer").status, 200);
    tier.kill_proxy();
    for i in 0..3 {
        tier.kill_shard(i);
    }
    let mut slowest = Duration::ZERO;
    for n in 0..10 {
        let start = Instant::now();
        let r = http::get(app.addr(), &format!("/memcache?lookup=k{n}")).await.expect("answer");
        slowest = slowest.max(start.elapsed());
        assert_eq!(r.status, 503, "{r:?}");
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON body");
        assert_eq!(body["error"], "cache unavailable");
    }
    assert!(slowest < Duration::from_millis(2500), "a 503 took {slowest:?}");
    let ready = http::get(app.addr(), "/readyz").await.expect("answer");
    assert_eq!(ready.status, 503, "{ready:?}");
    let healthy = http::get(app.addr(), "/healthz").await.expect("answer");
    assert_eq!(healthy.status, 200, "{healthy:?}");
    figure(format!(
        "whole cache tier down: 10 of 10 lookups answered 503 with a JSON error, slowest {} ms (request timeout \
         1000 ms); /readyz 503, /healthz 200",
        ms(slowest)
    ));
}
