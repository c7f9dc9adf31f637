//! What to run: [`BenchConfig`].

use crate::error::BenchError;
use crate::keys::KeyDist;
use crate::mix::{Mix, Op};
use crate::values::ValueSize;
use memshard_proto::{DEFAULT_MAX_ITEM_SIZE, MAX_KEY_LEN};
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Most keys in one multi-get: memcached takes more, but beyond this a
/// "request" measures a bulk transfer rather than a cache lookup.
pub const MAX_MULTIGET: usize = 100;

/// A load run against one memcached-compatible server.
///
/// Closed loop (`rate: None`): every connection writes a batch of `pipeline`
/// requests, reads all their replies, then writes the next batch, so offered
/// load adapts to the server and latency runs from a batch's write to each
/// reply. Open loop (`rate: Some(r)`): requests are scheduled at `r` per
/// second in total, spread over the connections; each is written at its
/// scheduled time when its connection has fewer than `pipeline` requests in
/// flight, later otherwise, and its latency runs from the *scheduled* time,
/// so a server stall shows in full instead of slowing the generator down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchConfig {
    /// Target `host:port`.
    pub addr: String,
    /// TCP connections, each its own task with its own socket and buffers.
    pub connections: usize,
    /// Most requests in flight per connection (closed loop: the batch size).
    pub pipeline: usize,
    /// Length of the measured window (the upper bound when `requests` is set).
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// Stop after this many measured requests (split evenly over the
    /// connections), or when `duration` ends, whichever comes first.
    pub requests: Option<u64>,
    /// Load before the measured window (not recorded): warms caches, TCP, the LRU.
    #[serde(serialize_with = "as_secs")]
    pub warmup: Duration,
    /// Open loop: total requests per second. `None` runs the closed loop.
    pub rate: Option<f64>,
    /// Open loop: how scheduled send times are spaced.
    pub arrivals: Arrivals,
    /// Which commands, in what proportion.
    pub mix: Mix,
    /// Keys per text `get` (1 = single-key gets).
    pub multiget: usize,
    /// Keys are `key_prefix` + `0..key_space`.
    pub key_space: usize,
    /// Popularity of the keys (`zipf`: key 0 is the hottest).
    pub key_dist: KeyDist,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Sizes of the values written.
    pub value_size: ValueSize,
    /// Set every key once before the run (pipelined) so that gets hit.
    pub prefill: bool,
    /// Seed of the random generators (runs are reproducible in the requests
    /// they send, not in timing).
    pub seed: u64,
    /// Runtime threads of the generator: 1 runs everything on one
    /// current-thread runtime (at most one core, leaving the others to the
    /// server under test); N > 1 uses a multi-thread runtime with N workers.
    /// The open loop adds one mostly-sleeping pacing thread.
    pub threads: usize,
    /// Bounds each connect, each prefill batch, and how long after the end of
    /// the window requests may still be answered; requests unanswered by then
    /// count as `timeout` errors.
    #[serde(serialize_with = "as_secs")]
    pub timeout: Duration,
    /// Speak TLS to the target (`true` in the report).
    #[serde(serialize_with = "is_some")]
    pub tls: Option<BenchTls>,
}

/// TLS for every connection of a run: the configuration and the name the
/// target's certificate is checked against.
#[derive(Debug, Clone)]
pub struct BenchTls {
    /// CA, and the client certificate if the target wants one.
    pub config: std::sync::Arc<memshard_tls::ClientTls>,
    /// The name to check.
    pub name: String,
}

impl PartialEq for BenchTls {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.config, &other.config) && self.name == other.name
    }
}

fn is_some<S: Serializer>(t: &Option<BenchTls>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(t.is_some())
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            addr: "127.0.0.1:11211".to_owned(),
            connections: 50,
            pipeline: 1,
            duration: Duration::from_secs(10),
            requests: None,
            warmup: Duration::from_secs(1),
            rate: None,
            arrivals: Arrivals::Uniform,
            mix: Mix::default(),
            multiget: 1,
            key_space: 100_000,
            key_dist: KeyDist::Uniform,
            key_prefix: "key:".to_owned(),
            value_size: ValueSize::default(),
            prefill: true,
            seed: 0x6d65_6d73_6861_7264,
            threads: 1,
            timeout: Duration::from_secs(5),
            tls: None,
        }
    }
}

