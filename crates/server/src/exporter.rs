//! The server's `stats` as Prometheus metrics, named, labelled and described
//! exactly as the prometheus `memcached_exporter` v0.16.0
//! (`pkg/exporter/exporter.go`) names them, so dashboards built for memcached
//! read `GET /metrics` on the admin port without an exporter sidecar. Nothing
//! is counted twice: a scrape asks `stats`, `stats slabs`, `stats items` and
//! `stats settings` for their STAT lines, as the exporter does over the wire,
//! and maps name → value with the exporter's rules: the same metrics appear
//! (per-slab ones only for classes holding items, the `lru_crawler_*`
//! settings only while the crawler is on), `set` is `cmd_set` less the CAS
//! commands, `memcached_up` is 0 when a value does not parse. One difference
//! in form, none in names: the encoder writes OpenMetrics, where a counter's
//! samples must end in `_total`, so the few exporter counters whose names do
//! not (`memcached_uptime_seconds`, `memcached_slab_items_evicted_time_seconds`,
//! `memcached_slab_mem_requested_bytes`, `memcached_slab_items_moves_*`) and
//! the two CPU-seconds counters, whose values are fractional, are typed gauge.

use crate::Shared;
use memshard_admin::Exposition;
use memshard_proto::Stats;
use std::collections::HashMap;

/// One group's STAT lines: name → value, in the order printed.
#[derive(Debug, Default)]
pub(crate) struct Group {
    lines: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Group {
    fn parse(text: &[u8]) -> Group {
        let mut g = Group::default();
        for line in String::from_utf8_lossy(text).split("\r\n") {
            let Some((name, value)) = line.strip_prefix("STAT ").and_then(|l| l.split_once(' ')) else { continue };
            g.index.insert(name.to_owned(), g.lines.len());
            g.lines.push((name.to_owned(), value.to_owned()));
        }
        g
    }

    /// The value printed for `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.lines[i].1.as_str())
    }

    /// `name` as a number (0 when absent or not one).
    pub(crate) fn num(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// Every line, in order.
    pub(crate) fn lines(&self) -> &[(String, String)] {
        &self.lines
    }
}

/// What one scrape reads: the groups the exporter asks for, parsed as its
/// client parses them (`stats slabs`' `N:field` lines per class, its other
/// lines merged into the general ones; `stats items`' `items:N:field` per
/// class).
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    pub(crate) general: Group,
    pub(crate) settings: Group,
    /// The settings' answer as a client reads it (STAT lines and END).
    pub(crate) settings_text: Vec<u8>,
    slabs: Vec<(u32, Group)>,
    items: Vec<(u32, Group)>,
}

/// Runs `stats [group]` against the server, as a connection would.
fn ask(sh: &Shared, group: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    crate::stats_report::write(sh, &Stats { group, arg: None, arg2: None }, -1, &mut out);
    out
}

/// `lines` split by their `prefix`ed class number (`N:field` after `prefix`);
/// lines without one go to `rest`.
fn per_class(lines: &Group, prefix: &str, rest: &mut Group) -> Vec<(u32, Group)> {
    let mut classes: Vec<(u32, Group)> = Vec::new();
    for (name, value) in lines.lines() {
        let split = name.strip_prefix(prefix).and_then(|n| n.split_once(':'));
        let Some((id, field)) = split.and_then(|(id, f)| Some((id.parse::<u32>().ok()?, f))) else {
            rest.index.insert(name.clone(), rest.lines.len());
            rest.lines.push((name.clone(), value.clone()));
            continue;
        };
        let at = match classes.iter().position(|(c, _)| *c == id) {
            Some(at) => at,
            None => {
                classes.push((id, Group::default()));
                classes.len() - 1
            }
        };
        let g = &mut classes[at].1;
        g.index.insert(field.to_owned(), g.lines.len());
        g.lines.push((field.to_owned(), value.clone()));
    }
    classes
}

impl Scrape {
    /// Reads every group once.
    pub(crate) fn read(sh: &Shared) -> Scrape {
        let mut general = Group::parse(&ask(sh, None));
        let slabs = per_class(&Group::parse(&ask(sh, Some(b"slabs"))), "", &mut general);
        let items = per_class(&Group::parse(&ask(sh, Some(b"items"))), "items:", &mut general);
        let settings_text = ask(sh, Some(b"settings"));
        Scrape { general, settings: Group::parse(&settings_text), settings_text, slabs, items }
    }
}

