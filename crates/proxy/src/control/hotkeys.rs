//! A pool's most requested keys, in fixed memory: the Space-Saving sketch
//! (Metwally, Agrawal, El Abbadi, 2005).
//!
//! The sketch keeps `capacity` keys with a count each. A key it holds counts
//! up; a new key takes the place of the least counted one and inherits its
//! count (remembered as the new key's possible error). So a key's count is
//! never below its true count and at most `error` above it, and every key
//! requested more than `requests / capacity` times is in the sketch.
//!
//! The data path offers one key in [`SAMPLE_EVERY`] per worker thread, to a
//! stripe of its own, with `try_lock`: a worker never waits on the admin
//! port reading the sketch, it skips that sample. Counts shown are scaled
//! back by the sampling rate: estimates, as the page says.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keys each stripe holds.
pub(crate) const CAPACITY: usize = 256;

/// One key in this many is offered to the sketch.
pub(crate) const SAMPLE_EVERY: u32 = 8;

/// Stripes: worker threads take them in turn, so two workers rarely share.
const STRIPES: usize = 4;

/// One key's estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Estimate {
    pub(crate) key: Vec<u8>,
    /// At least the true count, at most `error` above it.
    pub(crate) count: u64,
    pub(crate) error: u64,
}

/// The sketch: a min-heap on count, and each key's place in it.
#[derive(Debug)]
pub(crate) struct SpaceSaving {
    capacity: usize,
    heap: Vec<Estimate>,
    place: HashMap<Box<[u8]>, usize>,
}

impl SpaceSaving {
    pub(crate) fn new(capacity: usize) -> SpaceSaving {
        SpaceSaving { capacity: capacity.max(1), heap: Vec::new(), place: HashMap::new() }
    }

    /// Counts one request for `key`.
    pub(crate) fn offer(&mut self, key: &[u8]) {
        if let Some(&at) = self.place.get(key) {
            self.heap[at].count += 1;
            self.sift_down(at);
            return;
        }
        if self.heap.len() < self.capacity {
            self.heap.push(Estimate { key: key.to_vec(), count: 1, error: 0 });
            let at = self.heap.len() - 1;
            self.place.insert(key.into(), at);
            self.sift_up(at);
            return;
        }
        // The least counted key gives its place (and its count) to this one.
        let min = self.heap[0].count;
        self.place.remove(self.heap[0].key.as_slice());
        self.heap[0] = Estimate { key: key.to_vec(), count: min + 1, error: min };
        self.place.insert(key.into(), 0);
        self.sift_down(0);
    }

    /// The smallest count held when full (what a key not held may have had).
    fn floor(&self) -> u64 {
        if self.heap.len() < self.capacity { 0 } else { self.heap.first().map_or(0, |e| e.count) }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        for at in [a, b] {
            if let Some(p) = self.place.get_mut(self.heap[at].key.as_slice()) {
                *p = at;
            }
        }
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.heap[parent].count <= self.heap[at].count {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if l < self.heap.len() && self.heap[l].count < self.heap[least].count {
                least = l;
            }
            if r < self.heap.len() && self.heap[r].count < self.heap[least].count {
                least = r;
            }
            if least == at {
                return;
            }
            self.swap(at, least);
            at = least;
        }
    }
}

thread_local! {
    /// This thread's sampling generator (xorshift32: random, so a request
    /// pattern with a period cannot hide a key from the samples) and stripe.
    static DICE: Cell<u32> = const { Cell::new(0x9E37_79B9) };
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Stripes handed out so far (a thread's stripe is the count when it came).
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// A pool's hot keys: striped sketches the workers feed.
#[derive(Debug)]
pub(crate) struct HotKeys {
    stripes: Vec<Mutex<SpaceSaving>>,
}

impl Default for HotKeys {
    fn default() -> Self {
        HotKeys { stripes: (0..STRIPES).map(|_| Mutex::new(SpaceSaving::new(CAPACITY))).collect() }
    }
}

impl HotKeys {
    /// A request for `key` (sampled; never waits).
    pub(crate) fn offer(&self, key: &[u8]) {
        let roll = DICE.with(|d| {
            let mut x = d.get();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            d.set(x);
            x
        });
        if roll % SAMPLE_EVERY != 0 {
            return;
        }
        let stripe = STRIPE.with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES);
            }
            s.get()
        });
        if let Ok(mut sketch) = self.stripes[stripe].try_lock() {
            sketch.offer(key);
        }
    }

    /// The `n` most requested keys, most first, counts scaled back by the
    /// sampling rate. A key's stripes are added up; a full stripe that does
    /// not hold it adds its floor to the error (it may have had that many).
    pub(crate) fn top(&self, n: usize) -> Vec<Estimate> {
        let sketches: Vec<(Vec<Estimate>, u64)> = self
            .stripes
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                (s.heap.clone(), s.floor())
            })
            .collect();
        let mut merged: HashMap<&[u8], Estimate> = HashMap::new();
        for (heap, _) in &sketches {
            for e in heap {
                let m = merged.entry(&e.key).or_insert_with(|| Estimate { key: e.key.clone(), count: 0, error: 0 });
                m.count += e.count;
                m.error += e.error;
            }
        }
        let mut all: Vec<Estimate> = merged
            .into_values()
            .map(|mut m| {
                for (heap, floor) in &sketches {
                    if !heap.iter().any(|e| e.key == m.key) {
                        m.count += floor;
                        m.error += floor;
                    }
                }
                m.count *= u64::from(SAMPLE_EVERY);
                m.error *= u64::from(SAMPLE_EVERY);
                m
            })
            .collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Space-Saving's guarantees against an exact count: every estimate
        /// is within its error of the truth, the heap is a heap, and every
        /// key above requests/capacity is held.
        #[test]
        fn estimates_bound_the_true_counts(keys in proptest::collection::vec(0u8..40, 1..2000), cap in 1usize..20) {
            let mut s = SpaceSaving::new(cap);
            let mut exact: HashMap<u8, u64> = HashMap::new();
            for k in &keys {
                s.offer(&[*k]);
                *exact.entry(*k).or_default() += 1;
            }
            prop_assert!(s.heap.len() <= cap);
            prop_assert_eq!(s.heap.iter().map(|e| e.count).sum::<u64>(), keys.len() as u64);
            for (i, e) in s.heap.iter().enumerate() {
                let truth = exact[&e.key[0]];
                prop_assert!(e.count >= truth && e.count - e.error <= truth, "{:?} truth {}", e, truth);
                prop_assert_eq!(s.place[e.key.as_slice()], i);
                if i > 0 {
                    prop_assert!(s.heap[(i - 1) / 2].count <= e.count);
                }
            }
            for (k, n) in &exact {
                if *n > keys.len() as u64 / cap as u64 {
                    prop_assert!(s.place.contains_key(&[*k][..]), "key {} seen {} times is missing", k, n);
                }
            }
        }
    }

    #[test]
    fn a_hot_key_comes_first_among_many_cold_ones() {
        let hot = HotKeys::default();
        for i in 0..200_000u32 {
            if i % 4 == 0 {
                hot.offer(b"hot");
            } else {
                hot.offer(format!("cold-{i}").as_bytes());
            }
        }
        let top = hot.top(5);
        assert_eq!(top[0].key, b"hot");
        // 50 000 requests for it, one in 8 sampled (about 6 250, give or take
        // 80): the scaled estimate is within 10 % of the truth.
        assert!(top[0].count >= 45_000 && top[0].count - top[0].error <= 55_000, "{:?}", top[0]);
        assert!(top.len() <= 5);
    }
}
