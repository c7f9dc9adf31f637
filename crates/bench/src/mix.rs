//! The operation mix: which commands a run sends, and in what proportion.

use crate::error::BenchError;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Text `get` (with `multiget` keys).
    Get,
    /// Text `set`.
    Set,
    /// Meta `mg <key> v`.
    MetaGet,
    /// Meta `ms <key> <size>`.
    MetaSet,
}

impl Op {
    const ALL: [Op; 4] = [Op::Get, Op::Set, Op::MetaGet, Op::MetaSet];

    /// The command word, as written in a mix (`get`, `set`, `mg`, `ms`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::MetaGet => "mg",
            Op::MetaSet => "ms",
        }
    }

    /// Whether the request reads (and so has a hit or a miss).
    pub fn is_read(self) -> bool {
        matches!(self, Op::Get | Op::MetaGet)
    }

    /// Whether the request is a meta-protocol command.
    pub fn is_meta(self) -> bool {
        matches!(self, Op::MetaGet | Op::MetaSet)
    }
}

/// Weighted operations, written `get=90,set=10` or `mg=90,ms=10` (weights
/// need not sum to 100; they are normalized).
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// (operation, weight as given), in the order given.
    entries: Vec<(Op, f64)>,
    /// Cumulative normalized weights, parallel to `entries`; the last is 1.
    cumulative: Vec<f64>,
}

impl Mix {
    /// Text `get`s with probability `get_ratio`, text `set`s otherwise.
    pub fn get_set(get_ratio: f64) -> Result<Mix, BenchError> {
        if !(0.0..=1.0).contains(&get_ratio) {
            return Err(BenchError::Config(format!("get ratio {get_ratio} is not within 0..=1")));
        }
        Mix::new(vec![(Op::Get, get_ratio), (Op::Set, 1.0 - get_ratio)])
    }

    /// A mix from (operation, weight) pairs: weights finite and ≥ 0, at least
    /// one positive, no operation twice. Zero-weight entries are dropped.
    pub fn new(entries: Vec<(Op, f64)>) -> Result<Mix, BenchError> {
        let bad = |m: String| Err(BenchError::Config(m));
        for (i, &(op, w)) in entries.iter().enumerate() {
            if !w.is_finite() || w < 0.0 {
                return bad(format!("weight of {} must be a non-negative number, not {w}", op.name()));
            }
            if entries[..i].iter().any(|&(o, _)| o == op) {
                return bad(format!("{} appears twice in the mix", op.name()));
            }
        }
        let entries: Vec<(Op, f64)> = entries.into_iter().filter(|&(_, w)| w > 0.0).collect();
        let total: f64 = entries.iter().map(|&(_, w)| w).sum();
        if entries.is_empty() || !total.is_finite() {
            return bad("the mix needs at least one operation with a positive weight".to_owned());
        }
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = entries
            .iter()
            .map(|&(_, w)| {
                acc += w / total;
                acc
            })
            .collect();
        // Rounding must not leave a sliver above the last entry.
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        Ok(Mix { entries, cumulative })
    }

    /// The operation for a uniform draw `u` in `[0, 1)`.
    pub fn pick(&self, u: f64) -> Op {
        let i = self.cumulative.iter().position(|&c| u < c).unwrap_or(self.entries.len() - 1);
        self.entries[i].0
    }

    /// The share of requests that are `op`, 0..=1.
    pub fn share(&self, op: Op) -> f64 {
        let total: f64 = self.entries.iter().map(|&(_, w)| w).sum();
        self.entries.iter().filter(|&&(o, _)| o == op).map(|&(_, w)| w / total).sum()
    }

    /// Whether the mix sends `op` at all.
    pub fn contains(&self, op: Op) -> bool {
        self.entries.iter().any(|&(o, _)| o == op)
    }

    /// Whether every operation of the mix is a meta command.
    pub fn is_meta_only(&self) -> bool {
        self.entries.iter().all(|&(o, _)| o.is_meta())
    }
}

impl Default for Mix {
    /// `get=90,set=10`, the workload of the project's reference measurements.
    fn default() -> Self {
        Mix { entries: vec![(Op::Get, 90.0), (Op::Set, 10.0)], cumulative: vec![0.9, 1.0] }
    }
}

impl FromStr for Mix {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Mix, BenchError> {
        let bad = |m: String| BenchError::Config(m);
        let mut entries = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(|| bad(format!("{part:?} is not OP=WEIGHT")))?;
            let op = Op::ALL
                .into_iter()
                .find(|o| o.name() == name.trim())
                .ok_or_else(|| bad(format!("unknown operation {name:?} (known: get, set, mg, ms)")))?;
            let w: f64 = weight.trim().parse().map_err(|_| bad(format!("weight {weight:?} is not a number")))?;
            entries.push((op, w));
        }
        Mix::new(entries)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (op, w)) in self.entries.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            // Six decimals, trailing zeros cut: `--get-ratio 0.9` shows as
            // set=0.1, not as the float 1.0 - 0.9 really is.
            let w = format!("{w:.6}");
            write!(f, "{sep}{}={}", op.name(), w.trim_end_matches('0').trim_end_matches('.'))?;
        }
        Ok(())
    }
}

impl Serialize for Mix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_display_without_float_noise() {
        let m = Mix::get_set(0.9).expect("mix");
        assert_eq!(m.to_string(), "get=0.9,set=0.1");
        assert_eq!(Mix::get_set(1.0).expect("mix").to_string(), "get=1");
    }

    #[test]
    fn parses_and_normalizes() {
        let m: Mix = "mg=90, ms=10".parse().unwrap();
        assert_eq!(m.to_string(), "mg=90,ms=10");
        assert!((m.share(Op::MetaGet) - 0.9).abs() < 1e-12);
        assert_eq!(m.pick(0.0), Op::MetaGet);
        assert_eq!(m.pick(0.8999), Op::MetaGet);
        assert_eq!(m.pick(0.9), Op::MetaSet);
        assert_eq!(m.pick(0.999_999_9), Op::MetaSet);
        assert!(m.is_meta_only() && !m.contains(Op::Get));
        assert_eq!(Mix::default(), "get=90,set=10".parse().unwrap());
        let all_gets = Mix::get_set(1.0).unwrap();
        assert_eq!(all_gets.to_string(), "get=1");
        assert_eq!(all_gets.pick(0.999_999), Op::Get);
    }

    #[test]
    fn refuses_nonsense() {
        for s in ["", "get", "get=x", "get=-1", "get=0", "foo=1", "get=1,get=2", "get=inf"] {
            assert!(s.parse::<Mix>().is_err(), "{s:?} accepted");
        }
        assert!(Mix::get_set(1.5).is_err());
    }
}
