//! The random distribution (`random_update` and `random_dispatch`, src/hashkit/nc_random.c), and
//! the small generator used when the caller does not bring one.
//!
//! twemproxy's "random" ignores the key and the weights: each request goes to
//! `live[random() % nlive]`, one slot per live server, with libc `random()` seeded by
//! `srandom(time(NULL))`. Its sequence is not reproducible across processes, so compatibility
//! only means the same *distribution*: uniform over the live servers, per request. Tests inject
//! their own numbers through [`crate::Ring::server_for_with`].

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

thread_local! {
    /// Per-thread xorshift64* state: lock-free, allocation-free, seeded once per thread. Zero
    /// means "not seeded yet" (xorshift never reaches zero from a non-zero state).
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// A 32-bit pseudo-random number for the random distribution when the caller injects none.
/// Statistical quality is all that is needed here; this is not for secrets.
pub(crate) fn next_u32() -> u32 {
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // std's `RandomState` is seeded from the OS once per thread: a cheap entropy source
            // that keeps this crate free of an RNG dependency.
            x = RandomState::new().hash_one(0x6d65_6d73_6861_7264_u64) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    })
}

/// Index into a table of `len` live servers for the random number `draw`, as `random_dispatch`
/// computes it: `draw % len`. The modulo bias is below `len / 2^32`, far under any measurable
/// imbalance. `len` must be non-zero.
#[inline]
pub(crate) fn position(draw: u32, len: usize) -> usize {
    draw as usize % len.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_generator_spreads_over_small_tables() {
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            counts[position(next_u32(), 3)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
