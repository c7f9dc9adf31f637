//! `watch`: memcached's log streams. A connection that sends `watch
//! fetchers mutations` stops taking commands and receives one line per
//! matching event from every connection, in memcached 1.6.18's format
//! (`logger.c`): `ts=SECS.USECS gid=N type=item_get key=K status=found
//! clsid=C cfd=FD size=BYTES`. Nothing is formatted while nobody watches: the
//! request path pays one relaxed atomic load per event. A watcher that
//! cannot keep up loses lines rather than slowing anyone down; it is told
//! how many with a `skipped=N` line, as memcached does.

use memshard_proto::WatchFlags;
use parking_lot::Mutex;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use tokio::sync::mpsc;

/// memcached's `WATCHER_LIMIT`.
pub(crate) const MAX_WATCHERS: usize = 20;

/// Lines a watcher may have queued before new ones are skipped.
const WATCHER_QUEUE: usize = 4096;

struct Slot {
    id: u64,
    flags: u16,
    tx: mpsc::Sender<Vec<u8>>,
    skipped: Arc<AtomicU64>,
}

/// Every watcher, and the union of the streams they asked for.
#[derive(Default)]
pub(crate) struct Logger {
    active: AtomicU16,
    slots: Mutex<Vec<Slot>>,
    gid: AtomicU64,
    next_id: AtomicU64,
    /// Lines handed to watchers (`log_watcher_sent`).
    pub(crate) sent: AtomicU64,
    /// Lines a full watcher missed (`log_watcher_skipped`).
    pub(crate) skipped: AtomicU64,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("active", &self.active).finish_non_exhaustive()
    }
}

/// One watching connection's end.
pub(crate) struct Watcher {
    pub(crate) id: u64,
    pub(crate) rx: mpsc::Receiver<Vec<u8>>,
    pub(crate) skipped: Arc<AtomicU64>,
}

/// Why a watcher could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooMany;

impl Logger {
    /// Whether anyone watches `stream` (a `WatchFlags` bit).
    pub(crate) fn wants(&self, stream: u16) -> bool {
        self.active.load(Ordering::Relaxed) & stream != 0
    }

    /// Watchers now (`log_watchers`).
    pub(crate) fn watchers(&self) -> usize {
        self.slots.lock().len()
    }

    pub(crate) fn add(&self, flags: WatchFlags) -> Result<Watcher, TooMany> {
        let mut slots = self.slots.lock();
        if slots.len() >= MAX_WATCHERS {
            return Err(TooMany);
        }
        let (tx, rx) = mpsc::channel(WATCHER_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let skipped = Arc::new(AtomicU64::new(0));
        slots.push(Slot { id, flags: flags.0, tx, skipped: skipped.clone() });
        self.active.fetch_or(flags.0, Ordering::Relaxed);
        Ok(Watcher { id, rx, skipped })
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut slots = self.slots.lock();
        slots.retain(|s| s.id != id);
        let union = slots.iter().fold(0, |a, s| a | s.flags);
        self.active.store(union, Ordering::Relaxed);
    }

    /// Sends one event line to every watcher of `stream`: the `ts= gid=`
    /// prefix, then what `body` writes (no newline).
    pub(crate) fn log(&self, stream: u16, body: impl FnOnce(&mut Vec<u8>)) {
        if !self.wants(stream) {
            return;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let gid = self.gid.fetch_add(1, Ordering::Relaxed) + 1;
        let mut line = Vec::with_capacity(160);
        let _ = write!(line, "ts={}.{} gid={gid} ", now.as_secs(), now.subsec_micros());
        body(&mut line);
        line.push(b'\n');
        for s in self.slots.lock().iter().filter(|s| s.flags & stream != 0) {
            if s.tx.try_send(line.clone()).is_ok() {
                self.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                s.skipped.fetch_add(1, Ordering::Relaxed);
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// memcached's `uriencode`: alphanumerics and `-._~` as they are, every
/// other byte as `%XX`.
pub(crate) fn uriencode(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// `type=item_get key=K status=S clsid=C cfd=FD size=N`.
pub(crate) fn item_get(out: &mut Vec<u8>, key: &[u8], found: bool, clsid: usize, cfd: i32, size: usize) {
    out.extend_from_slice(b"type=item_get key=");
    uriencode(out, key);
    let status = if found { "found" } else { "not_found" };
    let _ = write!(out, " status={status} clsid={clsid} cfd={cfd} size={size}");
}

/// `type=item_store key=K status=S cmd=C ttl=T clsid=C cfd=FD size=N`.
#[allow(clippy::too_many_arguments)] // one field of the line each
pub(crate) fn item_store(
    out: &mut Vec<u8>,
    key: &[u8],
    status: &str,
    cmd: &str,
    ttl: u32,
    clsid: usize,
    cfd: i32,
    size: usize,
) {
    out.extend_from_slice(b"type=item_store key=");
    uriencode(out, key);
    let _ = write!(out, " status={status} cmd={cmd} ttl={ttl} clsid={clsid} cfd={cfd} size={size}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_watchers_of_their_stream_only() {
        let logger = Logger::default();
        assert!(!logger.wants(WatchFlags::FETCHERS));
        let mut w = logger.add(WatchFlags(WatchFlags::MUTATIONS)).expect("added");
        logger.log(WatchFlags::FETCHERS, |o| o.extend_from_slice(b"x"));
        logger.log(WatchFlags::MUTATIONS, |o| item_store(o, b"a b", "stored", "set", 0, 1, 7, 1));
        let line = String::from_utf8(w.rx.try_recv().expect("a line")).expect("utf8");
        assert!(line.starts_with("ts="), "{line}");
        assert!(line.ends_with(" gid=1 type=item_store key=a%20b status=stored cmd=set ttl=0 clsid=1 cfd=7 size=1\n"));
        assert!(w.rx.try_recv().is_err());
        logger.remove(w.id);
        assert!(!logger.wants(WatchFlags::MUTATIONS));
    }

    #[test]
    fn a_full_watcher_skips_and_the_limit_holds() {
        let logger = Logger::default();
        let w = logger.add(WatchFlags(WatchFlags::FETCHERS)).expect("added");
        for _ in 0..WATCHER_QUEUE + 3 {
            logger.log(WatchFlags::FETCHERS, |o| o.extend_from_slice(b"x"));
        }
        assert_eq!(w.skipped.load(Ordering::Relaxed), 3);
        let extra: Vec<_> = (1..MAX_WATCHERS).map(|_| logger.add(WatchFlags(1)).expect("added")).collect();
        assert_eq!(logger.add(WatchFlags(1)).err(), Some(TooMany));
        drop(extra);
    }
}