fn as_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Spacing of the open loop's scheduled send times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arrivals {
    /// Evenly spaced (`1 / rate` apart), handed to the connections in turn.
    #[default]
    Uniform,
    /// A Poisson process: exponential gaps with mean `1 / rate`, as from many
    /// independent clients.
    Poisson,
}

impl FromStr for Arrivals {
    type Err = BenchError;
    fn from_str(s: &str) -> Result<Arrivals, BenchError> {
        match s.trim() {
            "uniform" => Ok(Arrivals::Uniform),
            "poisson" => Ok(Arrivals::Poisson),
            other => Err(BenchError::Config(format!("arrivals {other:?} is not uniform or poisson"))),
        }
    }
}

impl fmt::Display for Arrivals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == Arrivals::Uniform { "uniform" } else { "poisson" })
    }
}

impl Serialize for Arrivals {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl BenchConfig {
    /// Checks the settings; [`run`](crate::run) calls it first.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: String| Err(BenchError::Config(m));
        if self.connections == 0 || self.pipeline == 0 || self.key_space == 0 || self.threads == 0 {
            return bad("connections, pipeline, key_space and threads must be at least 1".to_owned());
        }
        if self.duration.is_zero() || self.timeout.is_zero() {
            return bad("duration and timeout must be positive".to_owned());
        }
        if self.requests == Some(0) {
            return bad("requests must be at least 1".to_owned());
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r <= 0.0 || r > 1e9 {
                return bad(format!("rate {r} must be a positive number of requests per second"));
            }
        }
        if !(1..=MAX_MULTIGET).contains(&self.multiget) {
            return bad(format!("multiget {} is not within 1..={MAX_MULTIGET}", self.multiget));
        }
        if self.multiget > 1 && !self.mix.contains(Op::Get) {
            return bad(format!("multiget applies to text get, which the mix {} does not send", self.mix));
        }
        if self.key_prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return bad(format!("key_prefix {:?} contains a space or control byte", self.key_prefix));
        }
        let longest = self.key_prefix.len() + (self.key_space - 1).to_string().len();
        if longest > MAX_KEY_LEN {
            return bad(format!("keys would be {longest} bytes, memcached allows {MAX_KEY_LEN}"));
        }
        // Leave room for memcached's item header so the default -I 1m accepts it.
        if self.value_size.max() > DEFAULT_MAX_ITEM_SIZE - 1024 {
            return bad(format!("value size {} is larger than memcached's default item limit", self.value_size));
        }
        crate::keys::KeySampler::new(self.key_dist, self.key_space)?;
        Ok(())
    }

    /// Whether this is an open-loop (fixed-rate) run.
    pub fn is_open_loop(&self) -> bool {
        self.rate.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_not() {
        assert!(BenchConfig::default().validate().is_ok());
        let cases = [
            BenchConfig { connections: 0, ..BenchConfig::default() },
            BenchConfig { rate: Some(0.0), ..BenchConfig::default() },
            BenchConfig { rate: Some(f64::NAN), ..BenchConfig::default() },
            BenchConfig { requests: Some(0), ..BenchConfig::default() },
            BenchConfig { multiget: 0, ..BenchConfig::default() },
            BenchConfig { multiget: 2, mix: "mg=1".parse().unwrap(), ..BenchConfig::default() },
            BenchConfig { key_prefix: "a b".into(), ..BenchConfig::default() },
            BenchConfig { value_size: ValueSize::Fixed(2 << 20), ..BenchConfig::default() },
            BenchConfig { key_prefix: "k".repeat(MAX_KEY_LEN), ..BenchConfig::default() },
        ];
        for c in cases {
            assert!(matches!(c.validate(), Err(BenchError::Config(_))), "{c:?}");
        }
    }

    #[test]
    fn arrivals_parse() {
        assert_eq!("poisson".parse::<Arrivals>().unwrap(), Arrivals::Poisson);
        assert_eq!(Arrivals::Uniform.to_string(), "uniform");
        assert!("burst".parse::<Arrivals>().is_err());
    }
}
