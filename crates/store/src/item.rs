//! Item encoding, the public read view, the persistence record, and the
//! per-item memory formula.
//!
//! Key and value share one `Arc<[u8]>` allocation laid out as
//!
//! ```text
//! [key_len: u8][tag: u8][client flags: u32 LE, only if non-zero][key][value]
//! ```
//!
//! Client flags are immutable for the lifetime of one stored value (every
//! command that changes them stores a new value), so they live here rather
//! than in the fixed-size header; like memcached we spend no bytes on them
//! when they are zero. Reads hand out a clone of the `Arc`, so the server can
//! write the value to a socket after the shard lock is released.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// `tag` bit: the item carries 4 bytes of non-zero client flags.
const TAG_HAS_FLAGS: u8 = 0b01;
/// `tag` bit: the key was supplied base64-encoded (meta `b` flag) and must be
/// re-encoded when echoed back.
const TAG_KEY_BINARY: u8 = 0b10;

/// Bytes of the `strong`/`weak` counters in front of every `Arc` allocation.
pub const ARC_COUNTS_BYTES: usize = 16;

/// Bytes charged per item for its hash-index slot.
///
/// The index is a `hashbrown::HashTable<u32>`: 4 bytes per bucket plus one
/// control byte, at a load factor between 7/16 (just grown) and 7/8 (about to
/// grow), i.e. 5.7–11.4 bytes per item; 8 is the charge at a typical load.
pub const INDEX_BYTES: usize = 8;

/// Bytes charged per item for its fixed-size header in the shard's slab
/// (LRU links, exptime, last access, CAS, state bits and the data pointer).
pub const HEADER_BYTES: usize = std::mem::size_of::<crate::slab::Header>();

/// glibc stops serving requests from the heap and uses `mmap` above this
/// size (its default `M_MMAP_THRESHOLD`).
const MMAP_THRESHOLD: usize = 128 * 1024;

/// Estimated bytes the system allocator really uses for an `n`-byte request.
///
/// Models glibc on 64-bit targets: heap chunks carry an 8-byte size word and
/// are rounded up to 16 bytes with a 32-byte minimum; large requests are
/// page-rounded `mmap`s with a 16-byte chunk header. Other allocators differ
/// by a few bytes per item; the estimate is a model, not a measurement.
pub fn malloc_size(n: usize) -> usize {
    if n >= MMAP_THRESHOLD { (n + 16).div_ceil(4096) * 4096 } else { ((n + 8).div_ceil(16) * 16).max(32) }
}

/// Bytes one item is charged against the memory limit:
///
/// ```text
/// HEADER_BYTES (40) + INDEX_BYTES (8)
///   + malloc_size(ARC_COUNTS_BYTES (16) + 2 + (flags != 0 ? 4 : 0) + key_len + value_len)
/// ```
///
/// For a 10-byte key, a 100-byte value and zero flags that is
/// `40 + 8 + malloc_size(128) = 40 + 8 + 144 = 192` bytes, versus memcached's
/// 192-byte slab chunk (169 bytes rounded up to slab class 4) plus its
/// 8-byte-per-bucket hash table, which memcached's `bytes` stat leaves out.
pub fn item_footprint(key_len: usize, value_len: usize, flags: u32) -> usize {
    data_footprint(prefix_len(flags) + key_len + value_len)
}

/// [`item_footprint`] for an already encoded buffer of `data_len` bytes.
pub(crate) fn data_footprint(data_len: usize) -> usize {
    HEADER_BYTES + INDEX_BYTES + malloc_size(ARC_COUNTS_BYTES + data_len)
}

fn prefix_len(flags: u32) -> usize {
    if flags == 0 { 2 } else { 6 }
}

/// Encodes key, flags and the concatenation of `value_parts` into one
/// allocation. Callers guarantee `key.len() <= 255` (the store rejects keys
/// longer than memcached's 250 before getting here).
pub(crate) fn encode(key: &[u8], flags: u32, key_binary: bool, value_parts: [&[u8]; 2]) -> Arc<[u8]> {
    debug_assert!(key.len() <= usize::from(u8::MAX));
    let key_len = u8::try_from(key.len()).unwrap_or(u8::MAX);
    let mut tag = 0;
    if flags != 0 {
        tag |= TAG_HAS_FLAGS;
    }
    if key_binary {
        tag |= TAG_KEY_BINARY;
    }
    let f = flags.to_le_bytes();
    let head = [key_len, tag, f[0], f[1], f[2], f[3]];
    let parts = [&head[..prefix_len(flags)], &key[..usize::from(key_len)], value_parts[0], value_parts[1]];
    let total = parts.iter().map(|p| p.len()).sum();
    // Allocate the Arc once, zeroed, and copy each part in with memcpy.
    // (Collecting a chain of byte iterators is a byte-at-a-time loop, ~20x
    // slower for large values; going through a Vec allocates twice.)
    let mut data: Arc<[u8]> = std::iter::repeat_n(0u8, total).collect();
    match Arc::get_mut(&mut data) {
        Some(buf) => {
            let mut at = 0;
            for part in parts {
                buf[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            data
        }
        // A freshly built Arc is always unique; this arm only keeps the
        // function total without an unwrap.
        None => Arc::from(parts.concat()),
    }
}

/// Decoded positions inside an encoded buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) key_start: usize,
    pub(crate) value_start: usize,
    pub(crate) flags: u32,
    pub(crate) key_binary: bool,
}

/// Decodes the prefix written by [`encode`].
pub(crate) fn layout(data: &[u8]) -> Layout {
    let key_len = usize::from(data.first().copied().unwrap_or(0));
    let tag = data.get(1).copied().unwrap_or(0);
    let (key_start, flags) = if tag & TAG_HAS_FLAGS != 0 {
        let f = data.get(2..6).and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, u32::from_le_bytes);
        (6, f)
    } else {
        (2, 0)
    };
    Layout {
        key_start,
        value_start: (key_start + key_len).min(data.len()),
        flags,
        key_binary: tag & TAG_KEY_BINARY != 0,
    }
}

