//! A pool's most requested keys, in fixed memory: the Space-Saving sketch
//! (Metwally, Agrawal, El Abbadi, 2005).
//!
//! The sketch keeps `capacity` keys with a count each. A key it holds counts
//! up; a new key takes the place of the least counted one and inherits its
//! count (remembered as the new key's possible error). So a key's count is
//! never below its true count and at most `error` above it, and every key
//! requested more than `requests / capacity` times is in the sketch.
//!
//! The data path pays for one request in [`SAMPLE_EVERY`], on average: each
//! worker thread counts down a random gap (so no request pattern can hide a
//! key from the samples) and only a sampled request's keys reach the sketch,
//! a stripe per thread, taken with `try_lock`: a worker never waits on the
//! admin port reading the sketch, it drops that sample. A sample costs one
//! hash of its key: the keys live in a slab that the count heap and the hash
//! table both point into, so moving an entry in the heap hashes nothing, and
//! an evicted key's buffer is reused. Counts shown are scaled back by the
//! sampling rate: estimates, as the page says.

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keys each stripe holds.
pub(crate) const CAPACITY: usize = 256;

/// One request in this many, on average, is offered to the sketch.
pub(crate) const SAMPLE_EVERY: u32 = 64;

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

/// A key held, where the heap and the table point.
#[derive(Debug)]
struct Slot {
    key: Vec<u8>,
    hash: u64,
    count: u64,
    error: u64,
    /// Its place in the heap.
    at: usize,
}

/// The sketch: slots, a min-heap of slot numbers on count, and a hash
/// table of slot numbers by key.
#[derive(Debug)]
pub(crate) struct SpaceSaving {
    capacity: usize,
    slots: Vec<Slot>,
    heap: Vec<usize>,
    table: HashTable<usize>,
    hasher: DefaultHashBuilder,
}

