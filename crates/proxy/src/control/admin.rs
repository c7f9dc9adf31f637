//! What the proxy shows on its admin port (`memshard proxy --admin ADDR`):
//! Prometheus metrics per pool and per server, where a key lives, the
//! configuration in force, the hot keys and the dashboard's summary.
//!
//! Everything is read from the counters the data path keeps anyway (the
//! same atomics as twemproxy's stats document) and from the published
//! server sets; a scrape takes no lock the data path takes, and the hot-key
//! sketch is read under its stripes' locks, which workers only ever
//! `try_lock`.

use crate::control::hotkeys::Estimate;
use crate::control::pool::Pool;
use crate::control::reload::{ConfigInfo, SharedInfo};
use crate::control::servers::{Server, ServerSet};
use crate::control::stats::LATENCY_BOUNDS_US;
use arc_swap::ArcSwap;
use memshard_admin::{Exposition, Source};
use memshard_net::Shutdown;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Hot keys per pool on `/metrics`: few, so label cardinality stays fixed.
const METRIC_HOT_KEYS: usize = 5;

/// Hot keys per pool on `/hotkeys` and the dashboard.
const LISTED_HOT_KEYS: usize = 50;

/// The proxy as its admin port sees it.
pub(crate) struct ProxyAdmin {
    pub(crate) registry: Arc<ArcSwap<Vec<Arc<Pool>>>>,
    pub(crate) info: SharedInfo,
    pub(crate) started: Instant,
    /// Worker threads per pool listener.
    pub(crate) workers: usize,
    pub(crate) shutdown: Shutdown,
}

fn r(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn g(c: &AtomicI64) -> f64 {
    c.load(Ordering::Relaxed).max(0) as f64
}

/// A server's state: `ejected` (out of the ring), `restarting` (said
/// goodbye; its keys wait for it), `leaving` (removed by a reload, kept
/// while the change settles) or `up`.
fn state(set: &ServerSet, at: usize, s: &Server) -> &'static str {
    if at >= set.ring_len {
        "leaving"
    } else if s.health.is_ejected() {
        "ejected"
    } else if s.health.is_restarting() {
        "restarting"
    } else {
        "up"
    }
}

/// Each ring server's share of the keys (0 for one out of the ring).
fn shares(set: &ServerSet) -> Vec<f64> {
    let mut out = vec![0.0; set.servers.len()];
    if let Some(ring) = set.ring() {
        for (i, share) in ring.shares() {
            if let Some(o) = out.get_mut(i) {
                *o = share;
            }
        }
    }
    out
}

