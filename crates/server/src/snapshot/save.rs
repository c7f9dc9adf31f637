//! Writing the store to the snapshot file at a graceful stop.

use super::format::{BLOCK_TARGET, BlockHead, Header, Item};
use memshard_store::{ItemCursor, LiveItem, Store};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Items collected from a shard per lock (one page per shard is held at a
/// time while the shards are merged).
const PAGE: usize = 256;

/// What a save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveReport {
    /// Items written.
    pub items: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Time from start to the folder's fsync.
    pub elapsed: Duration,
}

/// Writes every live item of `store` to `path` atomically: a temporary file
/// beside it, fsync, rename over `path`, fsync of the folder. On any error
/// the temporary file is removed and `path` is left as it was.
pub fn save(store: &Store, path: &Path, memory_limit: u64) -> io::Result<SaveReport> {
    let started = Instant::now();
    let tmp = temporary(path);
    let result = write_file(store, &tmp, memory_limit).and_then(|(items, bytes)| {
        std::fs::rename(&tmp, path)?;
        sync_folder(path)?;
        Ok(SaveReport { items, bytes, elapsed: started.elapsed() })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether a save to `path` can create its temporary file (checked at
/// start, so a missing or read-only folder is an error then, not at the
/// stop when the items would be lost).
pub fn check_writable(path: &Path) -> io::Result<()> {
    let tmp = temporary(path);
    File::create(&tmp)?;
    std::fs::remove_file(&tmp)
}

/// `PATH.tmp`, in the same folder so the rename is atomic.
fn temporary(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn sync_folder(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn write_file(store: &Store, tmp: &Path, memory_limit: u64) -> io::Result<(u64, u64)> {
    let file = File::create(tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let header = Header {
        shards: u32::try_from(store.shard_count()).unwrap_or(u32::MAX),
        saved_at: store.now(),
        last_cas: store.last_cas(),
        memory_limit,
    };
    let head = header.encode();
    out.write_all(&head)?;
    let mut bytes = head.len() as u64;
    let mut block = Vec::with_capacity(BLOCK_TARGET + 64 * 1024);
    let (mut in_block, mut items) = (0u32, 0u64);
    let mut walk = LruWalk::new(store);
    while let Some(live) = walk.next() {
        Item {
            key: live.view.key(),
            value: live.view.value(),
            flags: live.view.flags(),
            exptime: u32::try_from(live.exptime).unwrap_or(u32::MAX),
            cas: live.view.cas(),
            key_binary: live.view.key_binary(),
        }
        .encode(&mut block);
        in_block += 1;
        items += 1;
        if block.len() >= BLOCK_TARGET {
            bytes += write_block(&mut out, &mut block, &mut in_block)?;
        }
    }
    if in_block > 0 {
        bytes += write_block(&mut out, &mut block, &mut in_block)?;
    }
    let end = BlockHead { len: 0, items: u32::try_from(items).unwrap_or(u32::MAX), crc: 0 }.encode();
    out.write_all(&end)?;
    bytes += end.len() as u64;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok((items, bytes))
}

/// Every live item, least recently used first over the whole store: the
/// shards' LRU lists merged by last access time, a page of each at a time.
/// The loader inserts in file order, so the LRU order survives even into a
/// store with another number of shards, and one too small for all of them
/// keeps the most recently used.
struct LruWalk<'a> {
    store: &'a Store,
    /// Per shard: its current page (reversed, next item last) and where to
    /// go on.
    shards: Vec<(Vec<LiveItem>, Option<ItemCursor>)>,
    /// (last access, shard) of each shard's next item, oldest on top.
    heads: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<'a> LruWalk<'a> {
    fn new(store: &'a Store) -> Self {
        let mut w = LruWalk { store, shards: Vec::new(), heads: BinaryHeap::new() };
        for shard in 0..store.shard_count() {
            w.shards.push((Vec::new(), Some(ItemCursor::start(shard))));
            w.refill(shard);
        }
        w
    }

    /// Makes sure shard `i` has its next item at hand and is in the heap.
    fn refill(&mut self, i: usize) {
        let (page, cursor) = &mut self.shards[i];
        while page.is_empty() {
            let Some(c) = cursor.take() else { return };
            let (mut items, next) = self.store.items_page(c, PAGE);
            items.reverse();
            *page = items;
            *cursor = next;
        }
        if let Some(item) = page.last() {
            self.heads.push(Reverse((item.last_access, i)));
        }
    }

    fn next(&mut self) -> Option<LiveItem> {
        let Reverse((_, i)) = self.heads.pop()?;
        let item = self.shards[i].0.pop();
        self.refill(i);
        item
    }
}

fn write_block(out: &mut impl Write, block: &mut Vec<u8>, items: &mut u32) -> io::Result<u64> {
    let len = u32::try_from(block.len()).map_err(|_| io::Error::other("block over 4 GiB"))?;
    let head = BlockHead { len, items: *items, crc: crc32fast::hash(block) }.encode();
    out.write_all(&head)?;
    out.write_all(block)?;
    let n = (head.len() + block.len()) as u64;
    block.clear();
    *items = 0;
    Ok(n)
}
