//! The snapshot file's layout, all integers little-endian:
//!
//! ```text
//!   header  64 bytes: magic (16) version u32, store shards u32, saved at u64 (unix s),
//!           last CAS handed out u64, memory limit u64, 12 zero bytes, crc32 of bytes 0..60
//!   block   16-byte head: payload length u32, items u32, crc32 of the payload,
//!           crc32 of head bytes 0..12 — then the payload: the items back to back
//!   item    key length u8, bits u8 (1 = key given base64-encoded), flags u32,
//!           exptime u32 (absolute unix s, 0 = never), CAS u64, value length u32, key, value
//!   end     a block head with length 0 whose item count is the number of items saved
//! ```
//!
//! The head's own checksum is checked before its length is believed, so a
//! damaged length can neither make the loader allocate a huge buffer nor
//! lose its place: a block whose payload fails its checksum is skipped and
//! the next one is read.

/// The first 16 bytes of every snapshot.
pub(crate) const MAGIC: &[u8; 16] = b"memshard-snap\r\n\x1a";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the file header.
pub(crate) const HEADER_LEN: usize = 64;
/// Bytes of a block head.
pub(crate) const BLOCK_HEAD_LEN: usize = 16;
/// Bytes of an item's fixed fields.
pub(crate) const ITEM_HEAD_LEN: usize = 22;
/// A block is closed once its payload reaches this size.
pub(crate) const BLOCK_TARGET: usize = 256 * 1024;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) shards: u32,
    pub(crate) saved_at: u64,
    pub(crate) last_cas: u64,
    pub(crate) memory_limit: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..16].copy_from_slice(MAGIC);
        b[16..20].copy_from_slice(&VERSION.to_le_bytes());
        b[20..24].copy_from_slice(&self.shards.to_le_bytes());
        b[24..32].copy_from_slice(&self.saved_at.to_le_bytes());
        b[32..40].copy_from_slice(&self.last_cas.to_le_bytes());
        b[40..48].copy_from_slice(&self.memory_limit.to_le_bytes());
        let crc = crc32fast::hash(&b[..60]);
        b[60..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The header, or why the file is not a snapshot this build can read.
    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, String> {
        if &b[..16] != MAGIC {
            return Err("not a memshard snapshot (bad magic)".into());
        }
        if crc32fast::hash(&b[..60]) != u32_at(b, 60) {
            return Err("damaged header (checksum mismatch)".into());
        }
        let version = u32_at(b, 16);
        if version != VERSION {
            return Err(format!("snapshot format version {version}, this build reads {VERSION}"));
        }
        Ok(Header {
            shards: u32_at(b, 20),
            saved_at: u64_at(b, 24),
            last_cas: u64_at(b, 32),
            memory_limit: u64_at(b, 40),
        })
    }
}

/// A block head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHead {
    pub(crate) len: u32,
    pub(crate) items: u32,
    pub(crate) crc: u32,
}

impl BlockHead {
    pub(crate) fn encode(&self) -> [u8; BLOCK_HEAD_LEN] {
        let mut b = [0u8; BLOCK_HEAD_LEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..8].copy_from_slice(&self.items.to_le_bytes());
        b[8..12].copy_from_slice(&self.crc.to_le_bytes());
        let crc = crc32fast::hash(&b[..12]);
        b[12..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The head, or `None` when its checksum fails.
    pub(crate) fn decode(b: &[u8; BLOCK_HEAD_LEN]) -> Option<BlockHead> {
        (crc32fast::hash(&b[..12]) == u32_at(b, 12)).then(|| BlockHead {
            len: u32_at(b, 0),
            items: u32_at(b, 4),
            crc: u32_at(b, 8),
        })
    }
}

/// One item as stored in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) flags: u32,
    pub(crate) exptime: u32,
    pub(crate) cas: u64,
    pub(crate) key_binary: bool,
}

impl Item<'_> {
    /// Appends the item to a block payload. Keys are at most 250 bytes and
    /// values below 4 GiB (the store's own limits), so the lengths fit.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let key_len = u8::try_from(self.key.len()).unwrap_or(u8::MAX);
        let value_len = u32::try_from(self.value.len()).unwrap_or(u32::MAX);
        out.push(key_len);
        out.push(u8::from(self.key_binary));
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.exptime.to_le_bytes());
        out.extend_from_slice(&self.cas.to_le_bytes());
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(&self.key[..usize::from(key_len)]);
        out.extend_from_slice(&self.value[..value_len as usize]);
    }

    /// The item at the start of `b` and the bytes it took, `None` when the
    /// bytes do not hold a whole item.
    pub(crate) fn decode(b: &[u8]) -> Option<(Item<'_>, usize)> {
        let head = b.get(..ITEM_HEAD_LEN)?;
        let key_len = usize::from(head[0]);
        let value_len = usize::try_from(u32_at(head, 18)).ok()?;
        let end = ITEM_HEAD_LEN.checked_add(key_len)?.checked_add(value_len)?;
        let body = b.get(ITEM_HEAD_LEN..end)?;
        let item = Item {
            key: &body[..key_len],
            value: &body[key_len..],
            key_binary: head[1] & 1 != 0,
            flags: u32_at(head, 2),
            exptime: u32_at(head, 6),
            cas: u64_at(head, 10),
        };
        Some((item, end))
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_block_heads_round_trip_and_catch_damage() {
        let h = Header { shards: 16, saved_at: 1_800_000_000, last_cas: 42, memory_limit: 64 << 20 };
        let mut b = h.encode();
        assert_eq!(Header::decode(&b), Ok(h));
        b[30] ^= 1;
        assert!(Header::decode(&b).unwrap_err().contains("checksum"));
        let mut other = h.encode();
        other[0] = b'M';
        assert!(Header::decode(&other).unwrap_err().contains("magic"));

        let head = BlockHead { len: 1000, items: 7, crc: 0xdead_beef };
        let mut b = head.encode();
        assert_eq!(BlockHead::decode(&b), Some(head));
        b[1] ^= 0x80;
        assert_eq!(BlockHead::decode(&b), None, "a damaged length is caught before it is used");
    }

    #[test]
    fn items_round_trip_and_short_bytes_are_refused() {
        let it = Item { key: b"k1", value: b"hello", flags: 7, exptime: 99, cas: 5, key_binary: true };
        let mut out = Vec::new();
        it.encode(&mut out);
        it.encode(&mut out);
        let (a, used) = Item::decode(&out).expect("first");
        assert_eq!(a, it);
        assert_eq!(used, ITEM_HEAD_LEN + 2 + 5);
        assert_eq!(Item::decode(&out[used..]).map(|(i, _)| i), Some(it));
        for cut in 0..used {
            assert!(Item::decode(&out[..cut]).is_none(), "{cut} bytes");
        }
    }
}