fn hot_json(top: &[Estimate]) -> Value {
    top.iter()
        .map(|e| json!({ "key": String::from_utf8_lossy(&e.key), "count": e.count, "error": e.error }))
        .collect::<Vec<_>>()
        .into()
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl ProxyAdmin {
    /// The pools in force, by name.
    fn pools(&self) -> Vec<Arc<Pool>> {
        let mut pools: Vec<Arc<Pool>> = self.registry.load().to_vec();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools
    }

    fn pool_metrics(&self, e: &mut Exposition, pool: &Pool) {
        let st = &pool.stats;
        let p = [("pool", pool.name.as_str())];
        e.gauge("memshard_proxy_client_connections", "Client connections open now.", &p, g(&st.client_connections));
        e.counter(
            "memshard_proxy_client_connections_accepted",
            "Client connections accepted.",
            &p,
            r(&pool.conns.total_connections),
        );
        for (kind, c) in [("eof", &st.client_eof), ("error", &st.client_err)] {
            e.counter(
                "memshard_proxy_client_errors",
                "Client connections ended by the client (eof) or an error.",
                &[("pool", &pool.name), ("kind", kind)],
                r(c),
            );
        }
        e.counter("memshard_proxy_forward_errors", "Requests answered with SERVER_ERROR.", &p, r(&st.forward_error));
        e.counter(
            "memshard_proxy_fragments",
            "Fragments of multi-key requests split over servers.",
            &p,
            r(&st.fragments),
        );
        e.counter("memshard_proxy_ejections", "Servers ejected from the pool's ring.", &p, r(&st.server_ejects));
        let set = pool.servers();
        if set.replicas() > 1 {
            e.counter(
                "memshard_proxy_replica_failovers",
                "Requests answered by a later owner after a miss or failure on an earlier one.",
                &p,
                r(&st.replica_failovers),
            );
            e.counter(
                "memshard_proxy_replica_fills",
                "Items written back to owners that missed a read.",
                &p,
                r(&st.replica_fills),
            );
            e.counter(
                "memshard_proxy_replica_syncs",
                "Conditional writes copied from the owner that ran them to the others.",
                &p,
                r(&st.replica_syncs),
            );
        }
        let sides = [
            ("clients", set.tls.listen.as_ref().map(|t| t.stats())),
            ("servers", set.tls.servers.as_ref().map(|t| t.stats())),
        ];
        for (side, stats) in sides {
            let Some(t) = stats else { continue };
            let l = [("pool", pool.name.as_str()), ("side", side)];
            e.counter(
                "memshard_proxy_tls_handshakes",
                "TLS handshakes completed, with clients or with servers.",
                &l,
                r(&t.handshakes),
            );
            e.counter(
                "memshard_proxy_tls_handshake_errors",
                "TLS handshakes that failed: not TLS, a refused or missing certificate, a stall.",
                &l,
                r(&t.handshake_errors),
            );
            for (outcome, c) in [("ok", &t.reloads), ("error", &t.reload_errors)] {
                e.counter(
                    "memshard_proxy_tls_reloads",
                    "Certificate reloads (file change or SIGHUP); on error the previous certificates stay.",
                    &[("pool", &pool.name), ("side", side), ("outcome", outcome)],
                    r(c),
                );
            }
            e.gauge(
                "memshard_proxy_tls_certificates_loaded_timestamp_seconds",
                "When the certificates in use were loaded (unix seconds).",
                &l,
                r(&t.loaded_at) as f64,
            );
        }
        let shares = shares(&set);
        for &i in &set.stats_order {
            let s = &set.servers[i];
            self.server_metrics(e, pool, &set, i, s, shares[i]);
        }
        for (rank, hot) in pool.hot_keys.iter().flat_map(|h| h.top(METRIC_HOT_KEYS)).enumerate() {
            let rank = (rank + 1).to_string();
            let key = String::from_utf8_lossy(&hot.key);
            e.gauge(
                "memshard_proxy_hot_key_requests",
                "Estimated requests for the pool's most requested keys since start (sampled; top 5).",
                &[("pool", &pool.name), ("rank", &rank), ("key", &key)],
                hot.count as f64,
            );
        }
    }

    fn server_metrics(&self, e: &mut Exposition, pool: &Pool, set: &ServerSet, at: usize, s: &Server, share: f64) {
        let st = &s.stats;
        let l = [("pool", pool.name.as_str()), ("server", s.addr.as_str())];
        e.counter("memshard_proxy_server_requests", "Requests sent to the server.", &l, r(&st.requests));
        e.counter("memshard_proxy_server_responses", "Answers received from the server.", &l, r(&st.responses));
        for (kind, c) in [("eof", &st.server_eof), ("error", &st.server_err), ("timeout", &st.server_timedout)] {
            e.counter(
                "memshard_proxy_server_errors",
                "Requests that failed: the server closed (eof), refused or garbled (error), or did not answer in time (timeout).",
                &[("pool", &pool.name), ("server", &s.addr), ("kind", kind)],
                r(c),
            );
        }
        e.counter("memshard_proxy_server_ejections", "Times the server was ejected.", &l, r(&st.ejections));
        let now = state(set, at, s);
        e.gauge(
            "memshard_proxy_server_ejected",
            "1 while the server is out of the ring.",
            &l,
            f64::from(u8::from(now == "ejected")),
        );
        for name in ["up", "ejected", "restarting", "leaving"] {
            e.gauge(
                "memshard_proxy_server_state",
                "The server's state: 1 for the one it is in.",
                &[("pool", &pool.name), ("server", &s.addr), ("state", name)],
                f64::from(u8::from(now == name)),
            );
        }
        e.counter("memshard_proxy_server_get_hits", "Values the server returned to gets.", &l, r(&st.get_hits));
        e.counter("memshard_proxy_server_get_misses", "Keys of gets the server did not have.", &l, r(&st.get_misses));
        e.counter("memshard_proxy_server_request_bytes", "Request bytes sent to the server.", &l, r(&st.request_bytes));
        e.counter(
            "memshard_proxy_server_response_bytes",
            "Answer bytes received from the server.",
            &l,
            r(&st.response_bytes),
        );
        e.gauge(
            "memshard_proxy_server_connections",
            "Connections to the server open now.",
            &l,
            g(&st.server_connections),
        );
        e.gauge(
            "memshard_proxy_server_in_queue",
            "Requests sent to the server and not answered yet.",
            &l,
            g(&st.in_queue),
        );
        e.gauge("memshard_proxy_server_ring_share", "The server's share of the ring's key space.", &l, share);
        let (counts, sum) = st.latency.cumulative();
        let buckets = LATENCY_BOUNDS_US.iter().map(|b| *b as f64 / 1e6).chain([f64::INFINITY]).zip(counts).collect();
        e.histogram(
            "memshard_proxy_server_latency_seconds",
            "Time from a request's queueing to its answer's arrival.",
            &l,
            sum,
            buckets,
        );
    }
}

impl Source for ProxyAdmin {
    fn role(&self) -> &'static str {
        "proxy"
    }

    fn metrics(&self) -> String {
        let mut e = Exposition::default();
        let info = ConfigInfo::read(&self.info);
        let pools = self.pools();
        e.gauge(
            "memshard_proxy_build_info",
            "The running memshard's version.",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        e.gauge(
            "memshard_proxy_uptime_seconds",
            "Seconds since the proxy started.",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
        e.gauge("memshard_proxy_workers", "Worker threads per pool listener.", &[], self.workers as f64);
        let active: u64 = pools.iter().map(|p| r(&p.conns.active_workers)).sum();
        e.gauge(
            "memshard_proxy_workers_active",
            "Worker threads taking connections now, all pools.",
            &[],
            active as f64,
        );
        e.gauge(
            "memshard_proxy_config_generation",
            "1 for the configuration started with, +1 per reload applied.",
            &[],
            info.generation as f64,
        );
        for (outcome, n) in [("success", info.reloads), ("failure", info.reloads_failed)] {
            e.counter(
                "memshard_proxy_config_reloads",
                "Configuration reloads, applied or refused.",
                &[("outcome", outcome)],
                n,
            );
        }
        let ok = info.last_reload.is_empty() || info.last_reload == "ok";
        e.gauge(
            "memshard_proxy_config_last_reload_success",
            "0 when the last reload was refused (the running configuration stays).",
            &[],
            f64::from(u8::from(ok)),
        );
        e.gauge(
            "memshard_proxy_config_loaded_timestamp_seconds",
            "When the configuration in force was applied.",
            &[],
            info.loaded_at as f64,
        );
        for pool in &pools {
            self.pool_metrics(&mut e, pool);
        }
        e.render()
    }

    fn ready(&self) -> Result<(), String> {
        if self.shutdown.is_triggered() {
            return Err("stopping: draining client connections".to_owned());
        }
        if self.registry.load().is_empty() {
            return Err("no pool is serving yet".to_owned());
        }
        Ok(())
    }

    fn ring(&self, key: &str) -> Option<Value> {
        let pools: Vec<Value> = self
            .pools()
            .iter()
            .map(|pool| {
                let set = pool.servers();
                let Some(ring) = set.ring() else {
                    return json!({ "pool": pool.name, "owners": [], "detail": "the pool has found no servers yet" });
                };
                let owner = |i: usize| {
                    let s = &set.servers[i];
                    let address = s.target.current().and_then(|(a, _)| a.first().map(ToString::to_string));
                    json!({ "name": s.addr, "ring_name": s.name, "address": address, "state": state(&set, i, s) })
                };
                let owners: Vec<Value> = ring.servers_for(key.as_bytes(), set.replicas()).map(owner).collect();
                let mut answer = json!({
                    "pool": pool.name,
                    "hash": ring.key_hash(key.as_bytes()),
                    "hashed": String::from_utf8_lossy(ring.hashed_bytes(key.as_bytes())),
                    "hash_function": set.cfg.hash.to_string(),
                    "distribution": ring.distribution().name(),
                    "owners": owners,
                });
                if let Some(settle) = set.settling(tokio::time::Instant::now()) {
                    let before: Vec<Value> = settle.previous_owners(key.as_bytes()).map(owner).collect();
                    answer["previous_owners"] = before.into();
                }
                answer
            })
            .collect();
        Some(json!({ "key": key, "pools": pools }))
    }

    fn config(&self) -> Value {
        let info = ConfigInfo::read(&self.info);
        json!({
            "generation": info.generation,
            "sha256": info.sha256,
            "loaded_at": info.loaded_at,
            "file": info.file,
            "reloads": info.reloads,
            "reloads_failed": info.reloads_failed,
            "last_reload": info.last_reload,
            "text": info.text.as_deref(),
        })
    }

    fn hotkeys(&self) -> Option<Value> {
        let pools: Vec<Value> = self
            .pools()
            .iter()
            .map(|p| {
                let top = p.hot_keys.as_ref().map(|h| h.top(LISTED_HOT_KEYS)).unwrap_or_default();
                json!({ "pool": p.name, "keys": hot_json(&top) })
            })
            .collect();
        Some(json!({
            "sampled_one_in": crate::control::hotkeys::SAMPLE_EVERY,
            "detail": "estimated requests since start: at least the true count minus error, at most the count",
            "pools": pools,
        }))
    }

    fn summary(&self) -> Value {
        let pools: Vec<Value> = self
            .pools()
            .iter()
            .map(|pool| {
                let set = pool.servers();
                let shares = shares(&set);
                let servers: Vec<Value> = set
                    .stats_order
                    .iter()
                    .map(|&i| {
                        let s = &set.servers[i];
                        let st = &s.stats;
                        json!({
                            "name": s.addr,
                            "state": state(&set, i, s),
                            "requests": r(&st.requests),
                            "hits": r(&st.get_hits),
                            "misses": r(&st.get_misses),
                            "errors": r(&st.server_eof) + r(&st.server_err) + r(&st.server_timedout),
                            "latency": st.latency.cumulative().0,
                            "ring_share": shares[i],
                        })
                    })
                    .collect();
                let hot = pool.hot_keys.as_ref().map(|h| hot_json(&h.top(10)));
                json!({ "name": pool.name, "servers": servers, "hotkeys": hot })
            })
            .collect();
        let bounds: Vec<f64> = LATENCY_BOUNDS_US.iter().map(|b| *b as f64 / 1e6).collect();
        json!({
            "role": "proxy",
            "name": crate::control::stats::hostname(),
            "uptime": self.started.elapsed().as_secs(),
            "time": epoch_ms(),
            "latency_bounds": bounds,
            "pools": pools,
        })
    }
}
