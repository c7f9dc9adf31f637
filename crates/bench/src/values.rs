//! How large each stored value is.

use crate::error::BenchError;
use rand::Rng;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Sizes of the values sets write, written `100` (fixed), `100-1000`
/// (uniform over the inclusive range) or `100=70,1000=25,10000=5` (a few
/// sizes with weights).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSize {
    /// Every value this many bytes.
    Fixed(usize),
    /// Uniform over `min..=max` bytes.
    Range {
        /// Smallest size.
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Each size with probability ∝ its weight.
    Choice(Vec<(usize, f64)>),
}

impl Default for ValueSize {
    fn default() -> Self {
        ValueSize::Fixed(100)
    }
}

impl ValueSize {
    /// The largest size it can produce.
    pub fn max(&self) -> usize {
        match self {
            ValueSize::Fixed(n) => *n,
            ValueSize::Range { max, .. } => *max,
            ValueSize::Choice(c) => c.iter().map(|&(n, _)| n).max().unwrap_or(0),
        }
    }

    /// The mean size, for the report.
    pub fn mean(&self) -> f64 {
        match self {
            ValueSize::Fixed(n) => *n as f64,
            ValueSize::Range { min, max } => (*min as f64 + *max as f64) / 2.0,
            ValueSize::Choice(c) => {
                let total: f64 = c.iter().map(|&(_, w)| w).sum();
                c.iter().map(|&(n, w)| n as f64 * w / total).sum()
            }
        }
    }

    /// One size.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match self {
            ValueSize::Fixed(n) => *n,
            ValueSize::Range { min, max } => rng.random_range(*min..=*max),
            ValueSize::Choice(c) => {
                let total: f64 = c.iter().map(|&(_, w)| w).sum();
                let mut u = rng.random::<f64>() * total;
                for &(n, w) in c {
                    if u < w {
                        return n;
                    }
                    u -= w;
                }
                // Rounding left `u` just above the sum: the last size.
                c.last().map_or(0, |&(n, _)| n)
            }
        }
    }
}

impl FromStr for ValueSize {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<ValueSize, BenchError> {
        let bad = |m: String| BenchError::Config(m);
        let size = |t: &str| t.trim().parse::<usize>().map_err(|_| bad(format!("{t:?} is not a size in bytes")));
        let s = s.trim();
        if s.contains('=') {
            let mut choice = Vec::new();
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (n, w) = part.split_once('=').ok_or_else(|| bad(format!("{part:?} is not SIZE=WEIGHT")))?;
                let w: f64 = w.trim().parse().map_err(|_| bad(format!("weight {w:?} is not a number")))?;
                if !w.is_finite() || w < 0.0 {
                    return Err(bad(format!("weight {w} must be a non-negative number")));
                }
                if w > 0.0 {
                    choice.push((size(n)?, w));
                }
            }
            if choice.is_empty() {
                return Err(bad(format!("value sizes {s:?} have no positive weight")));
            }
            Ok(ValueSize::Choice(choice))
        } else if let Some((lo, hi)) = s.split_once('-') {
            let (min, max) = (size(lo)?, size(hi)?);
            if min > max {
                return Err(bad(format!("value size range {s:?} is empty")));
            }
            Ok(if min == max { ValueSize::Fixed(min) } else { ValueSize::Range { min, max } })
        } else {
            Ok(ValueSize::Fixed(size(s)?))
        }
    }
}

impl fmt::Display for ValueSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSize::Fixed(n) => write!(f, "{n}"),
            ValueSize::Range { min, max } => write!(f, "{min}-{max}"),
            ValueSize::Choice(c) => {
                for (i, (n, w)) in c.iter().enumerate() {
                    write!(f, "{}{n}={w}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for ValueSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("100".parse::<ValueSize>().unwrap(), ValueSize::Fixed(100));
        assert_eq!("10-20".parse::<ValueSize>().unwrap(), ValueSize::Range { min: 10, max: 20 });
        assert_eq!("7-7".parse::<ValueSize>().unwrap(), ValueSize::Fixed(7));
        let c: ValueSize = "100=70, 1000=30".parse().unwrap();
        assert_eq!(c, ValueSize::Choice(vec![(100, 70.0), (1000, 30.0)]));
        assert_eq!(c.to_string(), "100=70,1000=30");
        assert_eq!((c.max(), c.mean()), (1000, 370.0));
        for s in ["", "x", "20-10", "-5", "1=0", "1=-1", "1=x", "a=1"] {
            assert!(s.parse::<ValueSize>().is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn choice_follows_weights() {
        let c: ValueSize = "1=3,2=1".parse().unwrap();
        let mut rng = SmallRng::seed_from_u64(9);
        let ones = (0..40_000).filter(|_| c.sample(&mut rng) == 1).count();
        assert!((29_000..31_000).contains(&ones), "{ones}");
    }
}
