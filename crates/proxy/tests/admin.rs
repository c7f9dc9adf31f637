//! The proxy's admin port against a running pool: metrics that move with
//! the traffic, where a key lives (checked against the server that holds
//! it), the configuration in force, hot keys, refusals with JSON bodies, and
//! a data path that keeps answering while the admin port is hammered and
//! held by slow clients.

mod common;

use common::{FileProxy, ask, eventually, start_servers};
use memshard_net::ShutdownTrigger;
use memshard_proxy::ProxyConfig;
use memshard_testkit::http;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memshard-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn pool_file(dir: &std::path::Path, servers: &[SocketAddr]) -> PathBuf {
    let mut y = String::from(
        "alpha:\n  listen: 127.0.0.1:0\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  servers:\n",
    );
    for s in servers {
        y.push_str(&format!("   - {s}:1\n"));
    }
    let file = dir.join("pool.yml");
    std::fs::write(&file, y).expect("write pool file");
    file
}

async fn json(addr: SocketAddr, target: &str) -> (u16, Value) {
    let r = http::get(addr, target).await.expect("admin answers");
    assert_eq!(r.header("content-type"), Some("application/json"), "{target}: {r:?}");
    (r.status, serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{target}: {e}: {}", r.body)))
}

/// The value of the sample `name{labels}` in an exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ring_config_and_hot_keys_describe_the_running_pool() {
    let (stop, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let dir = scratch("describe");
    let file = pool_file(&dir, &servers);
    let proxy = FileProxy::start(&file, ProxyConfig { workers: 1, ..ProxyConfig::default() }).await;
    let admin = proxy.admin;

    // Traffic: 300 keys set, each read once; 100 unknown keys read; one key
    // read 6 000 times among them (pipelined, 100 at a time).
    let mut c = TcpStream::connect(proxy.pools[0]).await.expect("connect");
    for i in 0..300 {
        ask(&mut c, format!("set key:{i} 0 0 2\r\nv{}\r\n", i % 10).as_bytes(), b"\r\n").await;
        ask(&mut c, format!("get key:{i}\r\n").as_bytes(), b"END\r\n").await;
    }
    for i in 0..100 {
        ask(&mut c, format!("get nothing:{i}\r\n").as_bytes(), b"END\r\n").await;
    }
    for _ in 0..60 {
        let reply = ask(&mut c, "get key:7\r\n".repeat(100).as_bytes(), b"END\r\n").await;
        // Each answer ends in END: read until all 100 came.
        let mut got = reply.windows(5).filter(|w| w == b"END\r\n").count();
        while got < 100 {
            got += ask(&mut c, b"", b"END\r\n").await.windows(5).filter(|w| w == b"END\r\n").count();
        }
    }
    // Multi-key gets, split over the servers: 10 keys each, 5 stored.
    for i in 0..20 {
        let keys: Vec<String> =
            (0..10).map(|k| if k % 2 == 0 { format!("key:{}", i * 10 + k) } else { format!("none:{i}:{k}") }).collect();
        ask(&mut c, format!("get {}\r\n", keys.join(" ")).as_bytes(), b"END\r\n").await;
    }

    let metrics = http::get(admin, "/metrics").await.expect("metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
    let text = &metrics.body;
    let mut requests = 0.0;
    let (mut hits, mut misses, mut answered) = (0.0, 0.0, 0.0);
    let mut shares = 0.0;
    for s in &servers {
        let l = format!("{{pool=\"alpha\",server=\"{s}\"}}");
        requests += sample(text, &format!("memshard_proxy_server_requests_total{l}")).expect("requests");
        hits += sample(text, &format!("memshard_proxy_server_get_hits_total{l}")).expect("hits");
        misses += sample(text, &format!("memshard_proxy_server_get_misses_total{l}")).expect("misses");
        answered += sample(text, &format!("memshard_proxy_server_latency_seconds_count{l}")).expect("latency count");
        shares += sample(text, &format!("memshard_proxy_server_ring_share{l}")).expect("share");
        let state = format!("memshard_proxy_server_state{{pool=\"alpha\",server=\"{s}\",state=\"up\"}}");
        assert_eq!(sample(text, &state), Some(1.0), "{s} is up");
    }
    // Each multi-key get is one request per server it is split over.
    let fragments = sample(text, "memshard_proxy_fragments_total{pool=\"alpha\"}").expect("fragments");
    assert!(fragments > 0.0, "some multi-key gets were split");
    assert!((6720.0..=6700.0 + fragments + 20.0).contains(&requests), "{requests}: {text}");
    assert_eq!((hits, misses), (6300.0 + 100.0, 100.0 + 100.0), "{text}");
    // Every request sent to a server is in a latency histogram, once: the
    // pipelined gets travel as multi-key gets, so fewer than the clients'.
    assert!((760.0..=requests).contains(&answered), "{answered} of {requests}");
    assert!((shares - 1.0).abs() < 1e-6, "ring shares add up to 1: {shares}");
    assert_eq!(sample(text, "memshard_proxy_config_generation"), Some(1.0), "{text}");
    assert_eq!(sample(text, "memshard_proxy_client_connections{pool=\"alpha\"}"), Some(1.0), "{text}");
    // The hot key, and only a bounded few on /metrics.
    assert!(text.contains("memshard_proxy_hot_key_requests{pool=\"alpha\",rank=\"1\",key=\"key:7\"}"), "{text}");
    assert!(text.matches("memshard_proxy_hot_key_requests{").count() <= 5);

    // Where a key lives: the owner /ring names holds the value, the others do not.
    let (status, ring) = json(admin, "/ring?key=key%3A42").await;
    assert_eq!(status, 200, "{ring}");
    let pool = &ring["pools"][0];
    assert_eq!((pool["pool"].as_str(), pool["hash_function"].as_str()), (Some("alpha"), Some("fnv1a_64")), "{ring}");
    assert!(pool["hash"].is_u64(), "{ring}");
    let owner = pool["owners"][0]["name"].as_str().expect("owner name").to_owned();
    assert_eq!(pool["owners"][0]["state"], "up");
    for s in &servers {
        let mut direct = TcpStream::connect(s).await.expect("server");
        let got = ask(&mut direct, b"get key:42\r\n", b"END\r\n").await;
        assert_eq!(got.starts_with(b"VALUE key:42 "), s.to_string() == owner, "{s}: {}", String::from_utf8_lossy(&got));
    }

    // The configuration in force; a reload moves the generation.
    let (_, config) = json(admin, "/config").await;
    let bytes = std::fs::read(&file).expect("read pool file");
    assert_eq!(config["sha256"], memshard_proxy::sha256_hex(&bytes));
    assert_eq!(config["text"].as_str().map(str::as_bytes), Some(bytes.as_slice()));
    assert_eq!(config["generation"], 1);
    std::fs::write(&file, format!("{}\n# touched\n", String::from_utf8_lossy(&bytes))).expect("rewrite");
    proxy.reload_to(2).await;
    let (_, config) = json(admin, "/config").await;
    assert_eq!(config["generation"], 2);
    assert!(config["text"].as_str().is_some_and(|t| t.ends_with("# touched\n")));
    let text = http::get(admin, "/metrics").await.expect("metrics").body;
    assert_eq!(sample(&text, "memshard_proxy_config_reloads_total{outcome=\"success\"}"), Some(1.0), "{text}");
    // A bad file is refused, and said so.
    std::fs::write(&file, "alpha:\n  listen: nowhere\n").expect("break the file");
    proxy.reload.notify_one();
    eventually(10, "the refused reload to show", async || {
        let t = http::get(admin, "/metrics").await.expect("metrics").body;
        sample(&t, "memshard_proxy_config_last_reload_success") == Some(0.0)
    })
    .await;

    let (status, hot) = json(admin, "/hotkeys").await;
    assert_eq!(status, 200);
    let top = &hot["pools"][0]["keys"][0];
    assert_eq!(top["key"], "key:7", "{hot}");
    // 6 002 requests for it (a set and 6 001 gets), one in 64 sampled (about
    // 94, give or take 10): within a third.
    let count = top["count"].as_f64().expect("count");
    assert!((4000.0..=8000.0).contains(&count), "{hot}");

    let (_, summary) = json(admin, "/summary.json").await;
    assert_eq!(summary["role"], "proxy");
    assert_eq!(summary["pools"][0]["servers"].as_array().map(Vec::len), Some(3), "{summary}");
    let (status, ready) = json(admin, "/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    assert_eq!(json(admin, "/healthz").await.0, 200);
    let page = http::get(admin, "/").await.expect("dashboard");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("summary.json") && !page.body.contains("http://") && !page.body.contains("https://"));
    stop.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_refusals_and_slow_clients_hold_nothing() {
    let (stop, sd) = ShutdownTrigger::new();
    let servers = start_servers(2, &sd).await;
    let dir = scratch("refusals");
    let proxy =
        FileProxy::start(&pool_file(&dir, &servers), ProxyConfig { workers: 1, ..ProxyConfig::default() }).await;
    let admin = proxy.admin;
    let long = format!("/ring?key={}", "k".repeat(251));
    for (target, status, says) in [
        ("/nope", 404, "not found"),
        ("/metrics/x", 404, "not found"),
        ("/ring", 400, "missing"),
        ("/ring?key=", 400, "empty"),
        (long.as_str(), 400, "251 bytes"),
        ("/ring?key=%C3%28", 400, "UTF-8"),
        ("/ring?key=a%20b", 400, "' '"),
    ] {
        let (got, body) = json(admin, target).await;
        assert_eq!(got, status, "{target}: {body}");
        assert!(body["error"].is_string() && body.to_string().contains(says), "{target}: {body}");
    }
    let post = http::request(admin, "POST", "/metrics", &[]).await.expect("post");
    assert_eq!(post.status, 405, "{post:?}");
    // A head larger than 8 KiB: 431, JSON.
    let big = http::request(admin, "GET", "/metrics", &[("x-filler", &"a".repeat(20_000))]).await.expect("big");
    assert_eq!(big.status, 431, "{big:?}");
    assert!(big.body.contains("\"error\""));

    // Clients that send half a head and stall: each is cut off after the
    // read timeout, and meanwhile the port and the pool answer others.
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(admin).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.expect("half a head");
        stalled.push(s);
    }
    let t = Instant::now();
    assert_eq!(json(admin, "/healthz").await.0, 200);
    let mut c = TcpStream::connect(proxy.pools[0]).await.expect("pool");
    assert_eq!(ask(&mut c, b"set a 0 0 1\r\nx\r\n", b"\r\n").await, b"STORED\r\n");
    assert!(t.elapsed() < Duration::from_secs(4), "answered while 40 clients stall");
    // The stalled ones hear 408 and are closed.
    let mut s = stalled.pop().expect("one");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .expect("read");
    assert!(got.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&got));
    stop.trigger();
}

/// The admin port hammered while clients load the pool: every request of
/// the load is answered right, and every admin request gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammering_the_admin_port_loses_nothing_on_the_data_path() {
    let (stop, sd) = ShutdownTrigger::new();
    let servers = start_servers(3, &sd).await;
    let dir = scratch("hammer");
    let proxy =
        FileProxy::start(&pool_file(&dir, &servers), ProxyConfig { workers: 2, ..ProxyConfig::default() }).await;
    let (admin, pool) = (proxy.admin, proxy.pools[0]);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut load = Vec::new();
    for w in 0..4 {
        load.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(pool).await.expect("connect");
            let mut n = 0u32;
            while Instant::now() < deadline && n < 200_000 {
                let key = format!("w{w}:{}", n % 500);
                let value = format!("{n}");
                let set = format!("set {key} 0 0 {}\r\n{value}\r\n", value.len());
                assert_eq!(ask(&mut c, set.as_bytes(), b"\r\n").await, b"STORED\r\n");
                let got = ask(&mut c, format!("get {key}\r\n").as_bytes(), b"END\r\n").await;
                let want = format!("VALUE {key} 0 {}\r\n{value}\r\nEND\r\n", value.len());
                assert_eq!(String::from_utf8_lossy(&got), want);
                n += 1;
            }
            n
        }));
    }
    let mut hammer = Vec::new();
    for h in 0..4 {
        hammer.push(tokio::spawn(async move {
            let mut n = 0u32;
            while Instant::now() < deadline && n < 100_000 {
                let target = ["/metrics", "/hotkeys", "/ring?key=w1:7", "/summary.json"][(h + n as usize) % 4];
                let r = http::get(admin, target).await.expect("admin answers");
                assert_eq!(r.status, 200, "{target}: {}", r.body);
                n += 1;
            }
            n
        }));
    }
    let mut ops = 0;
    for t in load {
        ops += t.await.expect("load task");
    }
    let mut scrapes = 0;
    for t in hammer {
        scrapes += t.await.expect("hammer task");
    }
    assert!(ops > 0 && scrapes > 0, "{ops} ops, {scrapes} admin requests");
    let text = http::get(admin, "/metrics").await.expect("metrics").body;
    assert_eq!(sample(&text, "memshard_proxy_forward_errors_total{pool=\"alpha\"}"), Some(0.0), "{text}");
    stop.trigger();
}
