//! twemproxy's 12 key hash functions (`src/hashkit/`), reproduced bit for bit.
//!
//! Several of them read key bytes through a C `char *`. `char` is signed on x86-64, so a byte
//! ≥ 0x80 is sign-extended before it is XORed or added (`0xE9` becomes `0xFFFF_FFE9`). That is a
//! bug by the algorithms' own definitions, but it is what every deployed twemproxy computes, and
//! keys would move if we "fixed" it (twemproxy PR #313, which proposed the fix, was refused). The
//! affected functions say so where they sign-extend.

mod crc;
mod fnv;
mod hsieh;
mod jenkins;
mod md5;
mod murmur;

use std::fmt;
use std::str::FromStr;

use crate::RingError;

pub(crate) use md5::md5_digest;

/// One of twemproxy's `hash:` functions. [`HashKind::default`] is twemproxy's default, `fnv1a_64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashKind {
    /// `one_at_a_time`: Bob Jenkins' one-at-a-time hash over sign-extended bytes.
    OneAtATime,
    /// `md5`: the first 4 bytes of the key's MD5 digest, little-endian.
    Md5,
    /// `crc16`: CRC-16/XMODEM whose accumulator is never truncated to 16 bits.
    Crc16,
    /// `crc32`: libmemcached's 15-bit CRC-32 (`(crc32 >> 16) & 0x7fff`); it sends nearly every
    /// key to one server under ketama (twemproxy issue #175), but it is what the name means.
    Crc32,
    /// `crc32a`: the standard CRC-32 (IEEE, as zlib computes it).
    Crc32a,
    /// `fnv1_64`: 64-bit FNV-1 over sign-extended bytes, truncated to 32 bits.
    Fnv164,
    /// `fnv1a_64`, the default: a 32-bit FNV-1a with the low halves of the 64-bit offset and prime,
    /// over sign-extended bytes. It equals truncated FNV-1a-64 only for ASCII keys.
    #[default]
    Fnv1a64,
    /// `fnv1_32`: 32-bit FNV-1 over sign-extended bytes.
    Fnv132,
    /// `fnv1a_32`: 32-bit FNV-1a over sign-extended bytes.
    Fnv1a32,
    /// `hsieh`: Paul Hsieh's SuperFastHash with initial value 0.
    Hsieh,
    /// `murmur`: MurmurHash2 with seed `0xdeadbeef * len`.
    Murmur,
    /// `jenkins`: Bob Jenkins' lookup3 `hashlittle` with initial value 13.
    Jenkins,
}

impl HashKind {
    /// All 12 functions, in the order twemproxy's `hash:` documentation lists them.
    pub const ALL: [HashKind; 12] = [
        HashKind::OneAtATime,
        HashKind::Md5,
        HashKind::Crc16,
        HashKind::Crc32,
        HashKind::Crc32a,
        HashKind::Fnv164,
        HashKind::Fnv1a64,
        HashKind::Fnv132,
        HashKind::Fnv1a32,
        HashKind::Hsieh,
        HashKind::Murmur,
        HashKind::Jenkins,
    ];

    /// Hashes `key` exactly as twemproxy's function of this name does.
    ///
    /// This is the raw function: the ring applies the hash tag and the "empty key hashes to 0"
    /// rule before calling it (see [`crate::Ring::key_hash`]).
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HashKind::OneAtATime => jenkins::one_at_a_time(key),
            HashKind::Md5 => md5::md5(key),
            HashKind::Crc16 => crc::crc16(key),
            HashKind::Crc32 => crc::crc32(key),
            HashKind::Crc32a => crc::crc32a(key),
            HashKind::Fnv164 => fnv::fnv1_64(key),
            HashKind::Fnv1a64 => fnv::fnv1a_64(key),
            HashKind::Fnv132 => fnv::fnv1_32(key),
            HashKind::Fnv1a32 => fnv::fnv1a_32(key),
            HashKind::Hsieh => hsieh::hsieh(key),
            HashKind::Murmur => murmur::murmur(key),
            HashKind::Jenkins => jenkins::lookup3(key),
        }
    }

    /// The name used in twemproxy's YAML (`hash: fnv1a_64`).
    pub fn name(self) -> &'static str {
        match self {
            HashKind::OneAtATime => "one_at_a_time",
            HashKind::Md5 => "md5",
            HashKind::Crc16 => "crc16",
            HashKind::Crc32 => "crc32",
            HashKind::Crc32a => "crc32a",
            HashKind::Fnv164 => "fnv1_64",
            HashKind::Fnv1a64 => "fnv1a_64",
            HashKind::Fnv132 => "fnv1_32",
            HashKind::Fnv1a32 => "fnv1a_32",
            HashKind::Hsieh => "hsieh",
            HashKind::Murmur => "murmur",
            HashKind::Jenkins => "jenkins",
        }
    }
}

impl FromStr for HashKind {
    type Err = RingError;

    /// Parses a twemproxy `hash:` value. Like twemproxy, the match is exact and case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashKind::ALL.into_iter().find(|kind| kind.name() == s).ok_or_else(|| RingError::UnknownHash(s.to_owned()))
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Widens a key byte the way C does when it reads it through a signed `char` (x86-64): bytes
/// ≥ 0x80 become negative, so their upper 24 bits are set.
#[inline]
pub(crate) fn sign_extend(byte: u8) -> u32 {
    // i8 → i32 sign-extends, and i32 → u32 keeps the bit pattern: exactly C's `(uint32_t)(char)b`.
    i32::from(byte as i8) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extension_sets_the_upper_bits_only_for_high_bytes() {
        assert_eq!(sign_extend(0x41), 0x41);
        assert_eq!(sign_extend(0x7F), 0x7F);
        assert_eq!(sign_extend(0x80), 0xFFFF_FF80);
        assert_eq!(sign_extend(0xE9), 0xFFFF_FFE9);
    }

    #[test]
    fn names_round_trip() {
        for kind in HashKind::ALL {
            assert_eq!(kind.name().parse::<HashKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert!("FNV1A_64".parse::<HashKind>().is_err());
        assert_eq!(HashKind::default(), HashKind::Fnv1a64);
    }
}
