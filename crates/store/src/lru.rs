//! Intrusive doubly linked LRU list over slab slots.
//!
//! The head is the most recently used item and the tail the least; eviction
//! takes from the tail. Links live in the slab headers (`prev` points toward
//! the head, `next` toward the tail), so the list itself is two indices.

use crate::slab::{NIL, Slab};

/// Ends of one shard's LRU list.
#[derive(Debug)]
pub(crate) struct Lru {
    head: u32,
    tail: u32,
}

impl Lru {
    pub(crate) fn new() -> Self {
        Self { head: NIL, tail: NIL }
    }

    /// Least recently used slot.
    pub(crate) fn tail(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Most recently used slot.
    #[cfg(test)]
    pub(crate) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The next more recently used slot after `i`.
    pub(crate) fn newer(slab: &Slab, i: u32) -> Option<u32> {
        let p = slab.get(i).prev();
        (p != NIL).then_some(p)
    }

    /// Links an unlinked slot in as most recently used.
    pub(crate) fn push_front(&mut self, slab: &mut Slab, i: u32) {
        let old_head = self.head;
        {
            let h = slab.get_mut(i);
            h.set_prev(NIL);
            h.set_next(old_head);
        }
        if old_head == NIL {
            self.tail = i;
        } else {
            slab.get_mut(old_head).set_prev(i);
        }
        self.head = i;
    }

    /// Removes a linked slot from the list.
    pub(crate) fn unlink(&mut self, slab: &mut Slab, i: u32) {
        let (p, n) = {
            let h = slab.get_mut(i);
            let pn = (h.prev(), h.next());
            h.set_prev(NIL);
            h.set_next(NIL);
            pn
        };
        if p == NIL {
            self.head = n;
        } else {
            slab.get_mut(p).set_next(n);
        }
        if n == NIL {
            self.tail = p;
        } else {
            slab.get_mut(n).set_prev(p);
        }
    }

    /// Marks a linked slot as most recently used.
    pub(crate) fn move_to_front(&mut self, slab: &mut Slab, i: u32) {
        if self.head != i {
            self.unlink(slab, i);
            self.push_front(slab, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn order(lru: &Lru, slab: &Slab) -> Vec<u32> {
        // Walk from the tail toward the head.
        let mut out = Vec::new();
        let mut cur = lru.tail();
        while let Some(i) = cur {
            out.push(i);
            cur = Lru::newer(slab, i);
        }
        out
    }

    #[test]
    fn lru_order_follows_use() {
        let mut slab = Slab::new();
        let mut lru = Lru::new();
        let ids: Vec<u32> = (0..4).map(|n| slab.alloc(Arc::from(&b""[..]), 0, 0, n).unwrap()).collect();
        for &i in &ids {
            lru.push_front(&mut slab, i);
        }
        assert_eq!(order(&lru, &slab), vec![0, 1, 2, 3]);
        lru.move_to_front(&mut slab, 0);
        assert_eq!(order(&lru, &slab), vec![1, 2, 3, 0]);
        lru.unlink(&mut slab, 2);
        assert_eq!(order(&lru, &slab), vec![1, 3, 0]);
        lru.unlink(&mut slab, 0);
        assert_eq!(lru.head(), Some(3));
        lru.unlink(&mut slab, 1);
        lru.unlink(&mut slab, 3);
        assert_eq!(lru.tail(), None);
        assert_eq!(lru.head(), None);
    }
}
