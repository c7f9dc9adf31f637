//! Paul Hsieh's SuperFastHash as twemproxy's `nc_hsieh.c` computes it.

use super::sign_extend;

/// `hsieh`. Two departures from the published SuperFastHash, both kept for compatibility: the
/// initial hash is 0 rather than the key length, and in the 3-byte tail the third byte is read
/// through a signed `char`, so bytes ≥ 0x80 are sign-extended before the shift.
pub(super) fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut hash: u32 = 0;
    let mut blocks = key.chunks_exact(4);
    for block in &mut blocks {
        hash = hash.wrapping_add(get16(block[0], block[1]));
        let tmp = (get16(block[2], block[3]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    match *blocks.remainder() {
        [b0, b1, b2] => {
            hash = hash.wrapping_add(get16(b0, b1));
            hash ^= hash << 16;
            hash ^= sign_extend(b2) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        [b0, b1] => {
            hash = hash.wrapping_add(get16(b0, b1));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        [b0] => {
            // Here the C code casts to `unsigned char`: no sign extension.
            hash = hash.wrapping_add(u32::from(b0));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    // Force "avalanching" of the final bits.
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash.wrapping_add(hash >> 6)
}

/// A little-endian 16-bit read of two unsigned bytes (`get16bits`).
fn get16(lo: u8, hi: u8) -> u32 {
    u32::from(lo) | (u32::from(hi) << 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_hashes_to_zero() {
        assert_eq!(hsieh(b""), 0);
    }
}
