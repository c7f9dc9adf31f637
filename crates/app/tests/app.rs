//! The app served for real on loopback, in front of an in-process memshard
//! server (the proxy speaks the same protocol, so the app cannot tell).

use memshard_app::{AppConfig, run};
use memshard_net::{Shutdown, ShutdownTrigger};
use memshard_server::ServerConfig;
use memshard_testkit::http::{self, HttpResponse};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A cache server on an ephemeral port; stops when dropped.
struct Cache {
    addr: SocketAddr,
    _stop: ShutdownTrigger,
}

async fn start_cache_on(addr: &str) -> Cache {
    let listener = TcpListener::bind(addr).await.expect("bind cache");
    let addr = listener.local_addr().expect("cache addr");
    let (stop, shutdown) = ShutdownTrigger::new();
    let cfg = ServerConfig { threads: 1, ..ServerConfig::default() };
    tokio::spawn(memshard_server::run(listener, cfg, shutdown));
    Cache { addr, _stop: stop }
}

struct App {
    addr: SocketAddr,
    stop: ShutdownTrigger,
    task: JoinHandle<Result<(), memshard_app::RunError>>,
}

async fn start_app(cache: &str, tweak: impl FnOnce(&mut AppConfig)) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
    let addr = listener.local_addr().expect("app addr");
    let mut cfg = AppConfig { cache: cache.to_owned(), ..AppConfig::default() };
    tweak(&mut cfg);
    let (stop, shutdown): (ShutdownTrigger, Shutdown) = ShutdownTrigger::new();
    let task = tokio::spawn(run(listener, cfg, shutdown));
    App { addr, stop, task }
}

impl App {
    async fn get(&self, target: &str) -> HttpResponse {
        http::get(self.addr, target).await.expect("HTTP answer")
    }
}

