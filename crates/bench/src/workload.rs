//! What each request is: key and operation choice, and its encoding.
//!
//! Everything here is prepared once per run and shared read-only by all
//! connections, so the hot path allocates nothing: keys are pre-formatted,
//! the value is one buffer, and requests are encoded straight into the
//! connection's reusable write buffer.

use crate::config::BenchConfig;
use memshard_proto::{Get, GetCmd, Keys, Store, StoreCmd};
use rand::Rng;
use rand::rngs::SmallRng;

/// The operation of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Set,
}

/// The shared, immutable description of the requests to send.
#[derive(Debug)]
pub(crate) struct Workload {
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
    get_ratio: f64,
}

impl Workload {
    pub(crate) fn new(cfg: &BenchConfig) -> Self {
        let keys = (0..cfg.key_space).map(|i| format!("{}{i}", cfg.key_prefix).into_bytes()).collect();
        // Printable, varied bytes: some servers or proxies treat values as text in logs.
        let value = (0..cfg.value_size).map(|i| b'a' + (i % 26) as u8).collect();
        Workload { keys, value, get_ratio: cfg.get_ratio }
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Picks the next request: uniform key, `get` with probability `get_ratio`.
    pub(crate) fn pick(&self, rng: &mut SmallRng) -> (Op, usize) {
        let op = if rng.random::<f64>() < self.get_ratio { Op::Get } else { Op::Set };
        (op, rng.random_range(0..self.keys.len()))
    }

    /// Appends the wire form of `op` on key number `key` to `out`.
    pub(crate) fn encode(&self, op: Op, key: usize, out: &mut Vec<u8>) {
        let key = &self.keys[key];
        match op {
            Op::Get => Get { cmd: GetCmd::Get, exptime: 0, keys: Keys::from_raw(key) }.encode(out),
            Op::Set => {
                Store { cmd: StoreCmd::Set, key, flags: 0, exptime: 0, cas: 0, noreply: false, value: &self.value }
                    .encode(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn encodes_gets_and_sets() {
        let cfg = BenchConfig { key_space: 3, value_size: 4, ..BenchConfig::default() };
        let w = Workload::new(&cfg);
        let mut out = Vec::new();
        w.encode(Op::Get, 2, &mut out);
        w.encode(Op::Set, 0, &mut out);
        assert_eq!(out, b"get key:2\r\nset key:0 0 0 4\r\nabcd\r\n");
    }

    #[test]
    fn ratio_and_key_range() {
        let cfg = BenchConfig { key_space: 10, get_ratio: 0.9, ..BenchConfig::default() };
        let w = Workload::new(&cfg);
        let mut rng = SmallRng::seed_from_u64(1);
        let picks: Vec<_> = (0..10_000).map(|_| w.pick(&mut rng)).collect();
        let gets = picks.iter().filter(|(op, _)| *op == Op::Get).count();
        assert!((8_700..9_300).contains(&gets), "{gets} gets");
        assert!(picks.iter().all(|&(_, k)| k < 10));
        let all_gets = Workload { get_ratio: 1.0, ..Workload::new(&cfg) };
        assert!((0..1000).all(|_| all_gets.pick(&mut rng).0 == Op::Get));
    }
}
