//! Meta commands (mg, ms, md, ma) against the store, building replies in the
//! order the request's flags appear, as memcached 1.6 does. The status line
//! of a meta reply (`VA`/`HD`/… and its flags) is written here straight
//! into the output as each flag is met — the flags are only known while the
//! item is under its lock, and staging them for `Reply::Meta` would copy
//! every reply once more; errors go through `Reply`.

use crate::Shared;
use crate::reply::{data_block, msg_line, send};
use crate::stats::Counters;
use base64::Engine;
use memshard_proto::{MetaArith, MetaArithMode, MetaDelete, MetaFlags, MetaGet, MetaSet, MetaSetMode, Reply, put_u64};
use memshard_store::{
    ArithOutcome, ArithRequest, DeleteOutcome, DeleteRequest, MetaGetOptions, MetaItem, StoreMode, StoreOutcome,
    StoreRequest, Vivify,
};

/// ` k<key>`, base64-encoded with a trailing ` b` for binary keys.
fn put_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(key).as_bytes());
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

fn put_flag_num(out: &mut Vec<u8>, flag: u8, v: u64) {
    out.push(b' ');
    out.push(flag);
    put_u64(out, v);
}

/// memcached prints remaining TTL as an unsigned 32-bit number, `-1` for never.
fn put_ttl(out: &mut Vec<u8>, ttl: i64) {
    out.extend_from_slice(b" t");
    if ttl == -1 {
        out.extend_from_slice(b"-1");
    } else {
        put_u64(out, u64::from(ttl as u32));
    }
}

/// The ` O…` and ` k…` echoes every miss/failure reply carries.
fn put_echoes(out: &mut Vec<u8>, flags: &MetaFlags<'_>, key: &[u8]) {
    for t in flags.tokens() {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => put_key(out, key, flags.base64),
            _ => {}
        }
    }
}

