//! What each request is: operation, key and value size, and its wire form.
//!
//! Prepared once per run and shared read-only by all connections, so the hot
//! path allocates nothing: keys are written as prefix + decimal number straight
//! into the connection's reusable write buffer (no table of keys, so the key
//! space costs no memory), and every value is a slice of one buffer.

use crate::config::BenchConfig;
use crate::error::BenchError;
use crate::keys::KeySampler;
use crate::mix::{Mix, Op};
use crate::values::ValueSize;
use memshard_proto::put_u64;
use rand::Rng;
use rand::rngs::SmallRng;

/// The shared, immutable description of the requests to send.
#[derive(Debug)]
pub(crate) struct Workload {
    prefix: Vec<u8>,
    value: Vec<u8>,
    mix: Mix,
    keys: KeySampler,
    key_space: usize,
    sizes: ValueSize,
    multiget: usize,
}

impl Workload {
    pub(crate) fn new(cfg: &BenchConfig) -> Result<Self, BenchError> {
        // Printable, varied bytes: some servers or proxies treat values as text in logs.
        let value = (0..cfg.value_size.max()).map(|i| b'a' + (i % 26) as u8).collect();
        Ok(Workload {
            prefix: cfg.key_prefix.as_bytes().to_vec(),
            value,
            mix: cfg.mix.clone(),
            keys: KeySampler::new(cfg.key_dist, cfg.key_space)?,
            key_space: cfg.key_space,
            sizes: cfg.value_size.clone(),
            multiget: cfg.multiget,
        })
    }

    pub(crate) fn key_count(&self) -> usize {
        self.key_space
    }

    /// The write the prefill uses: `ms` when the mix is meta-only (so a
    /// server that speaks only the meta protocol can be measured), else `set`.
    pub(crate) fn prefill_op(&self) -> Op {
        if self.mix.is_meta_only() { Op::MetaSet } else { Op::Set }
    }

    /// Picks the next request and appends its wire form to `out`. Returns the
    /// operation and how many keys it reads (0 for writes).
    pub(crate) fn next(&self, rng: &mut SmallRng, out: &mut Vec<u8>) -> (Op, u32) {
        let op = self.mix.pick(rng.random::<f64>());
        match op {
            Op::Get => {
                out.extend_from_slice(b"get");
                for _ in 0..self.multiget {
                    out.push(b' ');
                    self.put_key(self.keys.sample(rng), out);
                }
                out.extend_from_slice(b"\r\n");
                (op, self.multiget as u32)
            }
            Op::MetaGet => {
                out.extend_from_slice(b"mg ");
                self.put_key(self.keys.sample(rng), out);
                // `v`: return the value, so a hit moves as many bytes as a text get's.
                out.extend_from_slice(b" v\r\n");
                (op, 1)
            }
            Op::Set | Op::MetaSet => {
                let key = self.keys.sample(rng);
                let size = self.sizes.sample(rng);
                self.encode_store(op, key, size, out);
                (op, 0)
            }
        }
    }

    /// A value size for the prefill.
    pub(crate) fn size(&self, rng: &mut SmallRng) -> usize {
        self.sizes.sample(rng)
    }

    /// Appends `set KEY 0 0 SIZE` or `ms KEY SIZE` and the value.
    pub(crate) fn encode_store(&self, op: Op, key: usize, size: usize, out: &mut Vec<u8>) {
        let head: &[u8] = if op == Op::MetaSet { b"ms " } else { b"set " };
        out.extend_from_slice(head);
        self.put_key(key, out);
        out.extend_from_slice(if op == Op::MetaSet { b" " } else { b" 0 0 " });
        put_u64(out, size as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.value[..size.min(self.value.len())]);
        out.extend_from_slice(b"\r\n");
    }

    fn put_key(&self, key: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        put_u64(out, key as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn wl(f: impl FnOnce(&mut BenchConfig)) -> Workload {
        let mut cfg = BenchConfig { key_space: 3, value_size: ValueSize::Fixed(4), ..BenchConfig::default() };
        f(&mut cfg);
        Workload::new(&cfg).unwrap()
    }

    #[test]
    fn encodes_every_command() {
        let w = wl(|_| {});
        let mut out = Vec::new();
        w.encode_store(Op::Set, 0, 4, &mut out);
        w.encode_store(Op::MetaSet, 2, 3, &mut out);
        assert_eq!(out, b"set key:0 0 0 4\r\nabcd\r\nms key:2 3\r\nabc\r\n");
        let mut rng = SmallRng::seed_from_u64(1);
        let mg = wl(|c| c.mix = "mg=1".parse().unwrap());
        out.clear();
        assert_eq!(mg.next(&mut rng, &mut out), (Op::MetaGet, 1));
        assert!(out.starts_with(b"mg key:") && out.ends_with(b" v\r\n"), "{:?}", String::from_utf8_lossy(&out));
        let multi = wl(|c| (c.mix, c.multiget) = ("get=1".parse().unwrap(), 3));
        out.clear();
        assert_eq!(multi.next(&mut rng, &mut out), (Op::Get, 3));
        assert_eq!(out.iter().filter(|&&b| b == b' ').count(), 3);
        assert_eq!(mg.prefill_op(), Op::MetaSet);
        assert_eq!(multi.prefill_op(), Op::Set);
    }

    #[test]
    fn mix_keys_and_sizes_follow_the_config() {
        let w = wl(|c| {
            (c.key_space, c.value_size) = (10, "5-9".parse().unwrap());
        });
        let mut rng = SmallRng::seed_from_u64(1);
        let (mut gets, mut out) = (0, Vec::new());
        for _ in 0..10_000 {
            out.clear();
            let (op, _) = w.next(&mut rng, &mut out);
            let line = String::from_utf8_lossy(&out).into_owned();
            let mut words = line.split_whitespace();
            let key: usize = words.nth(1).and_then(|k| k.strip_prefix("key:")).unwrap().parse().unwrap();
            assert!(key < 10);
            if op == Op::Get {
                gets += 1;
            } else {
                let size: usize = words.nth(2).unwrap().parse().unwrap();
                assert!((5..=9).contains(&size), "{line:?}");
            }
        }
        assert!((8_700..9_300).contains(&gets), "{gets} gets");
    }
}
