//! MurmurHash2 as twemproxy's `nc_murmur.c` computes it.

const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// `murmur`: MurmurHash2 with the seed `0xdeadbeef * len` and 4-byte little-endian blocks (the
/// C code reads `*(unsigned int *)`, which is little-endian on x86-64). Bytes are unsigned.
pub(super) fn murmur(key: &[u8]) -> u32 {
    // twemproxy truncates the length to 32 bits; memcached keys are at most 250 bytes.
    let len = key.len() as u32;
    let seed = 0xdead_beef_u32.wrapping_mul(len);
    let mut h = seed ^ len;

    let mut blocks = key.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // The C switch falls through from 3 to 2 to 1.
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}
