//! Answers assembled from several servers: a multi-get whose keys live on
//! different servers (one fragment per server, merged back into the
//! client's key order), and the keyless commands sent to every server.
//!
//! Each fragment's answer is kept as the bytes the server sent; when the
//! last one is in, the client's answer is built from them and filled into
//! its slot. This is the uncommon path, so it favours plainness over
//! avoiding copies.

use crate::control::pool::Pool;
use crate::control::stats;
use crate::data::slots::order::Queue;
use memshard_proto::Reply;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

/// One client answer waiting for its fragments.
pub(crate) struct Merge {
    queue: Queue,
    seq: u64,
    pool: Arc<Pool>,
    kind: Kind,
    parts: RefCell<Parts>,
}

/// How the fragments become one answer.
pub(crate) enum Kind {
    /// A multi-get: the client's keys in order, space separated.
    Get(Vec<u8>),
    /// flush_all / verbosity: `OK` when every server said so, else the
    /// first other answer.
    All,
}

struct Parts {
    /// Each fragment's answer (`Err`: the proxy's own `SERVER_ERROR` line).
    got: Vec<Option<Result<Vec<u8>, Vec<u8>>>>,
    left: usize,
}

impl Merge {
    /// An answer for slot `seq` of `queue`, made of `parts` fragments.
    pub(crate) fn new(queue: Queue, seq: u64, pool: Arc<Pool>, kind: Kind, parts: usize) -> Rc<Merge> {
        let got = (0..parts).map(|_| None).collect();
        Rc::new(Merge { queue, seq, pool, kind, parts: RefCell::new(Parts { got, left: parts }) })
    }

    /// Fragment `i` is in (`Err`: it failed, with the proxy's error line).
    pub(crate) fn part(&self, i: usize, res: Result<&[u8], &[u8]>) {
        let done = {
            let mut p = self.parts.borrow_mut();
            match p.got.get_mut(i) {
                Some(slot @ None) => *slot = Some(res.map(<[u8]>::to_vec).map_err(<[u8]>::to_vec)),
                _ => return,
            }
            p.left -= 1;
            p.left == 0
        };
        if done {
            let got = std::mem::take(&mut self.parts.borrow_mut().got);
            let answer = match &self.kind {
                Kind::Get(keys) => merge_get(keys, got),
                Kind::All => all_ok(got),
            };
            let bytes = match answer {
                Ok(b) => b,
                Err(line) => {
                    stats::add(&self.pool.stats.forward_error, 1);
                    line
                }
            };
            self.queue.fill(self.seq, &[&bytes]);
        }
    }
}

/// The fragments of a multi-get in the client's key order (each occurrence
/// of a key answered, misses left out, as memcached does), or the first
/// fragment's error: a server's error line as `Ok`, a proxy failure as
/// `Err`.
fn merge_get(keys: &[u8], got: Vec<Option<Result<Vec<u8>, Vec<u8>>>>) -> Result<Vec<u8>, Vec<u8>> {
    // The first fragment, in server order, that is not a run of values
    // answers for the whole get.
    let mut answers = Vec::with_capacity(got.len());
    for g in got {
        let a = g.unwrap_or_else(|| Err(Vec::new()))?;
        let mut at = 0;
        while let Ok(Some((reply, used))) = Reply::decode(&a[at..]) {
            if !matches!(reply, Reply::Value { .. } | Reply::End) {
                return Ok(a[at..at + used].to_vec());
            }
            at += used;
        }
        answers.push(a);
    }
    // Each key's values: (fragment, byte range), in the order served.
    let mut values: HashMap<&[u8], VecDeque<(usize, Range<usize>)>> = HashMap::new();
    for (n, a) in answers.iter().enumerate() {
        let mut at = 0;
        while let Ok(Some((reply, used))) = Reply::decode(&a[at..]) {
            if let Reply::Value { key, .. } = reply {
                values.entry(key).or_default().push_back((n, at..at + used));
            }
            at += used;
        }
    }
    let mut out = Vec::new();
    for key in keys.split(|&b| b == b' ').filter(|k| !k.is_empty()) {
        if let Some((n, r)) = values.get_mut(key).and_then(VecDeque::pop_front) {
            out.extend_from_slice(&answers[n][r]);
        }
    }
    out.extend_from_slice(b"END\r\n");
    Ok(out)
}

/// `OK` when every server answered `OK`; otherwise the first failure: a
/// proxy failure before a server's own answer, as before.
fn all_ok(got: Vec<Option<Result<Vec<u8>, Vec<u8>>>>) -> Result<Vec<u8>, Vec<u8>> {
    let got: Vec<Result<Vec<u8>, Vec<u8>>> = got.into_iter().map(|g| g.unwrap_or_else(|| Err(Vec::new()))).collect();
    if let Some(Err(line)) = got.iter().find(|g| g.is_err()) {
        return Err(line.clone());
    }
    match got.into_iter().flatten().find(|a| !a.starts_with(b"OK\r\n")) {
        Some(other) => Ok(other),
        None => Ok(b"OK\r\n".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_merge_in_key_order() {
        let a = b"VALUE h 0 1\r\nh\r\nVALUE a 0 1\r\na\r\nVALUE a 0 1\r\na\r\nEND\r\n".to_vec();
        let b = b"VALUE g 0 1\r\ng\r\nEND\r\n".to_vec();
        let merged = merge_get(b"h a missing g a", vec![Some(Ok(a)), Some(Ok(b))]).expect("merged");
        let a = "VALUE a 0 1\r\na\r\n";
        assert_eq!(String::from_utf8_lossy(&merged), format!("VALUE h 0 1\r\nh\r\n{a}VALUE g 0 1\r\ng\r\n{a}END\r\n"));
        let err = merge_get(b"a", vec![Some(Ok(b"END\r\n".to_vec())), Some(Err(b"SERVER_ERROR x\r\n".to_vec()))]);
        assert_eq!(err, Err(b"SERVER_ERROR x\r\n".to_vec()));
        assert_eq!(
            all_ok(vec![Some(Ok(b"OK\r\n".to_vec())), Some(Ok(b"ERROR\r\n".to_vec()))]),
            Ok(b"ERROR\r\n".to_vec())
        );
    }
}
