//! The binary protocol against the store, with memcached 1.6.18's answers
//! (`proto_bin.c`): the same store and counters as the text commands, so a
//! value set in binary is read in text and back. Quiet variants answer only
//! failures (and GETQ/GETKQ hits); a CAS in the header makes SET/ADD/REPLACE
//! a compare-and-swap, as in memcached.

use crate::Shared;
use crate::detail::Event;
use crate::reply::{Outcome, VERSION};
use crate::stats::Counters;
use memshard_proto::binary::{BinError, Command, Header, Request, Response, Status, StoreOp};
use memshard_store::{ArithOutcome, ArithRequest, DeleteOutcome, ItemView, StoreMode, StoreOutcome, Vivify};

/// Answers a request the decoder refused; `Close` when memcached closes.
pub(crate) fn refuse(sh: &Shared, e: &BinError, out: &mut Vec<u8>) -> Outcome {
    if let Some(status) = e.status {
        Response::error(&e.header, status).encode(out);
        if status == Status::TooLarge {
            Counters::bump(&sh.stats.store_too_large);
        }
    }
    if let Some(key) = &e.unlink {
        sh.store.delete(key, None);
    }
    if e.close { Outcome::Close } else { Outcome::Continue }
}

/// Executes one request, appending its answer (if any) to `out`.
pub(crate) fn run(sh: &Shared, req: &Request<'_>, out: &mut Vec<u8>) -> Outcome {
    let h = &req.header;
    let ok = |out: &mut Vec<u8>, cas: u64| {
        if !req.quiet {
            Response { cas, ..Response::ok(h) }.encode(out);
        }
    };
    match &req.command {
        Command::Get { key, with_key } => {
            Counters::bump(&sh.stats.cmd_get);
            let item = sh.store.get(key);
            if let Some(d) = sh.detail_delimiter() {
                sh.detail.record(d, key, Event::Get { hit: item.is_some() });
            }
            found(sh, h, req.quiet, key, *with_key, true, item, false, out);
        }
        Command::GetAndTouch { key, exptime, with_key } => {
            Counters::bump(&sh.stats.cmd_touch);
            let item = sh.store.get_and_touch(key, i64::from(*exptime));
            found(sh, h, req.quiet, key, *with_key, true, item, true, out);
        }
        Command::Touch { key, exptime } => {
            Counters::bump(&sh.stats.cmd_touch);
            let item = sh.store.get_and_touch(key, i64::from(*exptime));
            found(sh, h, req.quiet, key, false, false, item, true, out);
        }
        Command::Store { op, key, flags, exptime, value } => {
            Counters::bump(&sh.stats.cmd_set);
            if let Some(d) = sh.detail_delimiter() {
                sh.detail.record(d, key, Event::Set);
            }
            let mode = match (op, h.cas) {
                (StoreOp::Set | StoreOp::Add | StoreOp::Replace, c) if c != 0 => StoreMode::Cas,
                (StoreOp::Set, _) => StoreMode::Set,
                (StoreOp::Add, _) => StoreMode::Add,
                (StoreOp::Replace, _) => StoreMode::Replace,
                (StoreOp::Append, _) => StoreMode::Append,
                (StoreOp::Prepend, _) => StoreMode::Prepend,
            };
            let r = sh.store.store(mode, key, *flags, i64::from(*exptime), value, h.cas);
            if mode == StoreMode::Cas {
                let c = match r.outcome {
                    StoreOutcome::Stored => &sh.stats.cas_hits,
                    StoreOutcome::Exists => &sh.stats.cas_badval,
                    _ => &sh.stats.cas_misses,
                };
                Counters::bump(c);
            }
            match r.outcome {
                StoreOutcome::Stored => ok(out, r.cas),
                StoreOutcome::Exists => Response::error(h, Status::KeyExists).encode(out),
                StoreOutcome::NotFound => Response::error(h, Status::KeyNotFound).encode(out),
                // memcached answers a failed store by what was asked.
                StoreOutcome::NotStored | StoreOutcome::TooLarge | StoreOutcome::NoMemory => {
                    let status = match mode {
                        StoreMode::Add => Status::KeyExists,
                        StoreMode::Replace => Status::KeyNotFound,
                        _ => Status::NotStored,
                    };
                    if r.outcome == StoreOutcome::NoMemory {
                        Counters::bump(&sh.stats.store_no_memory);
                    }
                    Response::error(h, status).encode(out);
                }
            }
        }
        Command::Delete { key } => {
            if let Some(d) = sh.detail_delimiter() {
                sh.detail.record(d, key, Event::Delete);
            }
            let cas = (h.cas != 0).then_some(h.cas);
            match sh.store.delete(key, cas) {
                DeleteOutcome::Deleted => {
                    Counters::bump(&sh.stats.delete_hits);
                    ok(out, 0);
                }
                DeleteOutcome::Exists => Response::error(h, Status::KeyExists).encode(out),
                _ => {
                    Counters::bump(&sh.stats.delete_misses);
                    Response::error(h, Status::KeyNotFound).encode(out);
                }
            }
        }
        Command::Arith { incr, key, delta, initial, exptime } => {
            // 0xffffffff: fail on a missing key instead of creating it.
            let vivify = (*exptime != u32::MAX).then_some(Vivify { initial: *initial, exptime: i64::from(*exptime) });
            let base = if *incr { ArithRequest::incr(*delta) } else { ArithRequest::decr(*delta) };
            let r = sh.store.arith(key, &ArithRequest { cas: h.cas, vivify, ..base });
            let (hits, misses) = if *incr {
                (&sh.stats.incr_hits, &sh.stats.incr_misses)
            } else {
                (&sh.stats.decr_hits, &sh.stats.decr_misses)
            };
            match r {
                ArithOutcome::Value { value, cas, created } => {
                    if !created {
                        Counters::bump(hits);
                    }
                    if !req.quiet {
                        let v = value.to_be_bytes();
                        Response { cas, value: &v, ..Response::ok(h) }.encode(out);
                    }
                }
                ArithOutcome::NotFound => {
                    Counters::bump(misses);
                    Response::error(h, Status::KeyNotFound).encode(out);
                }
                ArithOutcome::Exists => Response::error(h, Status::KeyExists).encode(out),
                ArithOutcome::NonNumeric => Response::error(h, Status::NonNumeric).encode(out),
                ArithOutcome::NoMemory => {
                    let msg = b"Out of memory incrementing value";
                    Response { value: msg, ..Response::error(h, Status::OutOfMemory) }.encode(out);
                }
            }
        }
        Command::Quit => {
            ok(out, 0);
            return Outcome::Close;
        }
        Command::Flush { delay } => {
            Counters::bump(&sh.stats.cmd_flush);
            sh.store.flush_all(i64::from(*delay));
            ok(out, 0);
        }
        Command::Noop => Response::ok(h).encode(out),
        Command::Version => Response { value: VERSION.as_bytes(), ..Response::ok(h) }.encode(out),
        Command::Stat { group } => stat(sh, h, group, out),
    }
    Outcome::Continue
}

