//! `stats detail`: per-prefix counts of gets, hits, sets and deletes, the
//! prefix being a key's bytes before the first `:` (memcached's
//! `stats_prefix.c`). Off until `stats detail on` (or `-D`); while on, each
//! counted command takes one short lock. At most [`MAX_PREFIXES`] prefixes
//! are kept — memcached keeps every one it sees, which a client with
//! random prefixes turns into unbounded memory.

use parking_lot::Mutex;
use std::collections::HashMap;

/// The most prefixes counted; later new ones are not counted.
pub(crate) const MAX_PREFIXES: usize = 10_000;

/// What a command did to a prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Get { hit: bool },
    Set,
    Delete,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    get: u64,
    hit: u64,
    set: u64,
    del: u64,
}

/// The per-prefix table.
#[derive(Debug, Default)]
pub(crate) struct PrefixStats {
    table: Mutex<HashMap<Vec<u8>, Counts>>,
}

impl PrefixStats {
    /// Counts `event` for `key`'s prefix; keys without the delimiter have
    /// none and are not counted.
    pub(crate) fn record(&self, delimiter: u8, key: &[u8], event: Event) {
        let Some(end) = key.iter().position(|&b| b == delimiter) else { return };
        let prefix = &key[..end];
        let mut table = self.table.lock();
        if !table.contains_key(prefix) && table.len() >= MAX_PREFIXES {
            return;
        }
        let counts = table.entry(prefix.to_vec()).or_default();
        match event {
            Event::Get { hit } => {
                counts.get += 1;
                counts.hit += u64::from(hit);
            }
            Event::Set => counts.set += 1,
            Event::Delete => counts.del += 1,
        }
    }

    /// `stats detail dump`: one `PREFIX` line per prefix (sorted), then `END`.
    pub(crate) fn dump(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let table = self.table.lock();
        let mut rows: Vec<_> = table.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (prefix, c) in rows {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            // Writing into a Vec cannot fail.
            let _ = write!(out, " get {} hit {} set {} del {}\r\n", c.get, c.hit, c.set, c.del);
        }
        out.extend_from_slice(b"END\r\n");
    }

    /// `stats reset` forgets every prefix.
    pub(crate) fn clear(&self) {
        self.table.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_prefix_and_bounds_the_table() {
        let p = PrefixStats::default();
        p.record(b':', b"foo:1", Event::Set);
        p.record(b':', b"foo:2", Event::Get { hit: true });
        p.record(b':', b"foo:3", Event::Get { hit: false });
        p.record(b':', b"nodelim", Event::Delete);
        let mut out = Vec::new();
        p.dump(&mut out);
        assert_eq!(out, b"PREFIX foo get 2 hit 1 set 1 del 0\r\nEND\r\n");
        for i in 0..MAX_PREFIXES + 5 {
            p.record(b':', format!("p{i}:k").as_bytes(), Event::Set);
        }
        assert_eq!(p.table.lock().len(), MAX_PREFIXES);
        p.clear();
        out.clear();
        p.dump(&mut out);
        assert_eq!(out, b"END\r\n");
    }
}
