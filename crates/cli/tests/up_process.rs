//! `memshard up` as a user runs it: the real binary, the printed addresses,
//! the endpoint called over HTTP, the shards asked directly where keys live,
//! and Ctrl-C (SIGINT) ending everything with exit code 0.

use memshard_client::Client;
use memshard_testkit::http;
use memshard_testkit::{UpProcess, spawn_up};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn start_up() -> UpProcess {
    start_up_with(&[])
}

fn start_up_with(extra: &[&str]) -> UpProcess {
    spawn_up(std::path::Path::new(env!("CARGO_BIN_EXE_memshard")), extra)
}

fn json(r: &http::HttpResponse) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_endpoint_across_three_shards_and_stops_on_ctrl_c() {
    let mut up = start_up();
    assert_eq!(up.shards.len(), 3, "three shards by default");
    assert_eq!(up.curl_line, format!("curl \"http://localhost:{}/memcache?lookup=cat\"", up.app.port()));

    // First call a miss, second a hit with the same value.
    let first = http::get(up.app, "/memcache?lookup=cat").await.expect("first call");
    assert_eq!(first.status, 200, "{first:?}");
    let first = json(&first);
    assert_eq!(
        (first["hit"].clone(), first["message"].clone()),
        (Value::Bool(false), "cache miss, added to cache".into())
    );
    let second = json(&http::get(up.app, "/memcache?lookup=cat").await.expect("second call"));
    assert_eq!(second["hit"], true);
    assert_eq!(second["value"], first["value"]);

    // 300 distinct keys through the app, then ask each shard which it holds.
    // The keys are pseudo-random: with twemproxy's fnv1a_64 (a 32-bit FNV
    // whose last bytes barely move the hash) keys that differ only in a short
    // counter, like `user:0`..`user:299`, cluster on one or two shards, in
    // twemproxy and, bit for bit, in memshard.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let keys: Vec<String> = (0..300)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            format!("key:{x:016x}")
        })
        .collect();
    for key in &keys {
        let r = http::get(up.app, &format!("/memcache?lookup={key}")).await.expect("lookup");
        assert_eq!(r.status, 200, "{key}: {r:?}");
    }
    let mut per_shard = Vec::new();
    for addr in &up.shards {
        let client = Client::connect(*addr).await.expect("connect to shard");
        let held = client.get_multi(&keys).await.expect("multi-get").len();
        per_shard.push(held);
    }
    assert_eq!(per_shard.iter().sum::<usize>(), 300, "every key on exactly one shard: {per_shard:?}");
    for (i, held) in per_shard.iter().enumerate() {
        assert!(*held > 0, "shard {i} holds no key: {per_shard:?}");
        assert!(*held * 100 <= 45 * 300, "shard {i} holds more than 45% of the keys: {per_shard:?}");
    }

    // The admin ports: the proxy's summary names the three shards and has
    // seen the lookups; each shard's metrics count what it holds.
    let summary = json(&http::get(up.dashboard, "/summary.json").await.expect("proxy summary"));
    let servers = summary["pools"][0]["servers"].as_array().expect("servers").clone();
    assert_eq!(servers.len(), 3, "{summary}");
    let requests: u64 = servers.iter().map(|s| s["requests"].as_u64().expect("requests")).sum();
    // 302 lookups: one get each, and an add for each of the 301 misses.
    assert!(requests >= 302 + 301, "the lookups went through the proxy: {summary}");
    assert_eq!(http::get(up.dashboard, "/").await.expect("dashboard").status, 200);
    assert_eq!(up.shard_admins.len(), 3);
    let mut items = 0;
    for admin in &up.shard_admins {
        let metrics = http::get(*admin, "/metrics").await.expect("shard metrics").body;
        assert!(metrics.contains("\nmemcached_up 1"), "{metrics}");
        items += metrics
            .lines()
            .find_map(|l| l.strip_prefix("memcached_current_items "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("memcached_current_items") as usize;
    }
    assert_eq!(items, 301, "cat and the 300 keys");

    // Ctrl-C: everything stops, exit code 0.
    ctrl_c(&mut up);
    assert!(http::get(up.app, "/healthz").await.is_err(), "the app still answers after exit");
}

/// SIGINT, then the exit code must be 0 within 15 s.
fn ctrl_c(up: &mut UpProcess) {
    let status = Command::new("kill").args(["-INT", &up.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(s) = up.child.child_mut().try_wait().expect("wait") {
            break s.code();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "memshard up did not stop within 15 s of SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

/// With `--data-dir` the cache outlives `up`: a value the app stored is a
/// hit, with the same value, after a restart; without it, a miss (control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_data_dir_keeps_the_cache_across_restarts() {
    let dir = std::env::temp_dir().join(format!("memshard-up-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.to_str().expect("utf-8 path");
    let keys: Vec<String> = (0..30).map(|i| format!("warm:{i:x}{}", i * 7919)).collect();
    let mut up = start_up_with(&["--data-dir", data]);
    let mut values = Vec::new();
    for key in &keys {
        let r = json(&http::get(up.app, &format!("/memcache?lookup={key}")).await.expect("lookup"));
        assert_eq!(r["hit"], false, "{key}: {r}");
        values.push(r["value"].clone());
    }
    ctrl_c(&mut up);
    for i in 0..3 {
        assert!(dir.join(format!("shard-{i}.mem")).exists(), "shard {i} saved its items");
    }

    let mut up = start_up_with(&["--data-dir", data]);
    for (key, value) in keys.iter().zip(&values) {
        let r = json(&http::get(up.app, &format!("/memcache?lookup={key}")).await.expect("lookup"));
        assert_eq!((&r["hit"], &r["value"]), (&Value::Bool(true), value), "{key} after the restart: {r}");
    }
    ctrl_c(&mut up);

    // Control: without the folder the same keys miss after a restart.
    let mut up = start_up();
    let r = json(&http::get(up.app, &format!("/memcache?lookup={}", keys[0])).await.expect("lookup"));
    assert_eq!(r["hit"], false, "{r}");
    ctrl_c(&mut up);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_taken_port_fails_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_memshard"))
        .args(["up", "--app-port", &port, "--proxy-port", "0", "--stats-port", "0", "--admin-port", "0"])
        .output()
        .expect("run memshard up");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert!(out.stdout.is_empty(), "nothing is reported running: {:?}", String::from_utf8_lossy(&out.stdout));
}

/// A client of the run's CA, presenting `cert` (`app`, `proxy`) or nothing.
fn tls_client(dir: &std::path::Path, cert: Option<&str>) -> std::sync::Arc<memshard_tls::ClientTls> {
    let files = memshard_tls::ClientTlsFiles {
        ca: dir.join("ca.crt"),
        cert: cert.map(|c| dir.join(format!("{c}.crt"))),
        key: cert.map(|c| dir.join(format!("{c}.key"))),
        min_version: memshard_tls::MinVersion::Tls12,
    };
    std::sync::Arc::new(memshard_tls::ClientTls::new(files, "test").expect("client config"))
}

/// Whether `addr` closes a plaintext `version` without a byte of answer.
async fn plaintext_closed(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"version\r\n").await.expect("write");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await.is_ok() && got.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_tls_encrypts_every_hop_and_admits_only_the_run_s_certificates() {
    let tls_dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = tls_dir.path().display().to_string();
    let mut up = start_up_with(&["--tls", "--tls-dir", &dir_arg]);
    assert_eq!(up.tls_dir.as_deref(), Some(tls_dir.path()), "the summary names the TLS folder");
    let dir = tls_dir.path();

    // The endpoint works end to end: app → proxy → shard, each hop TLS.
    let first = json(&http::get(up.app, "/memcache?lookup=secret").await.expect("first call"));
    assert_eq!(first["hit"], false, "{first}");
    let second = json(&http::get(up.app, "/memcache?lookup=secret").await.expect("second call"));
    assert_eq!((second["hit"].clone(), second["value"].clone()), (Value::Bool(true), first["value"].clone()));

    // No hop speaks plaintext, and none admits a client without a certificate.
    let no_cert = tls_client(dir, None);
    let cfg = memshard_client::ClientConfig::default();
    for addr in std::iter::once(up.proxy).chain(up.shards.iter().copied()) {
        assert!(plaintext_closed(addr).await, "{addr} answered a plaintext client");
        let c = Client::connect_tls_with(addr, &no_cert, "127.0.0.1", cfg).await;
        let refused = match c {
            Err(_) => true,
            Ok(c) => c.version().await.is_err(),
        };
        assert!(refused, "{addr} admitted a client without a certificate");
    }
    // Controls: the app's certificate opens the proxy and reads the value the
    // app stored; the proxy's opens a shard (what the proxy itself presents).
    let app =
        Client::connect_tls_with(up.proxy, &tls_client(dir, Some("app")), "127.0.0.1", cfg).await.expect("app cert");
    let value = app.get("secret").await.expect("get").expect("the app's key is there");
    assert_eq!(Value::String(String::from_utf8_lossy(&value.value).into_owned()), first["value"]);
    let proxy_cert = tls_client(dir, Some("proxy"));
    for addr in &up.shards {
        let shard = Client::connect_tls_with(*addr, &proxy_cert, "127.0.0.1", cfg).await.expect("proxy cert");
        assert!(shard.version().await.is_ok(), "{addr}");
    }
    ctrl_c(&mut up);
}