impl SpaceSaving {
    pub(crate) fn new(capacity: usize) -> SpaceSaving {
        let capacity = capacity.max(1);
        SpaceSaving {
            capacity,
            slots: Vec::with_capacity(capacity),
            heap: Vec::with_capacity(capacity),
            table: HashTable::with_capacity(capacity),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Counts one request for `key`.
    pub(crate) fn offer(&mut self, key: &[u8]) {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        if let Some(&slot) = self.table.find(hash, |&s| slots[s].key == key) {
            self.slots[slot].count += 1;
            self.sift_down(self.slots[slot].at);
            return;
        }
        if self.slots.len() < self.capacity {
            let slot = self.slots.len();
            self.slots.push(Slot { key: key.to_vec(), hash, count: 1, error: 0, at: self.heap.len() });
            self.heap.push(slot);
            let slots = &self.slots;
            self.table.insert_unique(hash, slot, |&s| slots[s].hash);
            self.sift_up(self.slots[slot].at);
            return;
        }
        // The least counted key gives its place (and its count) to this one.
        let slot = self.heap[0];
        let old = self.slots[slot].hash;
        if let Ok(entry) = self.table.find_entry(old, |&s| s == slot) {
            entry.remove();
        }
        let s = &mut self.slots[slot];
        let min = s.count;
        s.key.clear();
        s.key.extend_from_slice(key);
        (s.hash, s.count, s.error) = (hash, min + 1, min);
        let slots = &self.slots;
        self.table.insert_unique(hash, slot, |&s| slots[s].hash);
        self.sift_down(0);
    }

    /// The smallest count held when full (what a key not held may have had).
    fn floor(&self) -> u64 {
        if self.slots.len() < self.capacity { 0 } else { self.heap.first().map_or(0, |&s| self.slots[s].count) }
    }

    /// Every key held, with its count and error.
    fn estimates(&self) -> Vec<Estimate> {
        self.slots.iter().map(|s| Estimate { key: s.key.clone(), count: s.count, error: s.error }).collect()
    }

    fn count_at(&self, at: usize) -> u64 {
        self.slots[self.heap[at]].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.slots[self.heap[a]].at = a;
        self.slots[self.heap[b]].at = b;
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.count_at(parent) <= self.count_at(at) {
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
            if l < self.heap.len() && self.count_at(l) < self.count_at(least) {
                least = l;
            }
            if r < self.heap.len() && self.count_at(r) < self.count_at(least) {
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
    /// Requests left before this thread's next sample, its generator of
    /// gaps (xorshift32), and its stripe.
    static COUNTDOWN: Cell<u32> = const { Cell::new(1) };
    static DICE: Cell<u32> = const { Cell::new(0x9E37_79B9) };
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Stripes handed out so far (a thread's stripe is the count when it came).
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// A random gap between samples: 1 to 2·SAMPLE_EVERY − 1, SAMPLE_EVERY on average.
fn next_gap() -> u32 {
    DICE.with(|d| {
        let mut x = d.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        d.set(x);
        1 + x % (2 * SAMPLE_EVERY - 1)
    })
}

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
    /// Whether this thread's current request is a sample (its keys then go
    /// to [`HotKeys::offer`]). A countdown: a few instructions per request.
    #[inline]
    pub(crate) fn sampled() -> bool {
        COUNTDOWN.with(|c| {
            let left = c.get().saturating_sub(1);
            if left == 0 {
                c.set(next_gap());
                true
            } else {
                c.set(left);
                false
            }
        })
    }

    /// A sampled request for `key` (never waits).
    pub(crate) fn offer(&self, key: &[u8]) {
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
                (s.estimates(), s.floor())
            })
            .collect();
        let mut merged: HashMap<&[u8], (Estimate, u64)> = HashMap::new();
        for (held, floor) in &sketches {
            for e in held {
                let m =
                    merged.entry(&e.key).or_insert_with(|| (Estimate { key: e.key.clone(), count: 0, error: 0 }, 0));
                m.0.count += e.count;
                m.0.error += e.error;
                // The floors of the stripes that hold it, taken off the total below.
                m.1 += floor;
            }
        }
        let floors: u64 = sketches.iter().map(|s| s.1).sum();
        let mut all: Vec<Estimate> = merged
            .into_values()
            .map(|(mut m, held_floors)| {
                let missing = floors - held_floors;
                m.count = (m.count + missing) * u64::from(SAMPLE_EVERY);
                m.error = (m.error + missing) * u64::from(SAMPLE_EVERY);
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
            prop_assert!(s.slots.len() <= cap);
            prop_assert_eq!(s.slots.iter().map(|e| e.count).sum::<u64>(), keys.len() as u64);
            for (i, &slot) in s.heap.iter().enumerate() {
                let e = &s.slots[slot];
                let truth = exact[&e.key[0]];
                prop_assert!(e.count >= truth && e.count - e.error <= truth, "{:?} truth {}", e, truth);
                prop_assert_eq!(e.at, i);
                prop_assert_eq!(s.table.find(e.hash, |&t| s.slots[t].key == e.key).copied(), Some(slot));
                if i > 0 {
                    prop_assert!(s.count_at((i - 1) / 2) <= e.count);
                }
            }
            for (k, n) in &exact {
                if *n > keys.len() as u64 / cap as u64 {
                    let held = s.slots.iter().any(|e| e.key == [*k]);
                    prop_assert!(held, "key {} seen {} times is missing", k, n);
                }
            }
        }
    }

    #[test]
    fn a_hot_key_comes_first_among_many_cold_ones() {
        let hot = HotKeys::default();
        for i in 0..800_000u32 {
            if HotKeys::sampled() {
                if i % 4 == 0 {
                    hot.offer(b"hot");
                } else {
                    hot.offer(format!("cold-{i}").as_bytes());
                }
            }
        }
        let top = hot.top(5);
        assert_eq!(top[0].key, b"hot");
        // 200 000 requests for it, one in 64 sampled (about 3 125, give or
        // take 60): the scaled estimate is within 10 % of the truth.
        assert!(top[0].count >= 180_000 && top[0].count - top[0].error <= 220_000, "{:?}", top[0]);
        assert!(top.len() <= 5);
    }
}
