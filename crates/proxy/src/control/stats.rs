//! twemproxy's stats: the same JSON document on the stats port, with the same
//! field names and order (twemproxy.md §4), so existing exporters keep working.
//!
//! Counters are relaxed atomics updated where things happen; the document is
//! built from their live values on every stats connection (twemproxy may lag
//! by one `-i` interval; we never do).

use crate::control::reload::ConfigInfo;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counters of one backend server.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub(crate) struct ServerStats {
    pub(crate) server_eof: AtomicU64,
    pub(crate) server_err: AtomicU64,
    pub(crate) server_timedout: AtomicU64,
    pub(crate) server_connections: AtomicI64,
    pub(crate) server_ejected_at: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) request_bytes: AtomicU64,
    pub(crate) responses: AtomicU64,
    pub(crate) response_bytes: AtomicU64,
    pub(crate) in_queue: AtomicI64,
    pub(crate) in_queue_bytes: AtomicI64,
    /// memshard's own (the admin port's metrics, not the stats document).
    pub(crate) get_hits: AtomicU64,
    pub(crate) get_misses: AtomicU64,
    pub(crate) ejections: AtomicU64,
    pub(crate) latency: Latency,
}

/// Upper bounds of the latency buckets: powers of two from 32 µs to about
/// 2.1 s (a bucket index is a leading-zero count, no search), then +Inf.
pub(crate) const LATENCY_BOUNDS_US: [u64; 17] = {
    let mut b = [0u64; 17];
    let mut i = 0;
    while i < 17 {
        b[i] = 32 << i;
        i += 1;
    }
    b
};

/// Buckets: one per bound, and the last for everything above.
pub(crate) const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// The bucket of a latency of `us` microseconds.
pub(crate) fn latency_bucket(us: u64) -> usize {
    // 0..=32 → 0, 33..=64 → 1, …: the bit length of us-1, less 5.
    let bits = 64 - us.saturating_sub(1).leading_zeros() as usize;
    bits.saturating_sub(5).min(LATENCY_BUCKETS - 1)
}

/// How long a server took to answer, from the request's queueing to its
/// answer's arrival: counts per bucket (not cumulative) and the sum.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    pub(crate) buckets: [AtomicU64; LATENCY_BUCKETS],
    pub(crate) sum_us: AtomicU64,
}

