//! Which key each request uses: uniform over the key space, or Zipfian, the
//! skew measured in real caches (a few hot keys take most requests).

use crate::error::BenchError;
use rand::Rng;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The popularity of keys, written `uniform` or `zipf:S` (`zipf` alone is
/// `zipf:0.99`, the exponent YCSB uses).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum KeyDist {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Key number `r - 1` has probability ∝ `1 / r^s` (key 0 is the hottest).
    Zipf(f64),
}

/// The exponent `zipf` means without one.
pub const DEFAULT_ZIPF_EXPONENT: f64 = 0.99;

impl FromStr for KeyDist {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<KeyDist, BenchError> {
        let s = s.trim();
        match s.split_once(':') {
            None if s == "uniform" => Ok(KeyDist::Uniform),
            None if s == "zipf" => Ok(KeyDist::Zipf(DEFAULT_ZIPF_EXPONENT)),
            Some(("zipf", e)) => match e.trim().parse::<f64>() {
                Ok(e) if e.is_finite() && e > 0.0 && e <= 100.0 => Ok(KeyDist::Zipf(e)),
                _ => Err(BenchError::Config(format!("zipf exponent {e:?} must be a number in (0, 100]"))),
            },
            _ => Err(BenchError::Config(format!("key distribution {s:?} is not uniform, zipf or zipf:S"))),
        }
    }
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

impl Serialize for KeyDist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Draws key numbers `0..n` under a [`KeyDist`].
#[derive(Debug, Clone)]
pub(crate) enum KeySampler {
    Uniform(usize),
    Zipf(Zipf),
}

impl KeySampler {
    pub(crate) fn new(dist: KeyDist, n: usize) -> Result<KeySampler, BenchError> {
        match dist {
            KeyDist::Uniform => Ok(KeySampler::Uniform(n.max(1))),
            KeyDist::Zipf(s) => Zipf::new(n as u64, s)
                .map(KeySampler::Zipf)
                .ok_or_else(|| BenchError::Config(format!("zipf:{s} over {n} keys is not a distribution"))),
        }
    }

    /// A key number in `0..n`.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match self {
            KeySampler::Uniform(n) => rng.random_range(0..*n),
            // Ranks are 1..=n and n came from a usize, so this fits.
            KeySampler::Zipf(z) => usize::try_from(z.sample(rng) - 1).unwrap_or(0),
        }
    }
}

/// A Zipf sampler over ranks `1..=n` with exponent `s > 0`:
/// P(k) = k^-s / H(n, s).
///
/// Rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", ACM TOMACS 1996),
/// as in Apache Commons RNG: O(1) time and memory per sample for any `n`, with
/// no table of `n` harmonic terms, so a 100 M-key space costs nothing to set
/// up. It accepts about 9 draws in 10 on the first try.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// `None` when `n` is 0 or `s` is not a finite positive number.
    pub fn new(n: u64, s: f64) -> Option<Zipf> {
        if n == 0 || !s.is_finite() || s <= 0.0 {
            return None;
        }
        let mut z = Zipf { n: n as f64, s, h_integral_x1: 0.0, h_integral_n: 0.0, threshold: 0.0 };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        Some(z)
    }

    /// A rank in `1..=n`; rank 1 is the most likely.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let u = self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            // Accept at once inside the region where the hat and the
            // distribution agree; otherwise the exact test.
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// An antiderivative of `h`: `(x^(1-s) - 1) / (1 - s)`, continuous at s = 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 { x.ln_1p() / x } else { 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x)) }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 { x.exp_m1() / x } else { 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn parses() {
        assert_eq!("uniform".parse::<KeyDist>().unwrap(), KeyDist::Uniform);
        assert_eq!("zipf".parse::<KeyDist>().unwrap(), KeyDist::Zipf(0.99));
        assert_eq!("zipf:1.2".parse::<KeyDist>().unwrap(), KeyDist::Zipf(1.2));
        assert_eq!(KeyDist::Zipf(0.99).to_string(), "zipf:0.99");
        for s in ["zipf:0", "zipf:-1", "zipf:x", "zipf:nan", "gauss", "uniform:1"] {
            assert!(s.parse::<KeyDist>().is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn stays_in_range_for_tiny_and_steep_cases() {
        let mut rng = SmallRng::seed_from_u64(3);
        for (n, s) in [(1, 0.99), (2, 0.5), (10, 1.0), (1000, 3.0), (u32::MAX as u64, 0.99)] {
            let z = Zipf::new(n, s).unwrap();
            assert!((0..10_000).all(|_| (1..=n).contains(&z.sample(&mut rng))), "n {n} s {s}");
        }
        assert!(Zipf::new(0, 1.0).is_none() && Zipf::new(5, 0.0).is_none());
    }
}
