//! The server's admin port over real TCP (`run_with_admin`, as `memshard
//! server --admin ADDR` starts it): `/metrics` in the `memcached_exporter`'s
//! names and moving with the server's counters, the probes, `/config`,
//! `/summary.json` in the dashboard's shape, JSON 404s, and the port closing
//! with the server.

use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run_with_admin};
use memshard_testkit::http::{HttpResponse, get};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    admin: SocketAddr,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let (addr, admin_addr) = (listener.local_addr().expect("addr"), admin.local_addr().expect("admin addr"));
    let (trigger, shutdown) = ShutdownTrigger::new();
    let cfg = ServerConfig { threads: 1, ..ServerConfig::default() };
    let task = tokio::spawn(async move {
        run_with_admin(listener, cfg, Some(admin), shutdown).await.expect("server runs");
    });
    Server { addr, admin: admin_addr, trigger, task }
}

/// Sends `req` on a new connection and reads until the reply ends with `until`.
async fn ask(addr: SocketAddr, req: &[u8], until: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(until) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "closed before {until:?}: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    buf
}

async fn http(addr: SocketAddr, target: &str) -> HttpResponse {
    get(addr, target).await.unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

async fn json(addr: SocketAddr, target: &str, status: u16) -> Value {
    let r = http(addr, target).await;
    assert_eq!(r.status, status, "GET {target}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"), "GET {target}");
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {target}: {e}: {}", r.body))
}

/// The value of the unlabelled sample `name`, or of `name{labels}` as printed.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let rest = if series.ends_with('}') { rest } else { rest.strip_prefix("{}").unwrap_or(rest) };
        rest.strip_prefix(' ')?.parse().ok()
    })
}

/// The names of every sample in an exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

