//! MD5, used twice by twemproxy: as the `md5` key hash and for ketama's continuum points.

use ::md5::{Digest, Md5};

/// The 16-byte MD5 digest of `data`.
pub(crate) fn md5_digest(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// `md5`: the first 4 digest bytes as a little-endian u32 (`hash_md5`, which is ketama's point
/// hash with alignment 0).
pub(super) fn md5(key: &[u8]) -> u32 {
    let d = md5_digest(key);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}