impl Latency {
    /// Cumulative counts per bound (the last is the total) and the sum in
    /// seconds, as a Prometheus histogram has them.
    pub(crate) fn cumulative(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let counts = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        (counts, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// Counters of one pool.
#[derive(Debug, Default)]
pub(crate) struct PoolStats {
    pub(crate) client_eof: AtomicU64,
    pub(crate) client_err: AtomicU64,
    pub(crate) client_connections: AtomicI64,
    pub(crate) server_ejects: AtomicU64,
    pub(crate) forward_error: AtomicU64,
    pub(crate) fragments: AtomicU64,
    /// Replicated pools (`replicas` above 1) only: see [`REPLICA_FIELDS`].
    pub(crate) replica_failovers: AtomicU64,
    pub(crate) replica_fills: AtomicU64,
    pub(crate) replica_syncs: AtomicU64,
    pub(crate) replica_ejects: AtomicU64,
}

/// Every field of the stats document with what it counts, as `nutcracker
/// -D` prints them (`memshard proxy -D`).
pub(crate) const POOL_FIELDS: [(&str, &str); 6] = [
    ("client_eof", "# eof on client connections"),
    ("client_err", "# errors on client connections"),
    ("client_connections", "# active client connections"),
    ("server_ejects", "# times backend server was ejected"),
    ("forward_error", "# times we encountered a forwarding error"),
    ("fragments", "# fragments created from a multi-vector request"),
];

/// The pool fields a replicated pool adds to the document (a pool with one
/// owner per key shows twemproxy's fields alone).
pub(crate) const REPLICA_FIELDS: [(&str, &str); 4] = [
    ("replica_failovers", "# requests answered by a later owner after a miss or failure on an earlier one"),
    ("replica_fills", "# items written back to owners that missed a read"),
    ("replica_syncs", "# conditional writes copied from the owner that ran them to the others"),
    ("replica_ejects", "# owners ejected for missing a write another owner took"),
];

/// The server fields of the stats document.
pub(crate) const SERVER_FIELDS: [(&str, &str); 13] = [
    ("server_eof", "# eof on server connections"),
    ("server_err", "# errors on server connections"),
    ("server_timedout", "# timeouts on server connections"),
    ("server_connections", "# active server connections"),
    ("server_ejected_at", "timestamp when server was ejected in usec since epoch"),
    ("requests", "# requests"),
    ("request_bytes", "total request bytes"),
    ("responses", "# responses"),
    ("response_bytes", "total response bytes"),
    ("in_queue", "# requests in incoming queue"),
    ("in_queue_bytes", "current request bytes in incoming queue"),
    ("out_queue", "# requests in outgoing queue"),
    ("out_queue_bytes", "current request bytes in outgoing queue"),
];

/// nutcracker's `-D` text: the pool and server fields of the stats
/// document and what each counts.
pub fn describe_stats() -> String {
    let mut s = String::from(concat!("This is memshard-proxy-", env!("CARGO_PKG_VERSION"), "\n\npool stats:\n"));
    for (name, what) in POOL_FIELDS {
        let _ = writeln!(s, "  {name:<20}\"{what}\"");
    }
    s.push_str("\nreplicated pool stats (replicas above 1):\n");
    for (name, what) in REPLICA_FIELDS {
        let _ = writeln!(s, "  {name:<20}\"{what}\"");
    }
    s.push_str("\nserver stats:\n");
    for (name, what) in SERVER_FIELDS {
        let _ = writeln!(s, "  {name:<20}\"{what}\"");
    }
    s
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn gauge(c: &AtomicI64, n: i64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Microseconds since the epoch, for `server_ejected_at`.
pub(crate) fn now_usec() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Everything the stats document needs about one pool.
pub(crate) struct PoolView<'a> {
    pub(crate) name: &'a str,
    pub(crate) stats: &'a PoolStats,
    /// (stats name, counters) in twemproxy's server order.
    pub(crate) servers: Vec<(&'a str, &'a ServerStats)>,
    /// Whether the pool has more than one owner per key.
    pub(crate) replicated: bool,
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// JSON string escaping for names from the config file.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The stats document, one line ending in `}\n`.
pub(crate) fn document(
    started: Instant,
    total_conns: u64,
    curr_conns: i64,
    config: &ConfigInfo,
    pools: &[PoolView<'_>],
) -> String {
    let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let g = |c: &AtomicI64| c.load(Ordering::Relaxed).max(0);
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut s = String::with_capacity(1024);
    let _ = write!(
        s,
        "{{\"service\":\"nutcracker\", \"source\":{}, \"version\":{}, \"uptime\":{}, \"timestamp\":{}, \"total_connections\":{}, \"curr_connections\":{}",
        quote(&hostname()),
        quote(concat!("memshard-", env!("CARGO_PKG_VERSION"))),
        started.elapsed().as_secs(),
        ts,
        total_conns,
        curr_conns.max(0),
    );
    // memshard's own: the configuration in force and the reloads.
    let _ = write!(
        s,
        ", \"config_generation\":{}, \"config_sha256\":{}, \"config_loaded_at\":{}, \"reloads\":{}, \"reloads_failed\":{}, \"last_reload\":{}",
        config.generation,
        quote(&config.sha256),
        config.loaded_at,
        config.reloads,
        config.reloads_failed,
        quote(&config.last_reload),
    );
    for p in pools {
        let st = p.stats;
        let _ = write!(
            s,
            ", {}: {{\"client_eof\":{}, \"client_err\":{}, \"client_connections\":{}, \"server_ejects\":{}, \"forward_error\":{}, \"fragments\":{}",
            quote(p.name),
            r(&st.client_eof),
            r(&st.client_err),
            g(&st.client_connections),
            r(&st.server_ejects),
            r(&st.forward_error),
            r(&st.fragments),
        );
        if p.replicated {
            let _ = write!(
                s,
                ", \"replica_failovers\":{}, \"replica_fills\":{}, \"replica_syncs\":{}, \"replica_ejects\":{}",
                r(&st.replica_failovers),
                r(&st.replica_fills),
                r(&st.replica_syncs),
                r(&st.replica_ejects),
            );
        }
        for (name, v) in &p.servers {
            let _ = write!(
                s,
                ", {}: {{\"server_eof\":{}, \"server_err\":{}, \"server_timedout\":{}, \"server_connections\":{}, \"server_ejected_at\":{}, \"requests\":{}, \"request_bytes\":{}, \"responses\":{}, \"response_bytes\":{}, \"in_queue\":{}, \"in_queue_bytes\":{}, \"out_queue\":0, \"out_queue_bytes\":0}}",
                quote(name),
                r(&v.server_eof),
                r(&v.server_err),
                r(&v.server_timedout),
                g(&v.server_connections),
                r(&v.server_ejected_at),
                r(&v.requests),
                r(&v.request_bytes),
                r(&v.responses),
                r(&v.response_bytes),
                g(&v.in_queue),
                g(&v.in_queue_bytes),
            );
        }
        s.push('}');
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_bucket_of_the_first_bound_above_them() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(32), 0);
        assert_eq!(latency_bucket(33), 1);
        assert_eq!(latency_bucket(64), 1);
        assert_eq!(latency_bucket(65), 2);
        for (i, b) in LATENCY_BOUNDS_US.iter().enumerate() {
            assert_eq!(latency_bucket(*b), i, "{b} µs");
            assert_eq!(latency_bucket(b + 1), i + 1, "{} µs", b + 1);
        }
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn the_description_names_every_field_of_the_document() {
        let (stats, server) = (PoolStats::default(), ServerStats::default());
        let doc = document(
            Instant::now(),
            0,
            0,
            &ConfigInfo::default(),
            &[PoolView { name: "p", stats: &stats, servers: vec![("s", &server)], replicated: true }],
        );
        let fields: Vec<&str> = doc.split('"').skip(1).step_by(2).collect();
        let all = || POOL_FIELDS.iter().chain(&REPLICA_FIELDS).chain(&SERVER_FIELDS);
        let described: Vec<&str> = all().map(|f| f.0).collect();
        for f in all() {
            assert!(fields.contains(&f.0), "{} is described but not in the document", f.0);
        }
        let pool_and_server = fields.iter().skip_while(|f| **f != "p").skip(1).filter(|f| **f != "s");
        for f in pool_and_server.filter(|f| f.chars().all(|c| c.is_ascii_lowercase() || c == '_')) {
            assert!(described.contains(f), "{f} is in the document but not described");
        }
        assert!(
            describe_stats()
                .contains("  server_ejected_at   \"timestamp when server was ejected in usec since epoch\"\n")
        );
    }
}
