//! Operator commands (`me`, `shutdown`, `slabs`, `lru`, `lru_crawler`,
//! `refresh_certs`) against the server: memcached 1.6.18's replies, with what each valid form
//! really does here said beside it. `watch` and `lru_crawler metadump` take
//! over the connection and live in `connection.rs`.

use crate::Shared;
use crate::reply::{Outcome, send, send_unless};
use crate::stats::Counters;
use base64::Engine;
use memshard_proto::{Admin, AdminCmd, MetaCode, Reply, ShutdownMode, number::parse_u32};
use memshard_store::MetaGetOptions;
use memshard_store::classes::class_count;
use std::io::Write;
use std::sync::atomic::Ordering;

pub(crate) fn run(sh: &Shared, cmd: &AdminCmd<'_>, out: &mut Vec<u8>) -> Outcome {
    let set = &sh.settings;
    let ok = |out: &mut Vec<u8>| send_unless(out, cmd.noreply, Reply::Ok);
    match &cmd.op {
        Admin::MetaDebug { key } => meta_debug(sh, key, out),
        Admin::Shutdown(mode) => return shutdown(sh, *mode, out),
        Admin::SlabsReassign { src, dst } => send(out, Reply::Status(reassign(*src, *dst))),
        // The slab mover and the segmented LRU have nothing to act on in a
        // store without slab pages and with one true LRU per shard: the
        // values are kept and shown by `stats settings`, and change nothing.
        Admin::SlabsAutomove { level } => {
            set.slab_automove.store(*level, Ordering::Relaxed);
            ok(out);
        }
        Admin::SlabsAutomoveRatio(r) => {
            set.slab_automove_ratio.set(r.0);
            ok(out);
        }
        Admin::LruTune { hot_pct, warm_pct, hot_factor, warm_factor } => {
            set.hot_lru_pct.store(*hot_pct, Ordering::Relaxed);
            set.warm_lru_pct.store(*warm_pct, Ordering::Relaxed);
            set.hot_max_factor.set(hot_factor.0);
            set.warm_max_factor.set(warm_factor.0);
            ok(out);
        }
        Admin::LruMode { segmented } => {
            set.lru_segmented.store(*segmented, Ordering::Relaxed);
            ok(out);
        }
        Admin::LruTempTtl(ttl) => {
            set.temp_lru.store(*ttl >= 0, Ordering::Relaxed);
            if *ttl >= 0 {
                set.temporary_ttl.store(*ttl, Ordering::Relaxed);
            }
            ok(out);
        }
        Admin::LruCrawlerCrawl(classes) => send(out, crawl(sh, classes)),
        Admin::LruCrawlerToCrawl(n) => {
            set.lru_crawler_tocrawl.store(*n, Ordering::Relaxed);
            send(out, Reply::Ok);
        }
        Admin::LruCrawlerSleep(us) => {
            set.lru_crawler_sleep.store(*us, Ordering::Relaxed);
            send(out, Reply::Ok);
        }
        // Real: the background sweep of expired items stops and starts.
        Admin::LruCrawlerEnable(on) => {
            set.lru_crawler.store(*on, Ordering::Relaxed);
            send(out, Reply::Ok);
        }
        // Served by the connection, which alone can hand itself over.
        Admin::LruCrawlerMetadump(_) | Admin::Watch(_) => send(out, Reply::Error),
        Admin::RefreshCerts => refresh_certs(sh, cmd.noreply, out),
    }
    Outcome::Continue
}

/// `refresh_certs`: reload the `-Z` certificate files, as memcached does:
/// `OK` (which `noreply` suppresses), or the reason, always sent, and the
/// certificates in use stay.
fn refresh_certs(sh: &Shared, noreply: bool, out: &mut Vec<u8>) {
    let Some(tls) = &sh.cfg.tls else {
        out.extend_from_slice(b"Error TLS not enabled\r\n");
        return;
    };
    match tls.reload() {
        Ok(()) => send_unless(out, noreply, Reply::Ok),
        Err(e) => {
            // One line: a reason never carries the line ending into the reply.
            let reason = e.to_string().replace(['\r', '\n'], " ");
            let _ = write!(out, "Error loading the certificates: {reason}\r\n");
        }
    }
}

