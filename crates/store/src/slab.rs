//! Fixed-size item headers in a chunked slab, addressed by `u32` index.
//!
//! Headers are what the LRU list and the hash index point at. Keeping them
//! in a slab (instead of one heap node per item) makes them 40 bytes each
//! with no allocator overhead, lets the index store 4-byte slot numbers, and
//! lets the LRU use 4-byte links. The slab grows in chunks rather than as one
//! `Vec`, so growth never copies existing headers and never reserves more
//! than one chunk of unused slots. Freed slots are reused LIFO and are never
//! returned to the allocator (like memcached's slab pages).

use std::sync::Arc;

/// "No slot": terminates LRU links and the free list.
pub(crate) const NIL: u32 = (1 << 30) - 1;
/// Largest number of slots a shard can hold. Link fields only need 30 bits,
/// which frees the top two bits of each for item state (see [`Bit`]).
pub(crate) const MAX_SLOTS: u32 = NIL;

const INDEX_MASK: u32 = NIL;
const CHUNK_SHIFT: u32 = 8;
const CHUNK_SLOTS: usize = 1 << CHUNK_SHIFT;
const CHUNK_MASK: u32 = (1 << CHUNK_SHIFT) - 1;

/// Per-item state bits, packed into the spare high bits of the link fields
/// so the header stays at 40 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bit {
    /// Read at least once since stored (memcached `ITEM_FETCHED`).
    Fetched,
    /// Marked stale by a meta invalidation (memcached `ITEM_STALE`).
    Stale,
    /// A meta "win" token was handed out (memcached `ITEM_TOKEN_SENT`).
    TokenSent,
}

impl Bit {
    /// Which link field holds the bit (`false` = prev, `true` = next) and its mask.
    fn location(self) -> (bool, u32) {
        match self {
            Bit::Fetched => (false, 1 << 30),
            Bit::Stale => (false, 1 << 31),
            Bit::TokenSent => (true, 1 << 30),
        }
    }
}

/// The fixed part of an item. `data == None` marks a vacant slot.
#[derive(Debug)]
pub(crate) struct Header {
    data: Option<Arc<[u8]>>,
    prev: u32,
    next: u32,
    /// Absolute unix expiry, 0 = never.
    pub(crate) exptime: u32,
    /// memcached's `it->time`: when the item was stored or last "bumped".
    pub(crate) time: u32,
    /// CAS unique.
    pub(crate) cas: u64,
}

impl Header {
    fn vacant() -> Self {
        Self { data: None, prev: NIL, next: NIL, exptime: 0, time: 0, cas: 0 }
    }

    /// Encoded key/value buffer; empty for a vacant slot.
    pub(crate) fn data(&self) -> &[u8] {
        self.data.as_deref().unwrap_or(&[])
    }

    /// A new reference to the shared buffer, if occupied.
    pub(crate) fn shared(&self) -> Option<Arc<[u8]>> {
        self.data.clone()
    }

    /// Mutable access to the shared buffer (for in-place incr/decr).
    pub(crate) fn shared_mut(&mut self) -> Option<&mut Arc<[u8]>> {
        self.data.as_mut()
    }

    /// Swaps in a new buffer, returning the old one.
    pub(crate) fn replace_data(&mut self, data: Arc<[u8]>) -> Option<Arc<[u8]>> {
        self.data.replace(data)
    }

    pub(crate) fn is_occupied(&self) -> bool {
        self.data.is_some()
    }

    pub(crate) fn prev(&self) -> u32 {
        self.prev & INDEX_MASK
    }

    pub(crate) fn next(&self) -> u32 {
        self.next & INDEX_MASK
    }

    pub(crate) fn set_prev(&mut self, i: u32) {
        self.prev = (self.prev & !INDEX_MASK) | (i & INDEX_MASK);
    }

    pub(crate) fn set_next(&mut self, i: u32) {
        self.next = (self.next & !INDEX_MASK) | (i & INDEX_MASK);
    }

    pub(crate) fn bit(&self, bit: Bit) -> bool {
        let (in_next, mask) = bit.location();
        let field = if in_next { self.next } else { self.prev };
        field & mask != 0
    }

    pub(crate) fn set_bit(&mut self, bit: Bit, on: bool) {
        let (in_next, mask) = bit.location();
        let field = if in_next { &mut self.next } else { &mut self.prev };
        if on {
            *field |= mask;
        } else {
            *field &= !mask;
        }
    }