pub(crate) fn meta_get(sh: &Shared, m: &MetaGet<'_>, out: &mut Vec<u8>) {
    Counters::bump(&sh.stats.cmd_meta);
    let f = &m.flags;
    let opts = MetaGetOptions { bump: !f.no_bump, vivify: f.vivify, key_binary: f.base64, new_cas: f.new_cas };
    let mut touched = false;
    let hit = sh.store.meta_get(&m.key, &opts, |item| {
        let Some(it) = item else { return false };
        mg_hit(f, it, out, &mut touched);
        true
    });
    let (hits, misses) = if touched {
        (&sh.stats.touch_hits, &sh.stats.touch_misses)
    } else {
        (&sh.stats.get_hits, &sh.stats.get_misses)
    };
    if touched || f.ttl.is_some() {
        Counters::bump(&sh.stats.cmd_touch);
    } else {
        Counters::bump(&sh.stats.cmd_get);
    }
    if hit {
        Counters::bump(hits);
    } else {
        Counters::bump(misses);
        if !f.quiet {
            out.extend_from_slice(b"EN");
            put_echoes(out, f, &m.key);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn mg_hit(f: &MetaFlags<'_>, it: &mut MetaItem<'_>, out: &mut Vec<u8>, touched: &mut bool) {
    let view = f.value.then(|| it.view());
    match &view {
        Some(v) => {
            out.extend_from_slice(b"VA ");
            put_u64(out, v.value_len() as u64);
        }
        None => out.extend_from_slice(b"HD"),
    }
    let mut won = false;
    for t in f.tokens() {
        match t[0] {
            b'T' => {
                *touched = true;
                it.set_exptime(f.ttl.unwrap_or(0));
            }
            b'N' => won |= it.apply_vivify_ttl(),
            b'R' => won |= it.recache_due(f.recache.unwrap_or(0)),
            b's' => put_flag_num(out, b's', it.value_len() as u64),
            b't' => put_ttl(out, it.ttl()),
            b'c' => put_flag_num(out, b'c', it.cas()),
            b'f' => put_flag_num(out, b'f', u64::from(it.flags())),
            b'l' => put_flag_num(out, b'l', it.last_access()),
            b'h' => put_flag_num(out, b'h', u64::from(it.fetched())),
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => {
                let binary = it.key_binary();
                put_key(out, it.key(), binary);
            }
            _ => {}
        }
    }
    let tf = it.settle_token(won);
    if tf.already_sent {
        out.extend_from_slice(b" Z");
    }
    if tf.stale {
        out.extend_from_slice(b" X");
    }
    if tf.win {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if let Some(v) = view {
        data_block(out, v.value());
    }
}

pub(crate) fn meta_set(sh: &Shared, m: &MetaSet<'_>, out: &mut Vec<u8>) {
    Counters::bump(&sh.stats.cmd_meta);
    Counters::bump(&sh.stats.cmd_set);
    let f = &m.flags;
    // A supplied CAS turns set and replace into a compare-and-swap.
    let mode = match (m.mode, f.compare_cas.is_some()) {
        (MetaSetMode::Set | MetaSetMode::Replace, true) => StoreMode::Cas,
        (MetaSetMode::Set, false) => StoreMode::Set,
        (MetaSetMode::Replace, false) => StoreMode::Replace,
        (MetaSetMode::Add, _) => StoreMode::Add,
        (MetaSetMode::Append, _) => StoreMode::Append,
        (MetaSetMode::Prepend, _) => StoreMode::Prepend,
    };
    let req = StoreRequest {
        flags: f.client_flags.unwrap_or(0),
        exptime: f.ttl.unwrap_or(0),
        cas: f.compare_cas.unwrap_or(0),
        invalidate: f.invalidate && mode == StoreMode::Cas,
        new_cas: f.new_cas,
        key_binary: f.base64,
        // memcached drops the old item after any failed ms allocation.
        purge_on_failure: true,
        ..StoreRequest::new(mode, &m.key, m.value)
    };
    let r = sh.store.store_with(&req);
    let code: &[u8] = match r.outcome {
        StoreOutcome::Stored => b"HD",
        StoreOutcome::NotStored => b"NS",
        StoreOutcome::Exists => b"EX",
        StoreOutcome::NotFound => b"NF",
        StoreOutcome::TooLarge => {
            Counters::bump(&sh.stats.store_too_large);
            return send(out, Reply::ServerError(b"object too large for cache"));
        }
        StoreOutcome::NoMemory => {
            Counters::bump(&sh.stats.store_no_memory);
            return send(out, Reply::ServerError(b"out of memory storing object"));
        }
    };
    if f.quiet && r.outcome == StoreOutcome::Stored {
        return;
    }
    out.extend_from_slice(code);
    for t in f.tokens() {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => put_key(out, &m.key, f.base64),
            b'c' => put_flag_num(out, b'c', r.cas),
            b's' if r.outcome == StoreOutcome::Stored => {
                // Size of the stored item (the new total after append/prepend).
                let size = sh.store.peek(&m.key).map_or(m.value.len(), |v| v.value_len());
                put_flag_num(out, b's', size as u64);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn meta_delete(sh: &Shared, m: &MetaDelete<'_>, out: &mut Vec<u8>) {
    Counters::bump(&sh.stats.cmd_meta);
    let f = &m.flags;
    let req = DeleteRequest {
        cas: f.compare_cas,
        invalidate: f.invalidate,
        exptime: f.ttl,
        clear_value: f.remove_value,
        flags: f.client_flags.unwrap_or(0),
        new_cas: f.new_cas,
    };
    let outcome = sh.store.delete_with(&m.key, &req);
    let code: &[u8] = match outcome {
        DeleteOutcome::Deleted => {
            Counters::bump(&sh.stats.delete_hits);
            if f.quiet {
                return;
            }
            b"HD"
        }
        DeleteOutcome::NotFound => {
            Counters::bump(&sh.stats.delete_misses);
            b"NF"
        }
        DeleteOutcome::Exists => {
            Counters::bump(&sh.stats.delete_misses);
            b"EX"
        }
        DeleteOutcome::NoMemory => b"NS",
    };
    out.extend_from_slice(code);
    put_echoes(out, f, &m.key);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn meta_arith(sh: &Shared, m: &MetaArith<'_>, out: &mut Vec<u8>) {
    Counters::bump(&sh.stats.cmd_meta);
    let f = &m.flags;
    let incr = m.mode == MetaArithMode::Incr;
    let req = ArithRequest {
        incr,
        delta: m.delta(),
        cas: f.compare_cas.unwrap_or(0),
        vivify: f.vivify.map(|exptime| Vivify { initial: f.initial.unwrap_or(0), exptime }),
        new_cas: f.new_cas,
        key_binary: f.base64,
    };
    // Flags are rendered under the item lock, in request order, so `t` before
    // `T` reports the old TTL exactly as memcached does.
    let (outcome, rendered) = sh.store.arith_meta(&m.key, &req, |it| {
        let mut s = Vec::new();
        for t in f.tokens() {
            match t[0] {
                b'c' => put_flag_num(&mut s, b'c', it.cas()),
                b't' => put_ttl(&mut s, it.ttl()),
                b'T' => it.set_exptime(f.ttl.unwrap_or(0)),
                b'N' => {
                    it.apply_vivify_ttl();
                }
                b'O' => {
                    s.push(b' ');
                    s.extend_from_slice(t);
                }
                b'k' => put_key(&mut s, &m.key, f.base64),
                _ => {}
            }
        }
        s
    });
    let (hits, misses) =
        if incr { (&sh.stats.incr_hits, &sh.stats.incr_misses) } else { (&sh.stats.decr_hits, &sh.stats.decr_misses) };
    match outcome {
        ArithOutcome::Value { value, .. } => {
            Counters::bump(hits);
            if f.quiet {
                return;
            }
            let mut num = itoa::Buffer::new();
            let text = num.format(value).as_bytes();
            if f.value {
                out.extend_from_slice(b"VA ");
                put_u64(out, text.len() as u64);
            } else {
                out.extend_from_slice(b"HD");
            }
            out.extend_from_slice(&rendered.unwrap_or_default());
            out.extend_from_slice(b"\r\n");
            if f.value {
                data_block(out, text);
            }
        }
        ArithOutcome::NotFound => {
            Counters::bump(misses);
            out.extend_from_slice(b"NF");
            put_echoes(out, f, &m.key);
            out.extend_from_slice(b"\r\n");
        }
        ArithOutcome::Exists => {
            out.extend_from_slice(b"EX");
            put_echoes(out, f, &m.key);
            out.extend_from_slice(b"\r\n");
        }
        ArithOutcome::NonNumeric => send(out, msg_line(memshard_proto::msg::NON_NUMERIC)),
        ArithOutcome::NoMemory => send(out, Reply::ServerError(b"out of memory")),
    }
}
