//! The names accepted by `hash:` and `distribution:`.
//!
//! Only the names live here. The hash functions and the ring are in the
//! proxy's ring crate, which maps these names onto its own types; keeping
//! this crate free of that dependency lets `memshard proxy -t` check a file
//! without building any ring.

use std::fmt;
use std::str::FromStr;

/// A key hash function name, as written after `hash:` (twemproxy's
/// `HASH_CODEC` list, nc_hashkit.h). Matching is exact and case-sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashName {
    /// `one_at_a_time`: Bob Jenkins' one-at-a-time hash.
    OneAtATime,
    /// `md5`: the first 4 bytes of MD5, little-endian.
    Md5,
    /// `crc16`.
    Crc16,
    /// `crc32`: libmemcached's variant (15 bits of the CRC-32).
    Crc32,
    /// `crc32a`: the plain CRC32.
    Crc32a,
    /// `fnv1_64`.
    Fnv1_64,
    /// `fnv1a_64`, twemproxy's default (a 32-bit hash despite its name).
    #[default]
    Fnv1a64,
    /// `fnv1_32`.
    Fnv1_32,
    /// `fnv1a_32`.
    Fnv1a32,
    /// `hsieh`: Paul Hsieh's SuperFastHash.
    Hsieh,
    /// `murmur`: MurmurHash2.
    Murmur,
    /// `jenkins`: Bob Jenkins' lookup3.
    Jenkins,
}

impl HashName {
    /// Every hash name, in twemproxy's `HASH_CODEC` order.
    pub const ALL: [HashName; 12] = [
        HashName::OneAtATime,
        HashName::Md5,
        HashName::Crc16,
        HashName::Crc32,
        HashName::Crc32a,
        HashName::Fnv1_64,
        HashName::Fnv1a64,
        HashName::Fnv1_32,
        HashName::Fnv1a32,
        HashName::Hsieh,
        HashName::Murmur,
        HashName::Jenkins,
    ];

    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            HashName::OneAtATime => "one_at_a_time",
            HashName::Md5 => "md5",
            HashName::Crc16 => "crc16",
            HashName::Crc32 => "crc32",
            HashName::Crc32a => "crc32a",
            HashName::Fnv1_64 => "fnv1_64",
            HashName::Fnv1a64 => "fnv1a_64",
            HashName::Fnv1_32 => "fnv1_32",
            HashName::Fnv1a32 => "fnv1a_32",
            HashName::Hsieh => "hsieh",
            HashName::Murmur => "murmur",
            HashName::Jenkins => "jenkins",
        }
    }
}

impl fmt::Display for HashName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a hash or distribution name; its text is
/// twemproxy's handler message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownName(&'static str);

impl FromStr for HashName {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashName::ALL.into_iter().find(|h| h.as_str() == s).ok_or(UnknownName("is not a valid hash"))
    }
}

/// How keys are spread over servers, as written after `distribution:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Distribution {
    /// `ketama`: libmemcached-compatible consistent hashing (the default).
    #[default]
    Ketama,
    /// `modula`: hash modulo the weighted server count.
    Modula,
    /// `random`: any live server, ignoring the key.
    Random,
}

impl Distribution {
    /// Every distribution, in twemproxy's `DIST_CODEC` order.
    pub const ALL: [Distribution; 3] = [Distribution::Ketama, Distribution::Modula, Distribution::Random];

    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Distribution {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Distribution::ALL.into_iter().find(|d| d.as_str() == s).ok_or(UnknownName("is not a valid distribution"))
    }
}
