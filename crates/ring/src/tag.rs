//! `hash_tag:`: which bytes of a key are hashed.

/// A pool's two-character `hash_tag` (for example `{}`): when a key contains a non-empty span
/// between the first `open` byte and the next `close` byte after it, only that span is hashed,
/// so `user:{42}:name` and `user:{42}:email` land on the same server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashTag {
    open: u8,
    close: u8,
}

impl HashTag {
    /// A tag from its opening and closing byte. They may be equal (`$$`).
    pub fn new(open: u8, close: u8) -> Self {
        HashTag { open, close }
    }

    /// A tag from its configured text, which twemproxy requires to be exactly 2 bytes long.
    pub fn from_bytes(text: &[u8]) -> Option<Self> {
        match *text {
            [open, close] => Some(HashTag::new(open, close)),
            _ => None,
        }
    }

    /// The tag's two bytes, `[open, close]`.
    pub fn as_bytes(self) -> [u8; 2] {
        [self.open, self.close]
    }

    /// The bytes of `key` that are hashed (`server_pool_idx`, nc_server.c):
    ///
    /// - find the first `open` byte; then the first `close` byte strictly after it;
    /// - if both exist and at least one byte lies between them, return those bytes;
    /// - otherwise return the whole key (so `{}x`, `a{b`, `{` and `x}{` hash whole).
    ///
    /// Only the *first* `open` counts: in `{{a}}` the span is `{a`, and in `a{}{b}` it is empty,
    /// so the whole key is hashed.
    pub fn apply(self, key: &[u8]) -> &[u8] {
        let Some(open_at) = key.iter().position(|&b| b == self.open) else {
            return key;
        };
        let after = &key[open_at + 1..];
        match after.iter().position(|&b| b == self.close) {
            Some(span_len) if span_len > 0 => &after[..span_len],
            _ => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn braces(key: &[u8]) -> &[u8] {
        HashTag::new(b'{', b'}').apply(key)
    }

    #[test]
    fn edge_rules() {
        assert_eq!(braces(b"{user1}:a"), b"user1");
        assert_eq!(braces(b"user:{user1}:b"), b"user1");
        assert_eq!(braces(b"{}x"), b"{}x");
        assert_eq!(braces(b"a{b"), b"a{b");
        assert_eq!(braces(b"{"), b"{");
        assert_eq!(braces(b"x}{"), b"x}{");
        assert_eq!(braces(b"{{a}}"), b"{a");
        assert_eq!(braces(b"a{}{b}"), b"a{}{b}");
        assert_eq!(braces(b""), b"");
    }

    #[test]
    fn equal_open_and_close() {
        let tag = HashTag::new(b'$', b'$');
        assert_eq!(tag.apply(b"a$bc$d"), b"bc");
        assert_eq!(tag.apply(b"a$$d"), b"a$$d");
        assert_eq!(HashTag::from_bytes(b"{}"), Some(HashTag::new(b'{', b'}')));
        assert_eq!(HashTag::from_bytes(b"{"), None);
    }
}
