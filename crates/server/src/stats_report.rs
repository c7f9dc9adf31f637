//! The `stats` command and its groups, with memcached 1.6.18's names in
//! memcached's order, so the `memcached_exporter` and dashboards built on it
//! read memshard as they read memcached. Every name memcached prints is
//! printed; where memshard has no such mechanism (no libevent, no extstore,
//! no TLS yet, no slab mover) the value says so honestly (`none`, `no`, 0).
//! `stats items` and `stats slabs` are per memcached slab class, counted by
//! the store for the class each item would occupy (see
//! `memshard_store::classes`). `memshard_version` is memshard's own version.

use crate::Shared;
use crate::reply::{MEMSHARD_VERSION, VERSION, send};
use crate::stats::rusage;
use memshard_proto::number::parse_u32;
use memshard_proto::{Reply, Stats};
use memshard_store::ClassStats;
use memshard_store::classes::{SLAB_PAGE_SIZE, chunks_per_page, class_of};
use std::fmt::Display;
use std::sync::atomic::Ordering;

fn stat(out: &mut Vec<u8>, name: &str, value: impl Display) {
    send(out, Reply::Stat { name: name.as_bytes(), value: value.to_string().as_bytes() });
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(crate) fn write(sh: &Shared, req: &Stats<'_>, cfd: i32, out: &mut Vec<u8>) {
    let arg = req.arg;
    match req.group {
        None => general(sh, out),
        Some(b"reset") => {
            sh.stats.reset();
            sh.store.reset_class_stats();
            sh.detail.clear();
            send(out, Reply::Reset);
            return;
        }
        Some(b"settings") => settings(sh, out),
        Some(b"items") => items(sh, out),
        Some(b"slabs") => slabs(sh, out),
        // memcached's default: size tracking off.
        Some(b"sizes") => stat(out, "sizes_status", "disabled"),
        Some(b"conns") => sh.clients.report(cfd, sh.store.now() as u32, out),
        Some(b"detail") => {
            match arg {
                Some(b"on") => {
                    sh.settings.detail_enabled.store(true, Ordering::Relaxed);
                    send(out, Reply::Ok);
                }
                Some(b"off") => {
                    sh.settings.detail_enabled.store(false, Ordering::Relaxed);
                    send(out, Reply::Ok);
                }
                Some(b"dump") => sh.detail.dump(out),
                _ => send(out, Reply::ClientError(b"usage: stats detail on|off|dump")),
            }
            return;
        }
        Some(b"cachedump") => {
            cachedump(sh, req.arg.zip(req.arg2), out);
            return;
        }
        Some(_) => {
            send(out, Reply::Error);
            return;
        }
    }
    send(out, Reply::End);
}

fn general(sh: &Shared, out: &mut Vec<u8>) {
    let s = &sh.stats;
    let c = &sh.conns;
    let st = sh.store.stats();
    let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (user, sys) = rusage();
    stat(out, "pid", std::process::id());
    stat(out, "uptime", sh.started.elapsed().as_secs());
    stat(out, "time", crate::unix_now());
    stat(out, "version", VERSION);
    stat(out, "memshard_version", MEMSHARD_VERSION);
    stat(out, "libevent", "none");
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", format!("{user:.6}"));
    stat(out, "rusage_system", format!("{sys:.6}"));
    stat(out, "max_connections", sh.cfg.max_connections);
    stat(out, "curr_connections", r(&c.curr_connections));
    stat(out, "total_connections", r(&c.total_connections));
    stat(out, "rejected_connections", r(&c.rejected_connections));
    stat(out, "connection_structures", r(&c.curr_connections));
    for name in ["response_obj_oom", "response_obj_count", "response_obj_bytes", "read_buf_count", "read_buf_bytes"] {
        stat(out, name, 0);
    }
    stat(out, "read_buf_bytes_free", 0);
    stat(out, "read_buf_oom", 0);
    stat(out, "reserved_fds", 0);
    stat(out, "cmd_get", r(&s.cmd_get));
    stat(out, "cmd_set", r(&s.cmd_set));
    stat(out, "cmd_flush", r(&s.cmd_flush));
    stat(out, "cmd_touch", r(&s.cmd_touch));
    stat(out, "cmd_meta", r(&s.cmd_meta));
    stat(out, "get_hits", r(&s.get_hits));
    stat(out, "get_misses", r(&s.get_misses));
    stat(out, "get_expired", st.get_expired);
    stat(out, "get_flushed", st.get_flushed);
    stat(out, "delete_misses", r(&s.delete_misses));
    stat(out, "delete_hits", r(&s.delete_hits));
    stat(out, "incr_misses", r(&s.incr_misses));
    stat(out, "incr_hits", r(&s.incr_hits));
    stat(out, "decr_misses", r(&s.decr_misses));
    stat(out, "decr_hits", r(&s.decr_hits));
    stat(out, "cas_misses", r(&s.cas_misses));
    stat(out, "cas_hits", r(&s.cas_hits));
    stat(out, "cas_badval", r(&s.cas_badval));
    stat(out, "touch_hits", r(&s.touch_hits));
    stat(out, "touch_misses", r(&s.touch_misses));
    stat(out, "store_too_large", r(&s.store_too_large));
    stat(out, "store_no_memory", r(&s.store_no_memory));
    stat(out, "auth_cmds", 0);
    stat(out, "auth_errors", 0);
    if let Some(tls) = &sh.cfg.tls {
        let st = tls.stats();
        stat(out, "ssl_handshake_errors", memshard_tls::TlsStats::get(&st.handshake_errors));
        let since = crate::unix_now().saturating_sub(memshard_tls::TlsStats::get(&st.loaded_at));
        stat(out, "time_since_server_cert_refresh", since);
    }
    stat(out, "bytes_read", r(&s.bytes_read));
    stat(out, "bytes_written", r(&s.bytes_written));
    stat(out, "limit_maxbytes", st.limit_maxbytes);
    stat(out, "accepting_conns", 1);
    stat(out, "listen_disabled_num", 0);
    stat(out, "time_in_listen_disabled_us", 0);
    stat(out, "threads", sh.cfg.threads);
    stat(out, "conn_yields", 0);
    // The index grows as needed: its buckets (about 5 bytes each: a 4-byte
    // slot and a control byte), as a power of two.
    stat(out, "hash_power_level", (st.hash_bytes / 5).max(1).ilog2());
    stat(out, "hash_bytes", st.hash_bytes);
    stat(out, "hash_is_expanding", 0);
    for name in [
        "slab_reassign_rescues",
        "slab_reassign_chunk_rescues",
        "slab_reassign_evictions_nomem",
        "slab_reassign_inline_reclaim",
        "slab_reassign_busy_items",
        "slab_reassign_busy_deletes",
        "slab_reassign_running",
        "slabs_moved",
        "lru_crawler_running",
    ] {
        stat(out, name, 0);
    }
    stat(out, "lru_crawler_starts", 0);
    stat(out, "lru_maintainer_juggles", 0);
    stat(out, "malloc_fails", 0);
    stat(out, "log_worker_dropped", 0);
    stat(out, "log_worker_written", 0);
    stat(out, "log_watcher_skipped", sh.logger.skipped.load(Ordering::Relaxed));
    stat(out, "log_watcher_sent", sh.logger.sent.load(Ordering::Relaxed));
    stat(out, "log_watchers", sh.logger.watchers());
    stat(out, "unexpected_napi_ids", 0);
    stat(out, "round_robin_fallback", 0);
    stat(out, "bytes", st.bytes);
    stat(out, "curr_items", st.curr_items);
    stat(out, "total_items", st.total_items);
    stat(out, "slab_global_page_pool", 0);
    stat(out, "expired_unfetched", st.expired_unfetched);
    stat(out, "evicted_unfetched", st.evicted_unfetched);
    stat(out, "evicted_active", 0);
    stat(out, "evictions", st.evictions);
    stat(out, "reclaimed", st.reclaimed);
    stat(out, "crawler_reclaimed", st.crawler_reclaimed);
    stat(out, "crawler_items_checked", 0);
    for name in ["lrutail_reflocked", "moves_to_cold", "moves_to_warm", "moves_within_lru", "direct_reclaims"] {
        stat(out, name, 0);
    }
    stat(out, "lru_bumps_dropped", 0);
}

/// Where the server listens, as `stats settings` reports it.
fn listen_settings(sh: &Shared) -> (u16, String, String) {
    let text = sh.clients.listener_text();
    if let Some(path) = text.strip_prefix("unix:") {
        return (0, "NULL".into(), path.to_string());
    }
    let addr = text.split_once(':').map_or("", |(_, a)| a);
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
    (port.parse().unwrap_or(0), host.trim_matches(['[', ']']).to_string(), "NULL".into())
}

fn settings(sh: &Shared, out: &mut Vec<u8>) {
    let set = &sh.settings;
    let u = |a: &std::sync::atomic::AtomicU32| a.load(Ordering::Relaxed);
    let (tcpport, inter, domain_socket) = listen_settings(sh);
    stat(out, "maxbytes", sh.store.stats().limit_maxbytes);
    stat(out, "maxconns", sh.cfg.max_connections);
    stat(out, "tcpport", tcpport);
    stat(out, "udpport", 0);
    stat(out, "inter", inter);
    stat(out, "verbosity", sh.verbosity.load(Ordering::Relaxed));
    stat(out, "oldest", 0);
    stat(out, "evictions", "on");
    stat(out, "domain_socket", domain_socket);
    stat(out, "umask", 700);
    stat(out, "shutdown_command", yes_no(sh.cfg.shutdown_command));
    stat(out, "growth_factor", "1.25");
    stat(out, "chunk_size", 48);
    stat(out, "num_threads", sh.cfg.threads);
    stat(out, "num_threads_per_udp", sh.cfg.threads);
    stat(out, "stat_key_prefix", char::from(sh.cfg.prefix_delimiter.unwrap_or(b':')));
    stat(out, "detail_enabled", yes_no(set.detail_enabled.load(Ordering::Relaxed)));
    stat(out, "reqs_per_event", 20);
    stat(out, "cas_enabled", "yes");
    stat(out, "tcp_backlog", 1024);
    stat(out, "binding_protocol", "auto-negotiate");
    stat(out, "auth_enabled_sasl", "no");
    stat(out, "auth_enabled_ascii", "no");
    stat(out, "item_size_max", sh.cfg.max_item_size);
    stat(out, "maxconns_fast", "yes");
    stat(out, "hashpower_init", 0);
    stat(out, "slab_reassign", "yes");
    stat(out, "slab_automove", u(&set.slab_automove));
    stat(out, "slab_automove_ratio", format!("{:.2}", set.slab_automove_ratio.get()));
    stat(out, "slab_automove_window", 30);
    stat(out, "slab_chunk_max", memshard_store::SLAB_CHUNK_SIZE_MAX);
    stat(out, "lru_crawler", yes_no(set.lru_crawler.load(Ordering::Relaxed)));
    stat(out, "lru_crawler_sleep", u(&set.lru_crawler_sleep));
    stat(out, "lru_crawler_tocrawl", u(&set.lru_crawler_tocrawl));
    stat(out, "tail_repair_time", 0);
    stat(out, "flush_enabled", "yes");
    stat(out, "dump_enabled", "yes");
    stat(out, "hash_algorithm", "foldhash");
    stat(out, "lru_maintainer_thread", "yes");
    stat(out, "lru_segmented", yes_no(set.lru_segmented.load(Ordering::Relaxed)));
    stat(out, "hot_lru_pct", u(&set.hot_lru_pct));
    stat(out, "warm_lru_pct", u(&set.warm_lru_pct));
    stat(out, "hot_max_factor", format!("{:.2}", set.hot_max_factor.get()));
    stat(out, "warm_max_factor", format!("{:.2}", set.warm_max_factor.get()));
    stat(out, "temp_lru", yes_no(set.temp_lru.load(Ordering::Relaxed)));
    stat(out, "temporary_ttl", set.temporary_ttl.load(Ordering::Relaxed));
    stat(out, "idle_timeout", 0);
    stat(out, "watcher_logbuf_size", 262_144);
    stat(out, "worker_logbuf_size", 65_536);
    stat(out, "read_buf_mem_limit", 0);
    stat(out, "track_sizes", "no");
    stat(out, "inline_ascii_response", "no");
    stat(out, "ext_item_size", 512);
    stat(out, "ext_item_age", u32::MAX);
    stat(out, "ext_low_ttl", 0);
    stat(out, "ext_recache_rate", 2000);
    stat(out, "ext_wbuf_size", 4_194_304);
    stat(out, "ext_compact_under", 0);
    stat(out, "ext_drop_under", 0);
    stat(out, "ext_max_sleep", 1_000_000);
    stat(out, "ext_max_frag", "0.80");
    stat(out, "slab_automove_freeratio", "0.010");
    stat(out, "ext_drop_unread", "no");
    // memcached's spelling: unset paths are "(null)" for the chain and the
    // key and "NULL" for the CA.
    let tls = sh.cfg.tls.as_ref().map(|t| t.files());
    let path =
        |p: Option<&std::path::PathBuf>, none: &'static str| p.map_or(none.to_string(), |p| p.display().to_string());
    stat(out, "ssl_enabled", yes_no(tls.is_some()));
    stat(out, "ssl_chain_cert", path(tls.map(|f| &f.cert), "(null)"));
    stat(out, "ssl_key", path(tls.map(|f| f.key.as_ref().unwrap_or(&f.cert)), "(null)"));
    stat(out, "ssl_verify_mode", sh.cfg.ssl_verify_mode);
    stat(out, "ssl_keyformat", 1);
    stat(out, "ssl_ciphers", "NULL");
    stat(out, "ssl_ca_cert", path(tls.and_then(|f| f.client_ca.as_ref()), "NULL"));
    stat(out, "ssl_wbuf_size", 16_384);
    stat(out, "ssl_session_cache", "no");
    stat(out, "ssl_kernel_tls", "no");
    stat(out, "ssl_min_version", tls.map_or("tlsv1.2", |f| f.min_version.name()));
    stat(out, "num_napi_ids", "(null)");
    stat(out, "memory_file", "(null)");
}

/// `stats items`: one block per class that holds items.
fn items(sh: &Shared, out: &mut Vec<u8>) {
    for c in sh.store.class_stats().iter().filter(|c| c.counters.number > 0) {
        let k = &c.counters;
        let id = c.id;
        let mut s = |name: &str, v: u64| stat(out, &format!("items:{id}:{name}"), v);
        // One true LRU per store shard, no HOT/WARM segments: every item
        // and every hit is reported in the COLD one, where the oldest live.
        s("number", k.number);
        s("number_hot", 0);
        s("number_warm", 0);
        s("number_cold", k.number);
        s("age_hot", 0);
        s("age_warm", 0);
        s("age", c.age);
        s("mem_requested", k.mem_requested);
        s("evicted", k.evicted);
        s("evicted_nonzero", k.evicted_nonzero);
        s("evicted_time", k.evicted_time);
        s("outofmemory", k.outofmemory);
        s("tailrepairs", 0);
        s("reclaimed", k.reclaimed);
        s("expired_unfetched", k.expired_unfetched);
        s("evicted_unfetched", k.evicted_unfetched);
        s("evicted_active", 0);
        s("crawler_reclaimed", k.crawler_reclaimed);
        s("crawler_items_checked", k.crawler_items_checked);
        s("lrutail_reflocked", 0);
        s("moves_to_cold", 0);
        s("moves_to_warm", 0);
        s("moves_within_lru", 0);
        s("direct_reclaims", 0);
        s("hits_to_hot", 0);
        s("hits_to_warm", 0);
        s("hits_to_cold", k.get_hits + k.touch_hits);
        s("hits_to_temp", 0);
    }
}

/// `stats slabs`: one block per class with items, pages and chunks as
/// memcached would hold them for these items, then the totals.
fn slabs(sh: &Shared, out: &mut Vec<u8>) {
    let classes: Vec<ClassStats> = sh.store.class_stats().into_iter().filter(|c| c.counters.number > 0).collect();
    let mut pages = 0;
    for c in &classes {
        let k = &c.counters;
        let id = c.id;
        let mut s = |name: &str, v: u64| stat(out, &format!("{id}:{name}"), v);
        s("chunk_size", c.chunk_size as u64);
        s("chunks_per_page", chunks_per_page(id) as u64);
        s("total_pages", c.total_pages());
        s("total_chunks", c.total_chunks());
        s("used_chunks", k.number);
        s("free_chunks", c.total_chunks() - k.number);
        s("free_chunks_end", 0);
        s("get_hits", k.get_hits);
        s("cmd_set", k.cmd_set);
        s("delete_hits", k.delete_hits);
        s("incr_hits", k.incr_hits);
        s("decr_hits", k.decr_hits);
        s("cas_hits", k.cas_hits);
        s("cas_badval", k.cas_badval);
        s("touch_hits", k.touch_hits);
        pages += c.total_pages();
    }
    stat(out, "active_slabs", classes.len());
    stat(out, "total_malloced", pages * SLAB_PAGE_SIZE as u64);
}

/// `stats cachedump <class> <limit>`: `ITEM key [N b; T s]` for up to
/// `limit` items of the class (0: all), memcached's format (`T` is the
/// absolute expiry, or the server's start time for items that never expire).
fn cachedump(sh: &Shared, args: Option<(&[u8], &[u8])>, out: &mut Vec<u8>) {
    use std::io::Write;
    let Some((id, limit)) = args else {
        send(out, Reply::ClientError(b"bad command line"));
        return;
    };
    let (Some(id), Some(limit)) = (parse_u32(id), parse_u32(limit)) else {
        send(out, Reply::ClientError(b"bad command line format"));
        return;
    };
    if id >= 64 {
        send(out, Reply::ClientError(b"Illegal slab id"));
        return;
    }
    let started = crate::unix_now().saturating_sub(sh.started.elapsed().as_secs());
    let mut left = if limit == 0 { usize::MAX } else { limit as usize };
    sh.store.for_each_item(|item| {
        let v = &item.view;
        let size = memshard_store::memcached_item_size(v.key().len(), v.value_len(), v.flags());
        if left == 0 || class_of(size) != id as usize {
            return;
        }
        left -= 1;
        let t = if item.exptime == 0 { started } else { item.exptime };
        out.extend_from_slice(b"ITEM ");
        out.extend_from_slice(v.key());
        let _ = write!(out, " [{} b; {t} s]\r\n", v.value_len());
    });
    send(out, Reply::End);
}
