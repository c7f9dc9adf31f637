//! Bob Jenkins' two hashes: `one_at_a_time` (`nc_one_at_a_time.c`) and lookup3's `hashlittle`
//! (`jenkins`, `nc_jenkins.c`).

use super::sign_extend;

/// `one_at_a_time`. twemproxy reads each byte through a signed `char`, so bytes ≥ 0x80 are
/// sign-extended before they are added.
pub(super) fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &byte in key {
        value = value.wrapping_add(sign_extend(byte));
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

/// lookup3's initial value as twemproxy passes it (`JENKINS_INITVAL`).
const INITVAL: u32 = 13;

/// `jenkins`: lookup3 `hashlittle(key, len, 13)`.
///
/// twemproxy has three code paths chosen by the key pointer's alignment (32-bit reads, 16-bit
/// reads, byte reads). On a little-endian machine they compute the same value by lookup3's
/// design, so one byte-wise implementation covers all three. Bytes are read unsigned here.
pub(super) fn lookup3(key: &[u8]) -> u32 {
    // The length is folded into the seed as a `uint32_t`; keys are at most 250 bytes in practice.
    let init = 0xdead_beef_u32.wrapping_add(key.len() as u32).wrapping_add(INITVAL);
    let (mut a, mut b, mut c) = (init, init, init);

    // All but the last block: blocks of 12 while *more than* 12 bytes remain, so a key whose
    // length is a multiple of 12 keeps its last full block for the final step.
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(le32(&rest[0..4]));
        b = b.wrapping_add(le32(&rest[4..8]));
        c = c.wrapping_add(le32(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }

    if rest.is_empty() {
        // Zero-length keys (and only those: a non-empty key always leaves 1..=12 bytes) skip the
        // final mix.
        return c;
    }
    // The last 1..=12 bytes, zero-padded: the same as the C switch's masks and fall-throughs.
    let mut tail = [0u8; 12];
    tail[..rest.len()].copy_from_slice(rest);
    a = a.wrapping_add(le32(&tail[0..4]));
    b = b.wrapping_add(le32(&tail[4..8]));
    c = c.wrapping_add(le32(&tail[8..12]));
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// Little-endian u32 from exactly 4 bytes (callers always slice 4).
fn le32(bytes: &[u8]) -> u32 {
    bytes.iter().rev().fold(0, |acc, &b| (acc << 8) | u32::from(b))
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup3_empty_key_returns_the_seed() {
        assert_eq!(lookup3(b""), 0xdead_beef_u32.wrapping_add(INITVAL));
    }

    #[test]
    fn one_at_a_time_sign_extends() {
        // 0xE9 and 0xFFFFFFE9 differ, so the result must differ from the unsigned reading.
        let unsigned = {
            let mut v: u32 = 0;
            v = v.wrapping_add(0xE9);
            v = v.wrapping_add(v << 10);
            v ^= v >> 6;
            v = v.wrapping_add(v << 3);
            v ^= v >> 11;
            v.wrapping_add(v << 15)
        };
        assert_ne!(one_at_a_time(&[0xE9]), unsigned);
    }
}
