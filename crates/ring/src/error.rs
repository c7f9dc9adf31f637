//! The one error type of this crate.

/// Why a ring could not be built or a name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The server set is empty, or every server is ejected. twemproxy answers every request of
    /// such a pool with `SERVER_ERROR Connection refused`.
    #[error("no live servers")]
    NoServers,
    /// A server has weight 0, which twemproxy's configuration rejects ("has a zero weight").
    #[error("server {index} ({name:?}) has a zero weight")]
    ZeroWeight {
        /// Index of the server in the caller's list.
        index: usize,
        /// Its twemproxy identity string.
        name: String,
    },
    /// Two servers share an identity string, which twemproxy rejects ("has servers with same
    /// name"): they would get identical ketama points and one of them would never own a key.
    #[error("servers {first} and {second} have the same name {name:?}")]
    DuplicateName {
        /// Index of one of the servers in the caller's list.
        first: usize,
        /// Index of the other one.
        second: usize,
        /// The shared identity string.
        name: String,
    },
    /// The live servers' weights add up to more than `u32::MAX` (twemproxy keeps the sum in a
    /// `uint32_t` and would silently wrap).
    #[error("the total weight of the servers exceeds {max}", max = u32::MAX)]
    WeightOverflow,
    /// More servers than a `u32` index can name.
    #[error("too many servers: {0}")]
    TooManyServers(usize),
    /// Not one of twemproxy's 12 `hash:` names.
    #[error(
        "unknown hash {0:?} (expected one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, \
         fnv1_32, fnv1a_32, hsieh, murmur, jenkins)"
    )]
    UnknownHash(String),
    /// Not one of twemproxy's `distribution:` names.
    #[error("unknown distribution {0:?} (expected one of ketama, modula, random)")]
    UnknownDistribution(String),
}