fn json(r: &HttpResponse) -> Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// A closed port on loopback: bound, then released.
async fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_with_the_same_value() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |_| {}).await;
    let first = app.get("/memcache?lookup=cat").await;
    assert_eq!(first.status, 200, "{first:?}");
    let first = json(&first);
    assert_eq!(first["key"], "cat");
    assert_eq!(first["hit"], false);
    assert_eq!(first["message"], "cache miss, added to cache");
    let value = first["value"].as_str().expect("value is a string").to_owned();
    assert_eq!(value.len(), 16);

    let second = json(&app.get("/memcache?lookup=cat").await);
    assert_eq!(second, serde_json::json!({ "key": "cat", "value": value, "hit": true }));

    // The value really is in the cache under that key.
    let client = memshard_client::Client::connect(cache.addr).await.expect("connect cache");
    let item = client.get("cat").await.expect("get").expect("cached");
    assert_eq!(item.value.as_ref(), value.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_plain_gets_one_line() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |_| {}).await;
    let ask = || http::request(app.addr, "GET", "/memcache?lookup=dog", &[("Accept", "text/plain")]);
    let miss = ask().await.expect("answer");
    assert_eq!(miss.status, 200);
    assert_eq!(miss.header("content-type"), Some("text/plain; charset=utf-8"));
    let value = miss.body.strip_prefix("dog = ").and_then(|r| r.strip_suffix(" (cache miss, added to cache)\n"));
    let value = value.unwrap_or_else(|| panic!("unexpected line {:?}", miss.body));
    let hit = ask().await.expect("answer");
    assert_eq!(hit.body, format!("dog = {value} (cache hit)\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_with_json() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |_| {}).await;
    let long = format!("/memcache?lookup={}", "k".repeat(251));
    for (target, status, needle) in [
        ("/memcache", 400, "missing"),
        ("/memcache?key=cat", 400, "missing"),
        ("/memcache?lookup=", 400, "empty"),
        (long.as_str(), 400, "251 bytes"),
        ("/memcache?lookup=two+words", 400, "space"),
        ("/memcache?lookup=tab%09key", 400, "control"),
        ("/memcache?lookup=nul%00key", 400, "control"),
        ("/memcache?lookup=%C3%28", 400, "UTF-8"),
        ("/nope", 404, "/nope"),
    ] {
        let r = app.get(target).await;
        assert_eq!(r.status, status, "{target}: {r:?}");
        let body = json(&r);
        let detail = body["detail"].as_str().unwrap_or_else(|| panic!("{target}: no detail in {body}"));
        assert!(detail.contains(needle), "{target}: {detail}");
        assert!(body["error"].is_string(), "{target}: {body}");
    }
    let r = http::request(app.addr, "POST", "/memcache?lookup=cat", &[("Content-Length", "0")]).await.expect("answer");
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(json(&r)["error"], "method not allowed");
    // A 250-byte key is fine, and the app is still serving after the bad ones.
    let ok = app.get(&format!("/memcache?lookup={}", "k".repeat(250))).await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

/// Requests hyper refuses before the app sees them get the JSON body too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_routing_have_json_bodies_too() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |_| {}).await;
    let huge_uri = format!("/memcache?lookup={}", "a".repeat(100_000));
    let r = app.get(&huge_uri).await;
    assert_eq!((r.status, json(&r)["error"].as_str()), (414, Some("uri too long")), "{r:?}");
    let names: Vec<String> = (0..200).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let r = http::request(app.addr, "GET", "/healthz", &many).await.expect("answer");
    assert_eq!((r.status, json(&r)["error"].as_str()), (431, Some("headers too large")), "{r:?}");
    let r = app.get("/memcache?lookup=a b").await;
    assert_eq!((r.status, json(&r)["error"].as_str()), (400, Some("bad request")), "{r:?}");
    // And the app goes on serving.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_misses_agree_on_one_value() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |_| {}).await;
    for round in 0..5 {
        let target = format!("/memcache?lookup=race-{round}");
        let addr = app.addr;
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let target = target.clone();
                tokio::spawn(async move { http::get(addr, &target).await })
            })
            .collect();
        let mut values = Vec::new();
        let mut misses = 0;
        for call in calls {
            let r = call.await.expect("task").expect("answer");
            assert_eq!(r.status, 200, "{r:?}");
            let body = json(&r);
            misses += usize::from(body["hit"] == false);
            values.push(body["value"].as_str().expect("value").to_owned());
        }
        values.dedup();
        assert_eq!(values.len(), 1, "round {round}: different values {values:?}");
        assert_eq!(misses, 1, "round {round}: exactly one request added the value");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_down_is_503_quickly_and_health_holds() {
    let dead = dead_addr().await;
    let app = start_app(&dead, |c| c.request_timeout = Duration::from_secs(1)).await;
    let start = Instant::now();
    let r = app.get("/memcache?lookup=cat").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(json(&r)["error"], "cache unavailable");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(json(&ready)["status"], "unready");
    let health = app.get("/healthz").await;
    assert_eq!((health.status, json(&health)["status"].clone()), (200, Value::from("ok")));

    // The cache comes up on that address: the app recovers by itself.
    let cache = start_cache_on(&dead).await;
    let mut last = None;
    for _ in 0..50 {
        let r = app.get("/memcache?lookup=cat").await;
        if r.status == 200 {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = last.expect("the app answers 200 within 5 s of the cache coming back");
    assert_eq!(json(&r)["key"], "cat");
    assert_eq!(app.get("/readyz").await.status, 200);
    drop(cache);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_cache_times_out_with_503() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let app = start_app(&addr, |c| c.request_timeout = Duration::from_millis(800)).await;
    let start = Instant::now();
    let r = app.get("/memcache?lookup=cat").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert_eq!(app.get("/readyz").await.status, 503);
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_hits_and_misses() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |_| {}).await;
    for target in ["/memcache?lookup=m1", "/memcache?lookup=m1", "/memcache?lookup=m2", "/memcache", "/x"] {
        app.get(target).await;
    }
    let m = app.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")), "{m:?}");
    for line in [
        "memshard_app_http_requests_total{route=\"/memcache\",status=\"200\"} 3",
        "memshard_app_http_requests_total{route=\"/memcache\",status=\"400\"} 1",
        "memshard_app_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "memshard_app_cache_hits_total 1",
        "memshard_app_cache_misses_total 2",
        "memshard_app_http_request_duration_seconds_count{route=\"/memcache\"} 4",
        "# EOF",
    ] {
        assert!(m.body.lines().any(|l| l == line), "missing {line:?} in\n{}", m.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_returns() {
    let cache = start_cache_on("127.0.0.1:0").await;
    let app = start_app(&cache.addr.to_string(), |c| c.drain_timeout = Duration::from_secs(3)).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    app.stop.trigger();
    let done = tokio::time::timeout(Duration::from_secs(5), app.task).await;
    let result = done.expect("run returns within the drain bound").expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(http::get(app.addr, "/healthz").await.is_err(), "still accepting after shutdown");
}
