//! The `stats` command: memcached's names, in memcached's order.

use crate::Shared;
use crate::exec::{VERSION, line};
use crate::stats::rusage;
use std::sync::atomic::Ordering;

fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "STAT {name} {value}\r\n");
}

pub(crate) fn write(sh: &Shared, group: Option<&[u8]>, arg: Option<&[u8]>, out: &mut Vec<u8>) {
    match group {
        None => general(sh, out),
        Some(b"reset") => {
            sh.stats.reset();
            line(out, b"RESET");
            return;
        }
        Some(b"settings") => settings(sh, out),
        Some(b"detail") => {
            let msg: &[u8] = match arg {
                Some(b"on" | b"off") => b"OK",
                _ => b"CLIENT_ERROR usage: stats detail on|off|dump",
            };
            line(out, msg);
            return;
        }
        // Per-slab-class groups: memshard has no slab classes, so they are empty.
        Some(b"items" | b"slabs" | b"sizes" | b"conns" | b"cachedump") => {}
        Some(_) => {
            line(out, b"ERROR");
            return;
        }
    }
    line(out, b"END");
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
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", format!("{user:.6}"));
    stat(out, "rusage_system", format!("{sys:.6}"));
    stat(out, "max_connections", sh.cfg.max_connections);
    stat(out, "curr_connections", r(&c.curr_connections));
    stat(out, "total_connections", r(&c.total_connections));
    stat(out, "rejected_connections", r(&c.rejected_connections));
    stat(out, "connection_structures", r(&c.curr_connections));
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
    stat(out, "bytes_read", r(&s.bytes_read));
    stat(out, "bytes_written", r(&s.bytes_written));
    stat(out, "limit_maxbytes", st.limit_maxbytes);
    stat(out, "accepting_conns", 1);
    stat(out, "threads", sh.cfg.threads);
    stat(out, "hash_bytes", st.hash_bytes);
    stat(out, "bytes", st.bytes);
    stat(out, "curr_items", st.curr_items);
    stat(out, "total_items", st.total_items);
    stat(out, "expired_unfetched", st.expired_unfetched);
    stat(out, "evicted_unfetched", st.evicted_unfetched);
    stat(out, "evictions", st.evictions);
    stat(out, "reclaimed", st.reclaimed);
}

fn settings(sh: &Shared, out: &mut Vec<u8>) {
    stat(out, "maxbytes", sh.cfg.memory_limit);
    stat(out, "maxconns", sh.cfg.max_connections);
    stat(out, "udpport", 0);
    stat(out, "verbosity", sh.verbosity.load(Ordering::Relaxed));
    stat(out, "evictions", "on");
    stat(out, "num_threads", sh.cfg.threads);
    stat(out, "cas_enabled", "yes");
    stat(out, "item_size_max", sh.cfg.max_item_size);
    stat(out, "flush_enabled", "yes");
}
