//! Reading a snapshot back into a fresh store at start.

use super::format::{BLOCK_HEAD_LEN, BLOCK_TARGET, BlockHead, HEADER_LEN, Header, ITEM_HEAD_LEN, Item};
use memshard_store::{KEY_MAX_LENGTH, SavedItem, Store, StoreOutcome};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a load found and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Items in the store after the load.
    pub loaded: u64,
    /// Items past their expiry, dropped.
    pub expired: u64,
    /// Items above this server's `-I`, dropped.
    pub too_large: u64,
    /// Items evicted while loading because the snapshot is bigger than `-m`
    /// (the least recently used go first).
    pub evicted: u64,
    /// Items in blocks refused by their checksum.
    pub damaged: u64,
    /// The number of items the file says were saved, when its end was read.
    pub saved_items: Option<u64>,
    /// When the snapshot was written (unix s), when the header was readable.
    pub saved_at: Option<u64>,
    /// Why part or all of the file was refused.
    pub problem: Option<String>,
    /// Time spent.
    pub elapsed: Duration,
}

/// Loads the snapshot at `path` into `store` and removes the file, so that
/// a later crash cannot bring its values back. `Ok(None)` when there is no
/// file. A damaged, cut or foreign file never fails the load: what its
/// checksums vouch for is loaded, the rest is refused and said in
/// [`LoadReport::problem`]. The error is an I/O failure to open or remove it.
pub fn load(store: &Store, path: &Path) -> io::Result<Option<LoadReport>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let started = Instant::now();
    let evictions_before = store.stats().evictions;
    let mut report = LoadReport::default();
    if let Err(why) = read_into(store, BufReader::with_capacity(1 << 20, file), &mut report) {
        report.problem = Some(why);
    }
    let evicted = store.stats().evictions.saturating_sub(evictions_before);
    report.evicted += evicted;
    report.loaded = report.loaded.saturating_sub(evicted);
    std::fs::remove_file(path)?;
    report.elapsed = started.elapsed();
    Ok(Some(report))
}

/// Counts kept per inserting thread.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    stored: u64,
    expired: u64,
    too_large: u64,
    refused: u64,
}

/// Reads the file on this thread and inserts on `threads` others: each
/// inserts the items of the store shards it was given, in file order, so
/// every shard keeps the saved LRU order.
fn read_into(store: &Store, r: impl Read, report: &mut LoadReport) -> Result<(), String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(threads);
        let mut workers = Vec::with_capacity(threads);
        for me in 0..threads {
            // Two blocks queued per thread (shared) bound the loader's memory.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(2);
            senders.push(tx);
            workers.push(scope.spawn(move || {
                let mut t = Tally::default();
                for block in rx {
                    insert_block(store, &block, me, threads, &mut t);
                }
                t
            }));
        }
        let outcome = read_blocks(store, r, report, |block| {
            let block = Arc::new(block);
            for tx in &senders {
                // A thread that is gone (it cannot be: they only end when
                // their channel closes) loses nothing the report claims.
                let _ = tx.send(block.clone());
            }
        });
        drop(senders);
        for w in workers {
            if let Ok(t) = w.join() {
                report.loaded += t.stored;
                report.expired += t.expired;
                report.too_large += t.too_large;
                report.evicted += t.refused;
            }
        }
        outcome
    })
}

/// Reads and checks blocks until the end mark, handing each intact one to
/// `deliver`; `Err` says why the rest was refused.
fn read_blocks(
    store: &Store,
    mut r: impl Read,
    report: &mut LoadReport,
    mut deliver: impl FnMut(Vec<u8>),
) -> Result<(), String> {
    let mut head = [0u8; HEADER_LEN];
    read_full(&mut r, &mut head).map_err(|e| format!("cannot read the header: {e}"))?;
    let header = Header::decode(&head)?;
    report.saved_at = Some(header.saved_at);
    // What was handed out before the restart stays below every new CAS, so
    // no `gets` token of an item deleted before the stop can match.
    // (Bounded: a damaged or crafted value must not wrap the counter.)
    store.raise_cas(header.last_cas.min(u64::MAX / 2));
    let max_payload = BLOCK_TARGET + ITEM_HEAD_LEN + KEY_MAX_LENGTH + store.config().max_item_size;
    let mut offset = HEADER_LEN as u64;
    let mut items_seen = 0u64;
    loop {
        let mut b = [0u8; BLOCK_HEAD_LEN];
        read_full(&mut r, &mut b).map_err(|e| format!("cut short at byte {offset} ({e})"))?;
        let block = BlockHead::decode(&b)
            .ok_or_else(|| format!("damaged block head at byte {offset}; the rest of the file is unreadable"))?;
        offset += BLOCK_HEAD_LEN as u64;
        if block.len == 0 {
            report.saved_items = Some(u64::from(block.items));
            if u64::from(block.items) != items_seen {
                return Err(format!("the end mark counts {} items, the blocks held {items_seen}", block.items));
            }
            return Ok(());
        }
        let len = block.len as usize;
        items_seen += u64::from(block.items);
        if len > max_payload {
            // An item above this server's -I: skip the block whole.
            io::copy(&mut (&mut r).take(u64::from(block.len)), &mut io::sink())
                .map_err(|e| format!("cut short at byte {offset} ({e})"))?;
            report.too_large += u64::from(block.items);
            offset += u64::from(block.len);
            continue;
        }
        let mut payload = vec![0u8; len];
        read_full(&mut r, &mut payload).map_err(|e| format!("cut short at byte {offset} ({e})"))?;
        if crc32fast::hash(&payload) != block.crc {
            report.damaged += u64::from(block.items);
            report.problem.get_or_insert(format!("damaged block at byte {offset} skipped"));
            offset += u64::from(block.len);
            continue;
        }
        check_block(&payload, block.items).map_err(|why| format!("block at byte {offset} is malformed: {why}"))?;
        deliver(payload);
        offset += u64::from(block.len);
    }
}

/// Whether a checksummed payload holds exactly `items` whole items (a file
/// written by something else can pass a checksum and still be nonsense).
fn check_block(mut payload: &[u8], items: u32) -> Result<(), String> {
    for n in 0..items {
        let (_, used) = Item::decode(payload).ok_or_else(|| format!("item {n} of {items} is cut"))?;
        payload = &payload[used..];
    }
    if payload.is_empty() { Ok(()) } else { Err(format!("{} bytes after its {items} items", payload.len())) }
}

/// Inserts the items of a checked block that belong to thread `me` of `of`.
fn insert_block(store: &Store, payload: &[u8], me: usize, of: usize, t: &mut Tally) {
    let mut rest = payload;
    let items = std::iter::from_fn(|| {
        let (it, used) = Item::decode(rest)?;
        rest = &rest[used..];
        Some(SavedItem {
            key: it.key,
            value: it.value,
            flags: it.flags,
            exptime: u64::from(it.exptime),
            cas: it.cas,
            key_binary: it.key_binary,
        })
    });
    store.insert_saved_batch(
        items,
        |shard| shard % of == me,
        |outcome| match outcome {
            // Counted as stored here; what later items evicted is taken off
            // at the end.
            StoreOutcome::Stored => t.stored += 1,
            StoreOutcome::NotStored => t.expired += 1,
            StoreOutcome::TooLarge => t.too_large += 1,
            // Full without eviction: the item is not kept.
            _ => t.refused += 1,
        },
    );
}

/// `read_exact` that names a clean end of file as such.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf)
        .map_err(|e| if e.kind() == io::ErrorKind::UnexpectedEof { io::Error::new(e.kind(), "end of file") } else { e })
}
