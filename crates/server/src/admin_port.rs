//! The server's side of the admin port (`memshard server --admin ADDR`):
//! [`memshard_admin::Source`] answered from the same `stats` lines a client
//! reads. `/metrics` is the `memcached_exporter`'s (see `exporter.rs`),
//! `/readyz` is ready while the server accepts, `/config` is `stats
//! settings` as an object with its sha256, `/summary.json` draws the server
//! as a pool of one on the dashboard. A server has no ring and tracks no hot
//! keys: those paths answer 404. The admin task runs on the runtime that runs
//! [`crate::run_with_admin`] (the control runtime), holds the server's state
//! weakly so it never keeps a stopped store alive, and stops when `run`
//! returns.

use crate::Shared;
use crate::exporter::{self, Scrape};
use memshard_admin::{Limits, Source};
use memshard_net::{Shutdown, ShutdownTrigger};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Weak};

/// The commands the dashboard counts as a server's requests: every `stats`
/// counter of a command, each command once (meta commands are counted in
/// these too; `cmd_meta` would count them twice).
const REQUESTS: [&str; 10] = [
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "cmd_flush",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
];

/// The server as the admin port sees it.
struct ServerSource {
    shared: Weak<Shared>,
    /// The server's own stop signal: set once it stops accepting.
    shutdown: Shutdown,
    /// Where the server listens (`127.0.0.1:11211`, a socket path).
    listen: String,
    /// The machine's name, or `listen` where it cannot be read.
    name: String,
}

/// Serves the admin port on `listener` until the returned trigger is
/// triggered or dropped.
pub(crate) fn start(
    listener: tokio::net::TcpListener,
    shared: &Arc<Shared>,
    shutdown: Shutdown,
    listen: String,
) -> ShutdownTrigger {
    let (stop, stopped) = ShutdownTrigger::new();
    let name = hostname().unwrap_or_else(|| listen.clone());
    let source = Arc::new(ServerSource { shared: Arc::downgrade(shared), shutdown, listen, name });
    tokio::spawn(async move {
        if let Err(e) = memshard_admin::run(listener, source, Limits::default(), stopped).await {
            tracing::error!(role = "server-admin", "admin port stopped: {e}");
        }
    });
    stop
}

/// The kernel's host name (Linux), trimmed; `None` if unreadable or empty.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `stats settings` as a JSON object (values as printed), with the sha256 of
/// the answer a client reads (its STAT lines and END) and generation 1: a
/// server's settings come from its flags, and the few that change at run
/// time change the hash, not the generation.
pub(crate) fn config(scrape: &Scrape) -> Value {
    let settings: Map<String, Value> =
        scrape.settings.lines().iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({
        "role": "server",
        "generation": 1,
        "sha256": hex(&Sha256::digest(&scrape.settings_text)),
        "settings": settings,
    })
}

/// The dashboard's document for a server: one pool named `server` holding
/// one server, this one.
pub(crate) fn summary(scrape: &Scrape, name: &str, listen: &str) -> Value {
    let s = &scrape.general;
    let requests: u64 = REQUESTS.iter().map(|r| s.num(r)).sum();
    let time_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    json!({
        "role": "server",
        "name": name,
        "uptime": s.num("uptime"),
        "time": u64::try_from(time_ms).unwrap_or(u64::MAX),
        "latency_bounds": [],
        "pools": [{
            "name": "server",
            "hotkeys": null,
            "servers": [{
                "name": listen,
                "address": listen,
                "state": "up",
                "requests": requests,
                "hits": s.num("get_hits"),
                "misses": s.num("get_misses"),
                "errors": 0,
                "latency": null,
                "ring_share": null,
                "items": s.num("curr_items"),
                "bytes": s.num("bytes"),
                "limit_bytes": s.num("limit_maxbytes"),
            }],
        }],
    })
}

impl ServerSource {
    fn scrape(&self) -> Option<Scrape> {
        self.shared.upgrade().map(|sh| Scrape::read(&sh))
    }
}

impl Source for ServerSource {
    fn role(&self) -> &'static str {
        "server"
    }

    fn metrics(&self) -> String {
        match self.scrape() {
            Some(s) => exporter::render(&s),
            None => exporter::render_down(),
        }
    }

    fn ready(&self) -> Result<(), String> {
        if self.shutdown.is_triggered() || self.shared.strong_count() == 0 {
            return Err("the server is shutting down: its listener is closed".to_owned());
        }
        Ok(())
    }

    fn ring(&self, _key: &str) -> Option<Value> {
        None
    }

    fn config(&self) -> Value {
        match self.scrape() {
            Some(s) => config(&s),
            None => json!({ "role": "server", "generation": 1, "error": "the server has stopped" }),
        }
    }

    fn hotkeys(&self) -> Option<Value> {
        None
    }

    fn summary(&self) -> Value {
        let scrape = self.scrape().unwrap_or_default();
        let mut v = summary(&scrape, &self.name, &self.listen);
        if self.shared.strong_count() == 0 {
            v["pools"][0]["servers"][0]["state"] = json!("down");
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerConfig;
    use memshard_store::{Store, StoreConfig};

    fn server() -> Shared {
        let store = Store::new(StoreConfig::default()).expect("store");
        Shared::new(store, ServerConfig::default(), ShutdownTrigger::new().0)
    }

    #[test]
    fn config_is_the_settings_with_their_hash() {
        let sh = server();
        let v = config(&Scrape::read(&sh));
        assert_eq!(v["settings"]["maxconns"], "1024");
        assert_eq!(v["settings"]["growth_factor"], "1.25");
        assert_eq!(v["generation"], 1);
        let sha = v["sha256"].as_str().expect("sha256");
        assert_eq!(sha.len(), 64);
        assert_eq!(config(&Scrape::read(&sh))["sha256"], sha, "same settings, same hash");
        sh.verbosity.store(1, std::sync::atomic::Ordering::Relaxed);
        assert_ne!(config(&Scrape::read(&sh))["sha256"], sha, "a changed setting changes it");
    }

    #[test]
    fn summary_counts_each_command_once() {
        let sh = server();
        let c = &sh.stats;
        for (counter, n) in [(&c.cmd_get, 5), (&c.get_hits, 3), (&c.get_misses, 2), (&c.cmd_set, 4), (&c.cmd_meta, 9)] {
            counter.store(n, std::sync::atomic::Ordering::Relaxed);
        }
        let v = summary(&Scrape::read(&sh), "host", "127.0.0.1:1");
        let s = &v["pools"][0]["servers"][0];
        assert_eq!(s["requests"], 9);
        assert_eq!((s["hits"].as_u64(), s["misses"].as_u64()), (Some(3), Some(2)));
        assert!(s["limit_bytes"].as_u64().is_some_and(|b| b > 0));
        assert_eq!(v["name"], "host");
        assert!(v["latency_bounds"].as_array().is_some_and(Vec::is_empty));
    }
}