/// `me <key>`: `ME <key> exp=… la=… cas=… fetch=… cls=… size=…`, with
/// memcached's own arithmetic (`exp` is now minus the expiry time: negative
/// while the item lives; `size` is `ITEM_ntotal`; `cls` its slab class).
fn meta_debug(sh: &Shared, key: &[u8], out: &mut Vec<u8>) {
    Counters::bump(&sh.stats.cmd_meta);
    let now = sh.store.now() as i64;
    let opts = MetaGetOptions { bump: false, ..MetaGetOptions::default() };
    let found = sh.store.meta_get(key, &opts, |item| {
        let Some(it) = item else { return false };
        out.extend_from_slice(b"ME ");
        if it.key_binary() {
            out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(it.key()).as_bytes());
        } else {
            out.extend_from_slice(it.key());
        }
        let exp = if it.exptime() == 0 { -1 } else { now - it.exptime() as i64 };
        let size = it.memcached_size();
        let cls = memshard_store::classes::class_of(size);
        let fetch = if it.fetched() { "yes" } else { "no" };
        // Writing into a Vec cannot fail.
        let _ =
            write!(out, " exp={exp} la={} cas={} fetch={fetch} cls={cls} size={size}\r\n", it.last_access(), it.cas());
        true
    });
    if !found {
        send(out, Reply::Meta { code: MetaCode::En, flags: b"", data: None });
    }
}

/// `shutdown [graceful]`: only with `-A` (memcached's `--enable-shutdown`);
/// then the server stops as on SIGTERM (graceful or not: memshard always
/// drains), closing the asking connection without a reply.
fn shutdown(sh: &Shared, mode: ShutdownMode, out: &mut Vec<u8>) -> Outcome {
    if !sh.cfg.shutdown_command {
        send(out, Reply::Status(b"ERROR: shutdown not enabled"));
        return Outcome::Continue;
    }
    if mode == ShutdownMode::Invalid {
        send(out, Reply::ClientError(b"invalid shutdown mode"));
        return Outcome::Continue;
    }
    tracing::info!(role = "server", graceful = mode == ShutdownMode::Graceful, "shutdown command received");
    sh.stop.trigger();
    Outcome::Close
}

/// `slabs reassign`: memcached's checks; a valid pair of classes always
/// answers NOSPARE, because memshard holds no slab pages to move.
fn reassign(src: i32, dst: i32) -> &'static [u8] {
    let classes = class_count() as i32;
    if src == dst {
        b"SAME src and dst class are identical"
    } else if src < 0 || src > classes || dst < 0 || dst > classes {
        // -1 ("any class with a spare page") finds none.
        b"BADCLASS invalid src or dst class id"
    } else {
        b"NOSPARE source class has no spare pages"
    }
}

/// `lru_crawler crawl <classes|all|hash>`: frees every expired or flushed
/// item now (all classes: the sweep is not per class), as the crawler does.
fn crawl(sh: &Shared, classes: &[u8]) -> Reply<'static> {
    if !sh.settings.lru_crawler.load(Ordering::Relaxed) {
        return Reply::ClientError(b"lru crawler disabled");
    }
    if !valid_classes(classes) {
        return Reply::Status(b"BADCLASS invalid class id");
    }
    if sh.store.is_empty() {
        return Reply::Status(b"NOTSTARTED no items to crawl");
    }
    sh.store.sweep(usize::MAX);
    Reply::Ok
}

/// `all`, `hash`, or a comma-separated list of class ids (memcached accepts
/// 1 to 62).
pub(crate) fn valid_classes(classes: &[u8]) -> bool {
    classes == b"all"
        || classes == b"hash"
        || classes.split(|&b| b == b',').all(|id| parse_u32(id).is_some_and(|id| (1..63).contains(&id)))
}