async fn metrics(admin: SocketAddr) -> String {
    let r = http(admin, "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
    r.body
}

#[tokio::test]
async fn metrics_follow_the_servers_counters() {
    let srv = start().await;
    let text = metrics(srv.admin).await;
    assert_eq!(value(&text, "memcached_up"), Some(1.0), "{text}");
    assert_eq!(value(&text, "memcached_current_items"), Some(0.0), "{text}");
    assert_eq!(value(&text, "memcached_version{version=\"1.6.18\"}"), Some(1.0), "{text}");
    let hits = "memcached_commands_total{command=\"get\",status=\"hit\"}";
    assert_eq!(value(&text, hits), Some(0.0), "{text}");

    let wire = b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a\r\nget a b\r\nget zz\r\n";
    ask(srv.addr, wire, b"END\r\nEND\r\n").await;
    let text = metrics(srv.admin).await;
    assert_eq!(value(&text, "memcached_current_items"), Some(2.0), "{text}");
    assert_eq!(value(&text, hits), Some(3.0), "{text}");
    assert_eq!(value(&text, "memcached_commands_total{command=\"get\",status=\"miss\"}"), Some(1.0), "{text}");
    assert_eq!(value(&text, "memcached_commands_total{command=\"set\",status=\"hit\"}"), Some(2.0), "{text}");
    assert!(value(&text, "memcached_read_bytes_total").is_some_and(|b| b >= wire.len() as f64), "{text}");
    assert!(value(&text, "memcached_connections_total").is_some_and(|c| c >= 1.0), "{text}");
    assert_eq!(value(&text, "memcached_slab_current_items{slab=\"1\"}"), Some(2.0), "{text}");

    ask(srv.addr, b"delete a\r\n", b"DELETED\r\n").await;
    let text = metrics(srv.admin).await;
    assert_eq!(value(&text, "memcached_current_items"), Some(1.0), "{text}");
    assert_eq!(value(&text, "memcached_commands_total{command=\"delete\",status=\"hit\"}"), Some(1.0));
    srv.trigger.trigger();
    srv.task.await.expect("server task");
}

#[tokio::test]
async fn probes_config_summary_and_refusals_are_json() {
    let srv = start().await;
    assert_eq!(json(srv.admin, "/healthz", 200).await["status"], "ok");
    assert_eq!(json(srv.admin, "/readyz", 200).await["status"], "ready");
    let ring = json(srv.admin, "/ring?key=a", 404).await;
    assert!(ring["error"].is_string() && ring["detail"].is_string(), "{ring}");
    assert_eq!(json(srv.admin, "/hotkeys", 404).await["error"], "not found");
    assert_eq!(json(srv.admin, "/nope", 404).await["error"], "not found");

    let config = json(srv.admin, "/config", 200).await;
    let sha = config["sha256"].as_str().expect("sha256");
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{config}");
    assert_eq!(config["generation"], 1);
    assert_eq!(config["settings"]["maxconns"], "1024");
    assert_eq!(config["settings"]["tcpport"], srv.addr.port().to_string());

    ask(srv.addr, b"set k 0 0 2\r\nhi\r\nget k\r\nget no\r\n", b"END\r\nEND\r\n").await;
    let sum = json(srv.admin, "/summary.json", 200).await;
    assert_eq!(sum["role"], "server");
    assert!(sum["name"].as_str().is_some_and(|n| !n.is_empty()), "{sum}");
    assert!(sum["uptime"].is_u64() && sum["time"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{sum}");
    assert_eq!(sum["latency_bounds"], serde_json::json!([]));
    let pools = sum["pools"].as_array().expect("pools");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["name"], "server");
    assert!(pools[0]["hotkeys"].is_null());
    let servers = pools[0]["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 1);
    let s = &servers[0];
    let listen = srv.addr.to_string();
    assert_eq!((s["name"].as_str(), s["address"].as_str()), (Some(listen.as_str()), Some(listen.as_str())));
    assert_eq!(s["state"], "up");
    assert_eq!(s["requests"], 3, "one set, two gets: {s}");
    assert_eq!((s["hits"].as_u64(), s["misses"].as_u64(), s["errors"].as_u64()), (Some(1), Some(1), Some(0)));
    assert!(s["latency"].is_null() && s["ring_share"].is_null(), "{s}");
    assert_eq!(s["items"], 1);
    assert!(s["bytes"].as_u64().is_some_and(|b| b > 0), "{s}");
    assert_eq!(s["limit_bytes"], 64 * 1024 * 1024);

    let page = http(srv.admin, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("summary.json"));
    srv.trigger.trigger();
    srv.task.await.expect("server task");
}

#[tokio::test]
async fn the_admin_port_closes_with_the_server() {
    let srv = start().await;
    assert_eq!(http(srv.admin, "/readyz").await.status, 200);
    srv.trigger.trigger();
    srv.task.await.expect("server task");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match get(srv.admin, "/readyz").await {
            Err(_) => break,
            // Between the stop and the port's close, it says it is not ready.
            Ok(r) => assert_eq!(r.status, 503, "{}", r.body),
        }
        assert!(tokio::time::Instant::now() < deadline, "the admin port still answers 5 s after the server stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every metric name the prometheus `memcached_exporter` v0.16.0
/// (`pkg/exporter/exporter.go`, github.com/prometheus/memcached_exporter)
/// derives from the stats memcached 1.6.18 prints by default (`stats`,
/// `stats slabs`, `stats items`, `stats settings`, with items stored and the
/// LRU crawler on), as the exporter exposes them.
const EXPORTER_FED: &[&str] = &[
    "memcached_accepting_connections",
    "memcached_commands_total",
    "memcached_connections_listener_disabled_total",
    "memcached_connections_rejected_total",
    "memcached_connections_total",
    "memcached_connections_yielded_total",
    "memcached_current_bytes",
    "memcached_current_connections",
    "memcached_current_items",
    "memcached_direct_reclaims_total",
    "memcached_item_no_memory_total",
    "memcached_item_too_large_total",
    "memcached_items_evicted_total",
    "memcached_items_reclaimed_total",
    "memcached_items_total",
    "memcached_limit_bytes",
    "memcached_lru_crawler_enabled",
    "memcached_lru_crawler_hot_max_factor",
    "memcached_lru_crawler_hot_percent",
    "memcached_lru_crawler_items_checked_total",
    "memcached_lru_crawler_maintainer_thread",
    "memcached_lru_crawler_moves_to_cold_total",
    "memcached_lru_crawler_moves_to_warm_total",
    "memcached_lru_crawler_moves_within_lru_total",
    "memcached_lru_crawler_reclaimed_total",
    "memcached_lru_crawler_sleep",
    "memcached_lru_crawler_starts_total",
    "memcached_lru_crawler_to_crawl",
    "memcached_lru_crawler_warm_max_factor",
    "memcached_lru_crawler_warm_percent",
    "memcached_malloced_bytes",
    "memcached_max_connections",
    "memcached_process_system_cpu_seconds_total",
    "memcached_process_user_cpu_seconds_total",
    "memcached_read_bytes_total",
    "memcached_slab_chunk_size_bytes",
    "memcached_slab_chunks_free",
    "memcached_slab_chunks_free_end",
    "memcached_slab_chunks_per_page",
    "memcached_slab_chunks_used",
    "memcached_slab_cold_items",
    "memcached_slab_commands_total",
    "memcached_slab_current_chunks",
    "memcached_slab_current_items",
    "memcached_slab_current_pages",
    "memcached_slab_hot_age_seconds",
    "memcached_slab_hot_items",
    "memcached_slab_items_age_seconds",
    "memcached_slab_items_crawler_reclaimed_total",
    "memcached_slab_items_evicted_nonzero_total",
    "memcached_slab_items_evicted_time_seconds",
    "memcached_slab_items_evicted_total",
    "memcached_slab_items_evicted_unfetched_total",
    "memcached_slab_items_expired_unfetched_total",
    "memcached_slab_items_moves_to_cold",
    "memcached_slab_items_moves_to_warm",
    "memcached_slab_items_moves_within_lru",
    "memcached_slab_items_outofmemory_total",
    "memcached_slab_items_reclaimed_total",
    "memcached_slab_items_tailrepairs_total",
    "memcached_slab_lru_hits_total",
    "memcached_slab_mem_requested_bytes",
    "memcached_slab_warm_age_seconds",
    "memcached_slab_warm_items",
    "memcached_time_seconds",
    "memcached_up",
    "memcached_uptime_seconds",
    "memcached_version",
    "memcached_written_bytes_total",
];

/// The rest of the exporter's (v0.16.0) names: fed only by memcached's
/// extstore (`extstore_limit_maxbytes` printed), its proxy mode
/// (`proxy_backend_total` printed) or `-o temporary_ttl` (`number_temp`),
/// none of which memcached 1.6.18 or memshard prints by default.
const EXPORTER_NOT_FED: &[&str] = &[
    "memcached_extstore_bytes_evicted_total",
    "memcached_extstore_bytes_fragmented",
    "memcached_extstore_bytes_limit",
    "memcached_extstore_bytes_read_total",
    "memcached_extstore_bytes_used",
    "memcached_extstore_bytes_written_total",
    "memcached_extstore_compact_lost_total",
    "memcached_extstore_compact_rescued_total",
    "memcached_extstore_compact_skipped_total",
    "memcached_extstore_io_queue_depth",
    "memcached_extstore_objects_evicted_total",
    "memcached_extstore_objects_read_total",
    "memcached_extstore_objects_used",
    "memcached_extstore_objects_written_total",
    "memcached_extstore_pages_allocated_total",
    "memcached_extstore_pages_evicted_total",
    "memcached_extstore_pages_free",
    "memcached_extstore_pages_reclaimed_total",
    "memcached_extstore_pages_used",
    "memcached_proxy_backend_failed",
    "memcached_proxy_backend_marked_bad_total",
    "memcached_proxy_backend_total",
    "memcached_proxy_config_cron_fails_total",
    "memcached_proxy_config_cron_runs_total",
    "memcached_proxy_config_reload_fails_total",
    "memcached_proxy_config_reloads_total",
    "memcached_proxy_conn_errors_total",
    "memcached_proxy_conn_oom_total",
    "memcached_proxy_conn_requests_total",
    "memcached_proxy_req_active",
    "memcached_proxy_request_failed_depth_total",
    "memcached_round_robin_fallback_total",
    "memcached_slab_temporary_items",
    "memcached_unexpected_napi_ids_total",
];

#[tokio::test]
async fn metric_names_are_the_exporters() {
    let srv = start().await;
    // Items in two classes, so every per-slab metric has a class to show.
    let big = vec![b'v'; 2000];
    let mut wire = b"set small 0 0 1\r\n1\r\nget small\r\n".to_vec();
    wire.extend_from_slice(format!("set big 0 0 {}\r\n", big.len()).as_bytes());
    wire.extend_from_slice(&big);
    wire.extend_from_slice(b"\r\n");
    ask(srv.addr, &wire, b"END\r\nSTORED\r\n").await;
    let emitted = sample_names(&metrics(srv.admin).await);
    let fed: BTreeSet<String> = EXPORTER_FED.iter().map(|n| (*n).to_owned()).collect();
    let all: BTreeSet<String> = fed.iter().cloned().chain(EXPORTER_NOT_FED.iter().map(|n| (*n).to_owned())).collect();
    assert_eq!(all.len(), 103, "the exporter v0.16.0 describes 103 metrics");
    let missing: Vec<&String> = fed.difference(&emitted).collect();
    assert!(missing.is_empty(), "exporter metrics not emitted: {missing:?}");
    let foreign: Vec<&String> = emitted.difference(&all).collect();
    assert!(foreign.is_empty(), "names the exporter does not have: {foreign:?}");
    srv.trigger.trigger();
    srv.task.await.expect("server task");
}