/// Key of an encoded buffer.
pub(crate) fn key_of(data: &[u8]) -> &[u8] {
    let l = layout(data);
    &data[l.key_start.min(l.value_start)..l.value_start]
}

/// A cheap, lock-free snapshot of one item returned by reads.
///
/// Cloning it only bumps a reference count; the bytes stay valid after the
/// item is overwritten or evicted (they are freed when the last view drops).
#[derive(Clone)]
pub struct ItemView {
    data: Arc<[u8]>,
    cas: u64,
}

impl ItemView {
    pub(crate) fn new(data: Arc<[u8]>, cas: u64) -> Self {
        Self { data, cas }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        key_of(&self.data)
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        &self.data[self.value_range()]
    }

    /// Length of the value in bytes.
    pub fn value_len(&self) -> usize {
        self.value_range().len()
    }

    /// The opaque 32-bit client flags.
    pub fn flags(&self) -> u32 {
        layout(&self.data).flags
    }

    /// The CAS unique at the time of the read.
    pub fn cas(&self) -> u64 {
        self.cas
    }

    /// Whether the key was stored in binary (base64 `b`) form by a meta
    /// command, so it must be base64-encoded when echoed back.
    pub fn key_binary(&self) -> bool {
        layout(&self.data).key_binary
    }

    /// Where the value sits inside [`ItemView::shared_data`]; lets a server
    /// wrap the `Arc` in its own buffer type without copying.
    pub fn value_range(&self) -> Range<usize> {
        layout(&self.data).value_start..self.data.len()
    }

    /// The whole shared allocation (internal prefix, key and value).
    pub fn shared_data(&self) -> &Arc<[u8]> {
        &self.data
    }
}

impl fmt::Debug for ItemView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemView")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value_len())
            .field("flags", &self.flags())
            .field("cas", &self.cas)
            .finish()
    }
}

/// A live item as seen by [`Store::for_each_item`](crate::Store::for_each_item).
#[derive(Debug, Clone)]
pub struct LiveItem {
    /// Key, value, flags and CAS.
    pub view: ItemView,
    /// Absolute unix expiry time; 0 means never.
    pub exptime: u64,
    /// Absolute unix time it was stored or last accessed.
    pub last_access: u64,
    /// Fetched since it was stored.
    pub fetched: bool,
}

impl LiveItem {
    /// Copies the item into an owned, serialization-friendly record.
    pub fn to_record(&self) -> ItemRecord {
        ItemRecord {
            key: self.view.key().to_vec(),
            value: self.view.value().to_vec(),
            flags: self.view.flags(),
            exptime: self.exptime,
            cas: self.view.cas(),
            key_binary: self.view.key_binary(),
        }
    }
}

/// Everything needed to persist an item and load it back with
/// [`Store::insert_raw`](crate::Store::insert_raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// The key (at most 250 bytes).
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Opaque client flags.
    pub flags: u32,
    /// Absolute unix expiry time; 0 means never. Absolute so that a record
    /// saved at shutdown keeps its deadline across a restart.
    pub exptime: u64,
    /// CAS unique; kept on reload so clients' `gets` tokens stay valid.
    pub cas: u64,
    /// The key was stored base64-decoded by a meta command (`b` flag) and
    /// must be re-encoded when echoed.
    pub key_binary: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_roundtrip() {
        let d = encode(b"key", 0, false, [b"val", b"ue"]);
        assert_eq!(d.len(), 2 + 3 + 5);
        let v = ItemView::new(d, 9);
        assert_eq!(v.key(), b"key");
        assert_eq!(v.value(), b"value");
        assert_eq!(v.flags(), 0);
        assert_eq!(v.cas(), 9);
        assert!(!v.key_binary());

        let v = ItemView::new(encode(b"k", 0xdead_beef, true, [b"", b"x"]), 1);
        assert_eq!(v.key(), b"k");
        assert_eq!(v.value(), b"x");
        assert_eq!(v.flags(), 0xdead_beef);
        assert!(v.key_binary());
        assert_eq!(v.shared_data().len(), 6 + 1 + 1);
    }

    #[test]
    fn footprint_formula() {
        assert_eq!(HEADER_BYTES, 40);
        assert_eq!(malloc_size(1), 32);
        assert_eq!(malloc_size(24), 32);
        assert_eq!(malloc_size(25), 48);
        assert_eq!(malloc_size(128), 144);
        assert_eq!(item_footprint(10, 100, 0), 192);
        assert_eq!(item_footprint(10, 100, 1), 40 + 8 + 144);
        assert!(malloc_size(1 << 20) >= (1 << 20) + 16);
    }
}
