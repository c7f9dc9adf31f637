//! Text-protocol commands against the store, answered with memcached's words.

use crate::Shared;
use crate::detail::Event;
use crate::reply::{Outcome, VERSION, msg_line, send, send_unless};
use crate::stats::Counters;
use crate::watch;
use memshard_proto::{Arith, Get, MetaCode, Reply, Request, Store as StoreReq, StoreCmd, WatchFlags};
use memshard_store::{ArithOutcome, DeleteOutcome, ItemView, StoreMode, StoreOutcome, TouchOutcome};
use std::sync::atomic::Ordering;

/// Executes one request, appending its reply to `out`.
pub(crate) struct Exec<'s> {
    pub(crate) sh: &'s Shared,
    /// The connection's descriptor (`cfd=` in `watch` lines, `stats conns`).
    pub(crate) cfd: i32,
}

/// The slab class memcached would keep an item in.
pub(crate) fn class_of_view(it: &ItemView) -> usize {
    memshard_store::classes::class_of(memshard_store::memcached_item_size(it.key().len(), it.value_len(), it.flags()))
}

impl<'s> Exec<'s> {
    pub(crate) fn new(sh: &'s Shared, cfd: i32) -> Self {
        Exec { sh, cfd }
    }

    fn stats(&self) -> &Counters {
        &self.sh.stats
    }