/// How a value becomes a sample.
#[derive(Clone, Copy)]
enum Kind {
    /// A counter; the name is given without `_total`, the encoder adds it.
    Counter,
    /// A gauge, under its full name.
    Gauge,
    /// `yes`/`no` as 1/0 (a gauge).
    Bool,
    /// memcached's `seconds.microseconds` (a gauge, see the module note).
    Timeval,
}

/// (stat, kind, metric name, help), for one group. Names and help texts are
/// the exporter's (v0.16.0), typos included, so they match it byte for byte;
/// a counter's name is given without the `_total` the encoder adds.
type Table = [(&'static str, Kind, &'static str, &'static str)];

use Kind::{Bool, Counter, Gauge, Timeval};

#[rustfmt::skip]
const GENERAL: &Table = &[
    ("uptime", Gauge, "memcached_uptime_seconds", "Number of seconds since the server started."),
    ("time", Gauge, "memcached_time_seconds", "current UNIX time according to the server."),
    ("rusage_user", Timeval, "memcached_process_user_cpu_seconds_total", "Accumulated user time for this process."),
    ("rusage_system", Timeval, "memcached_process_system_cpu_seconds_total",
        "Accumulated system time for this process."),
    ("bytes", Gauge, "memcached_current_bytes", "Current number of bytes used to store items."),
    ("limit_maxbytes", Gauge, "memcached_limit_bytes", "Number of bytes this server is allowed to use for storage."),
    ("curr_items", Gauge, "memcached_current_items", "Current number of items stored by this instance."),
    ("total_items", Counter, "memcached_items", "Total number of items stored during the life of this instance."),
    ("bytes_read", Counter, "memcached_read_bytes", "Total number of bytes read by this server from network."),
    ("bytes_written", Counter, "memcached_written_bytes", "Total number of bytes sent by this server to network."),
    ("curr_connections", Gauge, "memcached_current_connections", "Current number of open connections."),
    ("total_connections", Counter, "memcached_connections",
        "Total number of connections opened since the server started running."),
    ("rejected_connections", Counter, "memcached_connections_rejected",
        "Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode."),
    ("conn_yields", Counter, "memcached_connections_yielded",
        "Total number of connections yielded running due to hitting the memcached's -R limit."),
    ("listen_disabled_num", Counter, "memcached_connections_listener_disabled",
        "Number of times that memcached has hit its connections limit and disabled its listener."),
    ("evictions", Counter, "memcached_items_evicted",
        "Total number of valid items removed from cache to free memory for new items."),
    ("reclaimed", Counter, "memcached_items_reclaimed",
        "Total number of times an entry was stored using memory from an expired entry."),
    ("store_too_large", Counter, "memcached_item_too_large",
        "The number of times an item exceeded the max-item-size when being stored."),
    ("store_no_memory", Counter, "memcached_item_no_memory",
        "The number of times an item could not be stored due to no more memory."),
    ("lru_crawler_starts", Counter, "memcached_lru_crawler_starts", "Times an LRU crawler was started."),
    ("direct_reclaims", Counter, "memcached_direct_reclaims",
        "Times worker threads had to directly reclaim or evict items."),
    ("crawler_items_checked", Counter, "memcached_lru_crawler_items_checked", "Total items examined by LRU Crawler."),
    ("crawler_reclaimed", Counter, "memcached_lru_crawler_reclaimed", "Total items freed by LRU Crawler."),
    ("moves_to_cold", Counter, "memcached_lru_crawler_moves_to_cold",
        "Total number of items moved from HOT/WARM to COLD LRU's."),
    ("moves_to_warm", Counter, "memcached_lru_crawler_moves_to_warm",
        "Total number of items moved from COLD to WARM LRU."),
    ("moves_within_lru", Counter, "memcached_lru_crawler_moves_within_lru",
        "Total number of items reshuffled within HOT or WARM LRU's."),
    // From `stats slabs`, whose global lines the exporter's client merges here.
    ("total_malloced", Gauge, "memcached_malloced_bytes", "Number of bytes of memory allocated to slab pages."),
    ("accepting_conns", Gauge, "memcached_accepting_connections",
        "The Memcached server is currently accepting new connections."),
];

/// `stats settings`: the crawler's lines count only while it is on.
const MAXCONNS: (&str, Kind, &str, &str) =
    ("maxconns", Gauge, "memcached_max_connections", "Maximum number of clients allowed.");
#[rustfmt::skip]
const LRU_CRAWLER: &Table = &[
    ("lru_crawler", Bool, "memcached_lru_crawler_enabled", "Whether the LRU crawler is enabled."),
    ("lru_crawler_sleep", Gauge, "memcached_lru_crawler_sleep", "Microseconds to sleep between LRU crawls."),
    ("lru_crawler_tocrawl", Gauge, "memcached_lru_crawler_to_crawl", "Max items to crawl per slab per run."),
    ("lru_maintainer_thread", Bool, "memcached_lru_crawler_maintainer_thread",
        "Split LRU mode and background threads."),
    ("hot_lru_pct", Gauge, "memcached_lru_crawler_hot_percent", "Percent of slab memory reserved for HOT LRU."),
    ("warm_lru_pct", Gauge, "memcached_lru_crawler_warm_percent", "Percent of slab memory reserved for WARM LRU."),
    ("hot_max_factor", Gauge, "memcached_lru_crawler_hot_max_factor", "Set idle age of HOT LRU to COLD age * this"),
    ("warm_max_factor", Gauge, "memcached_lru_crawler_warm_max_factor", "Set idle age of WARM LRU to COLD age * this"),
];

/// `stats items`, per class (label `slab`); every line optional.
#[rustfmt::skip]
const ITEMS: &Table = &[
    ("number", Gauge, "memcached_slab_current_items", "Number of items currently stored in this slab class."),
    ("age", Gauge, "memcached_slab_items_age_seconds", "Number of seconds the oldest item has been in the slab class."),
    ("crawler_reclaimed", Counter, "memcached_slab_items_crawler_reclaimed",
        "Number of items freed by the LRU Crawler."),
    ("evicted", Counter, "memcached_slab_items_evicted",
        "Total number of times an item had to be evicted from the LRU before it expired."),
    ("evicted_nonzero", Counter, "memcached_slab_items_evicted_nonzero",
        concat!("Total number of times an item which had an explicit expire time set ",
            "had to be evicted from the LRU before it expired.")),
    ("evicted_time", Gauge, "memcached_slab_items_evicted_time_seconds",
        "Seconds since the last access for the most recent item evicted from this class."),
    ("evicted_unfetched", Counter, "memcached_slab_items_evicted_unfetched",
        "Total nmber of items evicted and never fetched."),
    ("expired_unfetched", Counter, "memcached_slab_items_expired_unfetched",
        "Total number of valid items evicted from the LRU which were never touched after being set."),
    ("outofmemory", Counter, "memcached_slab_items_outofmemory",
        "Total number of items for this slab class that have triggered an out of memory error."),
    ("reclaimed", Counter, "memcached_slab_items_reclaimed", "Total number of items reclaimed."),
    ("tailrepairs", Counter, "memcached_slab_items_tailrepairs",
        "Total number of times the entries for a particular ID need repairing."),
    ("mem_requested", Gauge, "memcached_slab_mem_requested_bytes",
        "Number of bytes of memory actual items take up within a slab."),
    ("moves_to_cold", Gauge, "memcached_slab_items_moves_to_cold", "Number of items moved from HOT or WARM into COLD."),
    ("moves_to_warm", Gauge, "memcached_slab_items_moves_to_warm", "Number of items moves from COLD into WARM."),
    ("moves_within_lru", Gauge, "memcached_slab_items_moves_within_lru",
        "Number of times active items were bumped within HOT or WARM."),
    ("number_hot", Gauge, "memcached_slab_hot_items", "Number of items presently stored in the HOT LRU."),
    ("number_warm", Gauge, "memcached_slab_warm_items", "Number of items presently stored in the WARM LRU."),
    ("number_cold", Gauge, "memcached_slab_cold_items", "Number of items presently stored in the COLD LRU."),
    ("number_temp", Gauge, "memcached_slab_temporary_items", "Number of items presently stored in the TEMPORARY LRU."),
    ("age_hot", Gauge, "memcached_slab_hot_age_seconds", "Age of the oldest item in HOT LRU."),
    ("age_warm", Gauge, "memcached_slab_warm_age_seconds", "Age of the oldest item in HOT LRU."),
];
const LRU_HITS: [(&str, &str); 4] =
    [("hits_to_hot", "hot"), ("hits_to_warm", "warm"), ("hits_to_cold", "cold"), ("hits_to_temp", "temporary")];

/// `stats slabs`, per class (label `slab`).
#[rustfmt::skip]
const SLABS: &Table = &[
    ("chunk_size", Gauge, "memcached_slab_chunk_size_bytes",
        "Number of bytes allocated to each chunk within this slab class."),
    ("chunks_per_page", Gauge, "memcached_slab_chunks_per_page",
        "Number of chunks within a single page for this slab class."),
    ("total_pages", Gauge, "memcached_slab_current_pages", "Number of pages allocated to this slab class."),
    ("total_chunks", Gauge, "memcached_slab_current_chunks", "Number of chunks allocated to this slab class."),
    ("used_chunks", Gauge, "memcached_slab_chunks_used", "Number of chunks allocated to an item."),
    ("free_chunks", Gauge, "memcached_slab_chunks_free", "Number of chunks not yet allocated items."),
    ("free_chunks_end", Gauge, "memcached_slab_chunks_free_end",
        "Number of free chunks at the end of the last allocated page."),
    ("mem_requested", Gauge, "memcached_slab_mem_requested_bytes",
        "Number of bytes of memory actual items take up within a slab."),
];

const COMMANDS: &str = "memcached_commands";
const COMMANDS_HELP: &str = "Total number of all requests broken down by command (get, set, etc.) and status.";
const SLAB_COMMANDS: &str = "memcached_slab_commands";
const SLAB_COMMANDS_HELP: &str =
    "Total number of all requests broken down by command (get, set, etc.) and status per slab.";
const OPS: [&str; 6] = ["get", "delete", "incr", "decr", "cas", "touch"];

/// Builds one scrape's samples; remembers whether every value parsed.
struct Emit {
    e: Exposition,
    ok: bool,
}

impl Emit {
    /// `stat` of `g` as a sample of `name`, if `g` printed it (the exporter
    /// skips absent lines and fails the scrape on unparsable ones).
    fn one(&mut self, g: &Group, (stat, kind, name, help): (&str, Kind, &str, &str), labels: &[(&str, &str)]) {
        let Some(v) = g.get(stat) else { return };
        let value = match kind {
            Counter => match v.parse::<u64>() {
                Ok(n) => return self.e.counter(name, help, labels, n),
                Err(_) => None,
            },
            Gauge => v.parse::<f64>().ok(),
            Bool => match v {
                "yes" => Some(1.0),
                "no" => Some(0.0),
                _ => None,
            },
            Timeval => timeval(v),
        };
        match value {
            Some(x) => self.e.gauge(name, help, labels, x),
            None => self.ok = false,
        }
    }

    fn table(&mut self, g: &Group, table: &Table, labels: &[(&str, &str)]) {
        for row in table {
            self.one(g, *row, labels);
        }
    }

    /// A `commands_total` sample from `stat`, if printed.
    fn command(&mut self, g: &Group, stat: &str, family: (&str, &str), labels: &[(&str, &str)]) {
        let Some(v) = g.get(stat) else { return };
        match v.parse::<u64>() {
            Ok(n) => self.e.counter(family.0, family.1, labels, n),
            Err(_) => self.ok = false,
        }
    }

    /// `set` hits: `cmd_set` less the CAS commands memcached counts in it
    /// too (`cas_misses` only where the group prints it).
    fn sets(&mut self, g: &Group, cas: &[&str], family: (&str, &str), labels: &[(&str, &str)]) {
        let parsed: Option<Vec<u64>> =
            std::iter::once("cmd_set").chain(cas.iter().copied()).map(|s| g.get(s)?.parse().ok()).collect();
        match parsed {
            Some(v) => {
                let cas_total: u64 = v[1..].iter().sum();
                self.e.counter(family.0, family.1, labels, v[0].saturating_sub(cas_total));
            }
            None => self.ok = false,
        }
    }
}

/// memcached's `seconds.microseconds`, read as the exporter reads it.
fn timeval(v: &str) -> Option<f64> {
    let (s, us) = v.split_once('.')?;
    Some(s.parse::<f64>().ok()? + us.parse::<f64>().ok()? / 1_000_000.0)
}

/// The metrics of `scrape`, in the exporter's order.
pub(crate) fn render(scrape: &Scrape) -> String {
    let mut m = Emit { e: Exposition::default(), ok: true };
    let s = &scrape.general;
    let commands = (COMMANDS, COMMANDS_HELP);
    let version = s.get("version").unwrap_or("");
    m.e.gauge("memcached_version", "The version of this memcached server.", &[("version", version)], 1.0);
    for op in OPS {
        m.command(s, &format!("{op}_hits"), commands, &[("command", op), ("status", "hit")]);
        m.command(s, &format!("{op}_misses"), commands, &[("command", op), ("status", "miss")]);
    }
    m.command(s, "cas_badval", commands, &[("command", "cas"), ("status", "badval")]);
    m.command(s, "cmd_flush", commands, &[("command", "flush"), ("status", "hit")]);
    m.sets(s, &["cas_misses", "cas_hits", "cas_badval"], commands, &[("command", "set"), ("status", "hit")]);
    m.table(s, GENERAL, &[]);
    for (id, g) in &scrape.items {
        let slab = id.to_string();
        let l = [("slab", slab.as_str())];
        m.table(g, ITEMS, &l);
        for (stat, lru) in LRU_HITS {
            let row = (stat, Counter, "memcached_slab_lru_hits", "Number of get_hits to the LRU.");
            m.one(g, row, &[("slab", slab.as_str()), ("lru", lru)]);
        }
    }
    let slab_commands = (SLAB_COMMANDS, SLAB_COMMANDS_HELP);
    for (id, g) in &scrape.slabs {
        let slab = id.to_string();
        for op in OPS {
            m.command(g, &format!("{op}_hits"), slab_commands, &[("slab", &slab), ("command", op), ("status", "hit")]);
        }
        m.command(g, "cas_badval", slab_commands, &[("slab", &slab), ("command", "cas"), ("status", "badval")]);
        m.sets(
            g,
            &["cas_hits", "cas_badval"],
            slab_commands,
            &[("slab", &slab), ("command", "set"), ("status", "hit")],
        );
        m.table(g, SLABS, &[("slab", &slab)]);
    }
    m.one(&scrape.settings, MAXCONNS, &[]);
    if scrape.settings.get("lru_crawler") == Some("yes") {
        m.table(&scrape.settings, LRU_CRAWLER, &[]);
    }
    let up = if m.ok { 1.0 } else { 0.0 };
    m.e.gauge("memcached_up", "Could the memcached server be reached.", &[], up);
    m.e.render()
}

/// What a scrape says when the server is gone: only `memcached_up 0`.
pub(crate) fn render_down() -> String {
    let mut e = Exposition::default();
    e.gauge("memcached_up", "Could the memcached server be reached.", &[], 0.0);
    e.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServerConfig, exec::Exec};
    use memshard_net::ShutdownTrigger;
    use memshard_store::{Store, StoreConfig};

    fn server() -> Shared {
        let store = Store::new(StoreConfig::default()).expect("store");
        Shared::new(store, ServerConfig::default(), ShutdownTrigger::new().0)
    }

    /// Sends `wire` as one client would, every request in it.
    fn send(sh: &Shared, mut wire: &[u8]) {
        let mut out = Vec::new();
        while let Ok(Some((req, used))) = sh.decoder.decode(wire) {
            Exec::new(sh, -1).run(req, &mut out);
            wire = &wire[used..];
        }
    }

    /// The value of the sample `series` (name and labels as printed; a
    /// sample without labels may be printed with an empty `{}`).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(series)?;
            let rest = if series.ends_with('}') { rest } else { rest.strip_prefix("{}").unwrap_or(rest) };
            rest.strip_prefix(' ')?.parse().ok()
        })
    }

    #[test]
    fn items_and_commands_follow_the_counters() {
        let sh = server();
        let text = render(&Scrape::read(&sh));
        assert_eq!(value(&text, "memcached_up"), Some(1.0), "{text}");
        assert_eq!(value(&text, "memcached_current_items"), Some(0.0), "{text}");
        assert_eq!(value(&text, "memcached_version{version=\"1.6.18\"}"), Some(1.0), "{text}");
        assert!(!text.contains("memcached_slab_current_items"), "no class holds items yet: {text}");
        send(&sh, b"set a 0 0 1\r\nx\r\nget a\r\nget a\r\nget nope\r\ndelete nope\r\n");
        let text = render(&Scrape::read(&sh));
        assert_eq!(value(&text, "memcached_current_items"), Some(1.0), "{text}");
        assert_eq!(value(&text, "memcached_items_total"), Some(1.0), "{text}");
        let hits = "memcached_commands_total{command=\"get\",status=\"hit\"}";
        assert_eq!(value(&text, hits), Some(2.0), "{text}");
        assert_eq!(value(&text, "memcached_commands_total{command=\"get\",status=\"miss\"}"), Some(1.0));
        assert_eq!(value(&text, "memcached_commands_total{command=\"delete\",status=\"miss\"}"), Some(1.0));
        assert_eq!(value(&text, "memcached_commands_total{command=\"set\",status=\"hit\"}"), Some(1.0));
        assert_eq!(value(&text, "memcached_slab_current_items{slab=\"1\"}"), Some(1.0), "{text}");
        assert_eq!(value(&text, "memcached_slab_lru_hits_total{slab=\"1\",lru=\"cold\"}"), Some(2.0), "{text}");
        let slab_get = "memcached_slab_commands_total{slab=\"1\",command=\"get\",status=\"hit\"}";
        assert_eq!(value(&text, slab_get), Some(2.0), "{text}");
        assert_eq!(value(&text, "memcached_slab_chunks_used{slab=\"1\"}"), Some(1.0), "{text}");
        assert!(value(&text, "memcached_malloced_bytes").is_some_and(|v| v > 0.0), "{text}");
        assert_eq!(value(&text, "memcached_max_connections"), Some(1024.0), "{text}");
        assert_eq!(value(&text, "memcached_lru_crawler_enabled"), Some(1.0), "{text}");
    }

    #[test]
    fn cas_commands_are_not_counted_as_sets() {
        let sh = server();
        send(&sh, b"set a 0 0 1\r\nx\r\ncas a 0 0 1 999\r\ny\r\ncas b 0 0 1 1\r\ny\r\n");
        let text = render(&Scrape::read(&sh));
        assert_eq!(value(&text, "memcached_commands_total{command=\"set\",status=\"hit\"}"), Some(1.0), "{text}");
        assert_eq!(value(&text, "memcached_commands_total{command=\"cas\",status=\"badval\"}"), Some(1.0));
        assert_eq!(value(&text, "memcached_commands_total{command=\"cas\",status=\"miss\"}"), Some(1.0));
    }

    #[test]
    fn the_crawler_settings_go_with_the_crawler_and_help_texts_are_the_exporters() {
        let sh = server();
        sh.settings.lru_crawler.store(false, std::sync::atomic::Ordering::Relaxed);
        let text = render(&Scrape::read(&sh));
        assert!(!text.contains("memcached_lru_crawler_enabled"), "{text}");
        assert!(value(&text, "memcached_lru_crawler_reclaimed_total").is_some(), "a `stats` counter stays: {text}");
        assert!(text.contains("# HELP memcached_time_seconds current UNIX time according to the server.\n"));
        assert!(text.contains("# TYPE memcached_commands counter\n"), "{text}");
        assert!(value(&text, "memcached_process_user_cpu_seconds_total").is_some(), "{text}");
    }

    #[test]
    fn stat_lines_are_read_as_the_exporters_client_reads_them() {
        let g = Group::parse(b"STAT a 1\r\nSTAT 3:chunk_size 96\r\nSTAT items:3:number 2\r\nSTAT b x y\r\nEND\r\n");
        assert_eq!(g.get("a"), Some("1"));
        assert_eq!(g.get("b"), Some("x y"));
        let mut rest = Group::default();
        let slabs = per_class(&g, "", &mut rest);
        assert_eq!(slabs.len(), 1);
        assert_eq!(slabs[0].0, 3);
        assert_eq!(slabs[0].1.num("chunk_size"), 96);
        assert_eq!(rest.num("a"), 1);
        assert_eq!(timeval("1.500000"), Some(1.5));
        assert_eq!(timeval("nope"), None);
    }
}