/// A GET/GAT/TOUCH answer: flags, optional key, optional value, CAS; on a
/// miss `Not found` (GETK-style: the key instead of the text), nothing when
/// quiet.
#[allow(clippy::too_many_arguments)] // the shapes of one answer, as memcached's
fn found(
    sh: &Shared,
    h: &Header,
    quiet: bool,
    key: &[u8],
    with_key: bool,
    with_value: bool,
    item: Option<ItemView>,
    touch: bool,
    out: &mut Vec<u8>,
) {
    let (hits, misses) =
        if touch { (&sh.stats.touch_hits, &sh.stats.touch_misses) } else { (&sh.stats.get_hits, &sh.stats.get_misses) };
    let Some(it) = item else {
        Counters::bump(misses);
        if quiet {
            return;
        }
        if with_key {
            // memcached's GETK miss: the key, and no error text.
            Response { key, value: &[], ..Response::error(h, Status::KeyNotFound) }.encode(out);
        } else {
            Response::error(h, Status::KeyNotFound).encode(out);
        }
        return;
    };
    Counters::bump(hits);
    let flags = it.flags().to_be_bytes();
    let value = if with_value { it.value() } else { &[] };
    let key = if with_key { key } else { &[] };
    Response { cas: it.cas(), extras: &flags, key, value, ..Response::ok(h) }.encode(out);
}

/// STAT: one answer per statistic (key = name, value = value), then an empty
/// one, as memcached sends them; an unknown group is `Not found`.
fn stat(sh: &Shared, h: &Header, group: &[u8], out: &mut Vec<u8>) {
    let words: Vec<&[u8]> = group.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect();
    let mut text = Vec::new();
    match words.as_slice() {
        [] | [b"settings" | b"items" | b"slabs" | b"sizes"] => {
            let req = memshard_proto::Stats { group: words.first().copied(), arg: None, arg2: None };
            crate::stats_report::write(sh, &req, -1, &mut text);
        }
        [b"reset", ..] => {
            let req = memshard_proto::Stats { group: Some(b"reset"), arg: None, arg2: None };
            crate::stats_report::write(sh, &req, -1, &mut Vec::new());
        }
        [b"detail", b"dump"] => {
            let mut dump = Vec::new();
            sh.detail.dump(&mut dump);
            Response { key: b"detailed", value: &dump, ..Response::ok(h) }.encode(out);
        }
        [b"detail", b"on" | b"off"] => {
            let on = words[1] == b"on";
            sh.settings.detail_enabled.store(on, std::sync::atomic::Ordering::Relaxed);
        }
        _ => {
            Response::error(h, Status::KeyNotFound).encode(out);
            return;
        }
    }
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(rest) = line.strip_prefix(b"STAT ") else { continue };
        let (name, value) = match rest.iter().position(|&b| b == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        Response { key: name, value, ..Response::ok(h) }.encode(out);
    }
    Response::ok(h).encode(out);
}
