//! memcached 1.6.18 constants and size formulas.
//!
//! Our own memory accounting is different (see [`crate::item_footprint`]),
//! but a few observable behaviours are defined by memcached's item layout:
//! the `-I` "object too large" boundary, the `me` debug command's `size=` field, and incr/decr refusing "chunked" (very large) items. These
//! helpers reproduce memcached's arithmetic so the server can match it.

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// Largest relative exptime (30 days); larger values are absolute unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// `sizeof(item)` of memcached 1.6 on a 64-bit build.
pub const MEMCACHED_ITEM_HEADER: usize = 48;

/// memcached's default `slab_chunk_max` (half of a 1 MiB slab page). Items
/// whose [`memcached_item_size`] exceeds it are stored "chunked", and
/// `incr`/`decr` answer "non-numeric" for them.
pub const SLAB_CHUNK_SIZE_MAX: usize = 512 * 1024;

/// memcached's `ITEM_ntotal` for an item with CAS enabled:
/// `sizeof(item) + (nkey + 1) + (flags ? 4 : 0) + (nbytes + 2) + 8`.
///
/// The `+1` is the key's NUL, the `+2` the stored `\r\n`, the `+8` the CAS.
/// This is what memcached compares against `-I` (`item_size_ok`), so with the
/// default 1 MiB limit the largest value `set` accepts is
/// `1048576 - 59 - key_len - (flags != 0 ? 4 : 0)` bytes, e.g. 1 048 516 for a
/// one-byte key and zero flags (verified against a real memcached 1.6.18).
pub fn memcached_item_size(key_len: usize, value_len: usize, flags: u32) -> usize {
    let suffix = if flags == 0 { 0 } else { 4 };
    MEMCACHED_ITEM_HEADER + key_len + 1 + suffix + value_len + 2 + 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_size_matches_memcached_boundary() {
        // Largest accepted values measured on memcached 1.6.18 with -I 1m.
        let limit = 1024 * 1024;
        assert_eq!(memcached_item_size(1, 1_048_516, 0), limit);
        assert_eq!(memcached_item_size(1, 1_048_512, 1), limit);
        assert_eq!(memcached_item_size(10, 1_048_507, 0), limit);
    }
}