    /// Clears all state bits (a freshly stored value starts clean).
    pub(crate) fn clear_bits(&mut self) {
        self.prev &= INDEX_MASK;
        self.next &= INDEX_MASK;
    }
}

/// Chunked storage of headers with an intrusive free list.
#[derive(Debug)]
pub(crate) struct Slab {
    chunks: Vec<Box<[Header]>>,
    /// Slots handed out at least once; `0..high_water` are valid indices.
    high_water: u32,
    /// Head of the free list, threaded through vacant slots' `next` links.
    free_head: u32,
}

impl Slab {
    pub(crate) fn new() -> Self {
        Self { chunks: Vec::new(), high_water: 0, free_head: NIL }
    }

    pub(crate) fn get(&self, i: u32) -> &Header {
        &self.chunks[(i >> CHUNK_SHIFT) as usize][(i & CHUNK_MASK) as usize]
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> &mut Header {
        &mut self.chunks[(i >> CHUNK_SHIFT) as usize][(i & CHUNK_MASK) as usize]
    }

    /// Number of slot indices ever used (the range a sweep walks).
    pub(crate) fn high_water(&self) -> u32 {
        self.high_water
    }

    /// True when no slot can be handed out without freeing one first.
    pub(crate) fn is_full(&self) -> bool {
        self.free_head == NIL && self.high_water >= MAX_SLOTS
    }

    /// Bytes held by the slab itself, including vacant slots.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.chunks.len() * CHUNK_SLOTS * std::mem::size_of::<Header>()
    }

    /// Places a new occupied header, returning its index, or `None` when
    /// the shard already holds [`MAX_SLOTS`] items.
    pub(crate) fn alloc(&mut self, data: Arc<[u8]>, exptime: u32, time: u32, cas: u64) -> Option<u32> {
        let i = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.get(i).next();
            i
        } else {
            if self.high_water >= MAX_SLOTS {
                return None;
            }
            let i = self.high_water;
            if (i >> CHUNK_SHIFT) as usize >= self.chunks.len() {
                let chunk: Vec<Header> = (0..CHUNK_SLOTS).map(|_| Header::vacant()).collect();
                self.chunks.push(chunk.into_boxed_slice());
            }
            self.high_water += 1;
            i
        };
        let h = self.get_mut(i);
        *h = Header::vacant();
        h.data = Some(data);
        h.exptime = exptime;
        h.time = time;
        h.cas = cas;
        Some(i)
    }

    /// Vacates slot `i` (already unlinked from LRU and index) and returns
    /// its buffer so the caller decides when the bytes are dropped.
    pub(crate) fn release(&mut self, i: u32) -> Option<Arc<[u8]>> {
        let free_head = self.free_head;
        let h = self.get_mut(i);
        let data = h.data.take();
        *h = Header::vacant();
        h.set_next(free_head);
        self.free_head = i;
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_compact() {
        assert_eq!(std::mem::size_of::<Header>(), 40);
    }

    #[test]
    fn bits_do_not_disturb_links() {
        let mut h = Header::vacant();
        h.set_prev(7);
        h.set_next(9);
        for b in [Bit::Fetched, Bit::Stale, Bit::TokenSent] {
            assert!(!h.bit(b));
            h.set_bit(b, true);
            assert!(h.bit(b));
        }
        assert_eq!((h.prev(), h.next()), (7, 9));
        h.set_prev(NIL);
        h.set_bit(Bit::Stale, false);
        assert!(h.bit(Bit::Fetched) && !h.bit(Bit::Stale) && h.bit(Bit::TokenSent));
        assert_eq!(h.prev(), NIL);
        h.clear_bits();
        assert!(!h.bit(Bit::Fetched) && !h.bit(Bit::TokenSent));
        assert_eq!((h.prev(), h.next()), (NIL, 9));
    }

    #[test]
    fn slots_are_reused() {
        let mut s = Slab::new();
        let data: Arc<[u8]> = Arc::from(&b"x"[..]);
        let a = s.alloc(data.clone(), 0, 0, 1).unwrap();
        let b = s.alloc(data.clone(), 0, 0, 2).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.get(b).cas, 2);
        assert!(s.release(a).is_some());
        assert!(!s.get(a).is_occupied());
        let c = s.alloc(data, 0, 0, 3).unwrap();
        assert_eq!(c, a);
        assert_eq!(s.high_water(), 2);
        for _ in 0..CHUNK_SLOTS {
            s.alloc(Arc::from(&b""[..]), 0, 0, 0).unwrap();
        }
        assert_eq!(s.allocated_bytes(), 2 * CHUNK_SLOTS * 40);
    }
}
