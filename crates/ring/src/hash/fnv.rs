//! The four FNV variants of twemproxy's `nc_fnv.c`.
//!
//! All four read bytes through a signed `char`, so bytes ≥ 0x80 are sign-extended before the XOR.

use super::sign_extend;

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

/// `fnv1_64`: true 64-bit FNV-1 (multiply, then XOR), returning the low 32 bits.
pub(super) fn fnv1_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT;
    for &byte in key {
        hash = hash.wrapping_mul(FNV_64_PRIME);
        // C: `hash ^= (uint64_t)key[x]` with a signed char, i.e. sign-extended to 64 bits. Only
        // the low 32 bits are returned and they never depend on the high ones, but we keep the
        // 64-bit state so the code reads like the algorithm it is.
        hash ^= i64::from(byte as i8) as u64;
    }
    hash as u32
}

/// `fnv1a_64`, twemproxy's default: despite the name, a 32-bit hash. twemproxy keeps the state in
/// a `uint32_t` seeded with the low half of the 64-bit offset basis (`0x84222325`) and multiplies
/// by the low half of the 64-bit prime (`0x1b3`). For ASCII keys that equals the low 32 bits of
/// real FNV-1a-64, for bytes ≥ 0x80 it does not.
pub(super) fn fnv1a_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT as u32;
    for &byte in key {
        hash ^= sign_extend(byte);
        hash = hash.wrapping_mul(FNV_64_PRIME as u32);
    }
    hash
}

/// `fnv1_32`: 32-bit FNV-1 (multiply, then XOR).
pub(super) fn fnv1_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &byte in key {
        hash = hash.wrapping_mul(FNV_32_PRIME);
        hash ^= sign_extend(byte);
    }
    hash
}

/// `fnv1a_32`: 32-bit FNV-1a (XOR, then multiply).
pub(super) fn fnv1a_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &byte in key {
        hash ^= sign_extend(byte);
        hash = hash.wrapping_mul(FNV_32_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference FNV-1a-64 with unsigned bytes, as the algorithm is normally defined.
    fn textbook_fnv1a_64(key: &[u8]) -> u64 {
        key.iter().fold(FNV_64_INIT, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_64_PRIME))
    }

    #[test]
    fn fnv1a_64_is_truncated_textbook_fnv_for_ascii_only() {
        assert_eq!(fnv1a_64(b"user:1000"), textbook_fnv1a_64(b"user:1000") as u32);
        assert_ne!(fnv1a_64("café".as_bytes()), textbook_fnv1a_64("café".as_bytes()) as u32);
    }

    #[test]
    fn empty_key_is_the_offset_basis() {
        assert_eq!(fnv1a_64(b""), 0x8422_2325);
        assert_eq!(fnv1_64(b""), 0x8422_2325);
        assert_eq!(fnv1_32(b""), FNV_32_INIT);
        assert_eq!(fnv1a_32(b""), FNV_32_INIT);
    }
}