    pub(crate) fn run(&self, req: Request<'_>, out: &mut Vec<u8>) -> Outcome {
        match req {
            Request::Get(g) => {
                for key in g.keys.iter() {
                    self.get_one(&g, key, out);
                }
                send(out, Reply::End);
            }
            Request::Store(s) => {
                Counters::bump(&self.stats().cmd_set);
                let mode = match s.cmd {
                    StoreCmd::Set => StoreMode::Set,
                    StoreCmd::Add => StoreMode::Add,
                    StoreCmd::Replace => StoreMode::Replace,
                    StoreCmd::Append => StoreMode::Append,
                    StoreCmd::Prepend => StoreMode::Prepend,
                    StoreCmd::Cas => StoreMode::Cas,
                };
                if let Some(d) = self.sh.detail_delimiter() {
                    self.sh.detail.record(d, s.key, Event::Set);
                }
                if self.sh.logger.wants(WatchFlags::FETCHERS) {
                    // memcached looks the old item up first, and logs it.
                    let old = self.sh.store.peek(s.key);
                    self.log_get(s.key, old.as_ref());
                }
                let r = self.sh.store.store(mode, s.key, s.flags, s.exptime, s.value, s.cas);
                if self.sh.logger.wants(WatchFlags::MUTATIONS) {
                    self.log_store(&s, r.outcome);
                }
                if s.cmd == StoreCmd::Cas {
                    let c = match r.outcome {
                        StoreOutcome::Stored => &self.stats().cas_hits,
                        StoreOutcome::Exists => &self.stats().cas_badval,
                        _ => &self.stats().cas_misses,
                    };
                    Counters::bump(c);
                }
                let answer = match r.outcome {
                    StoreOutcome::Stored => Reply::Stored,
                    StoreOutcome::NotStored => Reply::NotStored,
                    StoreOutcome::Exists => Reply::Exists,
                    StoreOutcome::NotFound => Reply::NotFound,
                    StoreOutcome::TooLarge => {
                        Counters::bump(&self.stats().store_too_large);
                        Reply::ServerError(b"object too large for cache")
                    }
                    StoreOutcome::NoMemory => {
                        Counters::bump(&self.stats().store_no_memory);
                        Reply::ServerError(b"out of memory storing object")
                    }
                };
                send_unless(out, s.noreply, answer);
            }
            Request::Delete(d) => {
                if let Some(delim) = self.sh.detail_delimiter() {
                    self.sh.detail.record(delim, d.key, Event::Delete);
                }
                if self.sh.logger.wants(WatchFlags::FETCHERS) {
                    let old = self.sh.store.peek(d.key);
                    self.log_get(d.key, old.as_ref());
                }
                let answer = match self.sh.store.delete(d.key, None) {
                    DeleteOutcome::Deleted => {
                        Counters::bump(&self.stats().delete_hits);
                        Reply::Deleted
                    }
                    _ => {
                        Counters::bump(&self.stats().delete_misses);
                        Reply::NotFound
                    }
                };
                send_unless(out, d.noreply, answer);
            }
            Request::Arith(a) => self.arith(&a, out),
            Request::Touch(t) => {
                Counters::bump(&self.stats().cmd_touch);
                let answer = match self.sh.store.touch(t.key, t.exptime) {
                    TouchOutcome::Touched => {
                        Counters::bump(&self.stats().touch_hits);
                        Reply::Touched
                    }
                    TouchOutcome::NotFound => {
                        Counters::bump(&self.stats().touch_misses);
                        Reply::NotFound
                    }
                };
                send_unless(out, t.noreply, answer);
            }
            Request::FlushAll(f) => {
                Counters::bump(&self.stats().cmd_flush);
                self.sh.store.flush_all(f.delay);
                send_unless(out, f.noreply, Reply::Ok);
            }
            Request::Version => send(out, Reply::Version(VERSION.as_bytes())),
            Request::Verbosity(v) => {
                self.sh.verbosity.store(v.level.min(2), Ordering::Relaxed);
                send_unless(out, v.noreply, Reply::Ok);
            }
            Request::Stats(s) => crate::stats_report::write(self.sh, &s, self.cfd, out),
            Request::Quit => return Outcome::Close,
            Request::CacheMemlimit(m) => {
                // memcached's checks and words (proto_text.c, process_memlimit_command).
                let answer = if m.megabytes < 8 {
                    Reply::Status(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
                } else if m.megabytes > 1_000_000_000 {
                    Reply::Status(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
                } else if self.sh.store.set_memory_limit(m.megabytes as usize * 1024 * 1024).is_ok() {
                    Reply::Ok
                } else {
                    Reply::Status(b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust")
                };
                send_unless(out, m.noreply, answer);
            }
            Request::MetaGet(m) => crate::meta_exec::meta_get(self.sh, &m, out),
            Request::MetaSet(m) => crate::meta_exec::meta_set(self.sh, &m, out),
            Request::MetaDelete(m) => crate::meta_exec::meta_delete(self.sh, &m, out),
            Request::MetaArith(m) => crate::meta_exec::meta_arith(self.sh, &m, out),
            Request::MetaNoop => send(out, Reply::Meta { code: MetaCode::Mn, flags: b"", data: None }),
            Request::Admin(a) => return crate::admin_exec::run(self.sh, &a, out),
        }
        Outcome::Continue
    }

    /// A `watch fetchers` line for a lookup of `key`.
    fn log_get(&self, key: &[u8], item: Option<&ItemView>) {
        self.sh.logger.log(WatchFlags::FETCHERS, |o| {
            let (cls, size) = item.map_or((0, 0), |it| (class_of_view(it), it.value_len()));
            watch::item_get(o, key, item.is_some(), cls, self.cfd, size);
        });
    }

    /// A `watch mutations` line for a storage command and its outcome.
    fn log_store(&self, s: &StoreReq<'_>, outcome: StoreOutcome) {
        let status = match outcome {
            StoreOutcome::NotStored => "not_stored",
            StoreOutcome::Stored => "stored",
            StoreOutcome::Exists => "exists",
            StoreOutcome::NotFound => "not_found",
            StoreOutcome::TooLarge => "too_large",
            StoreOutcome::NoMemory => "no_memory",
        };
        // The TTL as memcached logs it: seconds from now, 0 for none.
        let now = self.sh.store.now() as i64;
        let ttl = match s.exptime {
            0 => 0,
            e if e <= memshard_store::REALTIME_MAXDELTA => e,
            e => e - now,
        };
        let size = memshard_store::memcached_item_size(s.key.len(), s.value.len(), s.flags);
        let cls = memshard_store::classes::class_of(size);
        self.sh.logger.log(WatchFlags::MUTATIONS, |o| {
            watch::item_store(o, s.key, status, s.cmd.as_str(), ttl as u32, cls, self.cfd, s.value.len());
        });
    }

    /// One key of a get/gets/gat/gats: its `VALUE` block on a hit, nothing on
    /// a miss.
    pub(crate) fn get_one(&self, g: &Get<'_>, key: &[u8], out: &mut Vec<u8>) {
        let touch = g.cmd.touches();
        let item = if touch {
            Counters::bump(&self.stats().cmd_touch);
            self.sh.store.get_and_touch(key, g.exptime)
        } else {
            Counters::bump(&self.stats().cmd_get);
            self.sh.store.get(key)
        };
        if let Some(d) = self.sh.detail_delimiter() {
            self.sh.detail.record(d, key, Event::Get { hit: item.is_some() });
        }
        self.log_get(key, item.as_ref());
        let counter = match (&item, touch) {
            (Some(_), false) => &self.stats().get_hits,
            (None, false) => &self.stats().get_misses,
            (Some(_), true) => &self.stats().touch_hits,
            (None, true) => &self.stats().touch_misses,
        };
        Counters::bump(counter);
        if let Some(it) = item {
            let cas = g.cmd.returns_cas().then(|| it.cas());
            Reply::Value { key: it.key(), flags: it.flags(), cas, data: it.value() }.encode(out);
        }
    }

    fn arith(&self, a: &Arith<'_>, out: &mut Vec<u8>) {
        let r = if a.incr { self.sh.store.incr(a.key, a.delta) } else { self.sh.store.decr(a.key, a.delta) };
        let (hits, misses) = if a.incr {
            (&self.stats().incr_hits, &self.stats().incr_misses)
        } else {
            (&self.stats().decr_hits, &self.stats().decr_misses)
        };
        match r {
            ArithOutcome::Value { value, .. } => {
                Counters::bump(hits);
                send_unless(out, a.noreply, Reply::Number(value));
            }
            ArithOutcome::NotFound | ArithOutcome::Exists => {
                Counters::bump(misses);
                send_unless(out, a.noreply, Reply::NotFound);
            }
            ArithOutcome::NonNumeric => send_unless(out, a.noreply, msg_line(memshard_proto::msg::NON_NUMERIC)),
            ArithOutcome::NoMemory => send_unless(out, a.noreply, Reply::ServerError(b"out of memory")),
        }
    }
}
