//! Never wrong data: per-key versioned values.
//!
//! Each key has one writer, which stores `KEY=N` with N increasing. A write
//! that succeeded is *acknowledged*; one that failed (timeout, SERVER_ERROR)
//! may or may not have been stored, so its version stays *possible*. A read
//! may return a miss (it is a cache), the acknowledged version, or a possible
//! version newer than it — and nothing else: an older version, another key's
//! value or garbage is wrong data.

use std::collections::BTreeSet;

/// What one key's writer knows.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyState {
    next: u64,
    acked: Option<u64>,
    possible: BTreeSet<u64>,
}

impl KeyState {
    /// The version of the next write.
    pub(crate) fn next_version(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The write of `version` succeeded.
    pub(crate) fn acked(&mut self, version: u64) {
        self.acked = Some(version);
        // Nothing older can legitimately be read any more.
        self.possible.retain(|&v| v > version);
    }

    /// Whether a write of the key was acknowledged.
    pub(crate) fn has_acked(&self) -> bool {
        self.acked.is_some()
    }

    /// The write of `version` failed: it may still have been stored.
    pub(crate) fn maybe(&mut self, version: u64) {
        self.possible.insert(version);
    }

    /// Why `value`, read for `key`, is wrong; `None` when it is acceptable.
    pub(crate) fn check(&self, key: &str, value: Option<&[u8]>) -> Option<String> {
        let value = value?;
        let text = String::from_utf8_lossy(value);
        let Some(version) = text.strip_prefix(key).and_then(|r| r.strip_prefix('=')).and_then(|n| n.parse().ok())
        else {
            return Some(format!("{key}: read {text:?}, which is not a value of this key"));
        };
        let fine =
            Some(version) == self.acked || (self.possible.contains(&version) && self.acked.is_none_or(|a| version > a));
        (!fine).then(|| {
            format!("{key}: read version {version}, acknowledged {:?}, possible {:?}", self.acked, self.possible)
        })
    }
}

/// The value stored for `key` at `version`.
pub(crate) fn value(key: &str, version: u64) -> String {
    format!("{key}={version}")
}

#[cfg(test)]
mod tests {
    use super::{KeyState, value};

    #[test]
    fn accepts_latest_or_miss_and_flags_stale_and_foreign_values() {
        let mut k = KeyState::default();
        let v1 = k.next_version();
        assert_eq!(k.check("a", Some(value("a", v1).as_bytes())).map(|_| ()), Some(()), "unwritten version");
        k.acked(v1);
        assert_eq!(k.check("a", None), None);
        assert_eq!(k.check("a", Some(b"a=1")), None);
        let v2 = k.next_version();
        k.maybe(v2);
        assert_eq!(k.check("a", Some(b"a=2")), None, "a failed write may have landed");
        assert_eq!(k.check("a", Some(b"a=1")), None);
        let v3 = k.next_version();
        k.acked(v3);
        assert!(k.check("a", Some(b"a=1")).is_some(), "stale");
        assert!(k.check("a", Some(b"a=2")).is_some(), "older than the acknowledged write");
        assert!(k.check("a", Some(b"b=3")).is_some(), "another key's value");
        assert!(k.check("a", Some(b"junk")).is_some());
    }
}
