//! What to run: [`BenchConfig`].

use crate::error::BenchError;
use memshard_proto::{DEFAULT_MAX_ITEM_SIZE, MAX_KEY_LEN};
use serde::{Serialize, Serializer};
use std::time::Duration;

/// A closed-loop load run against one memcached-compatible server.
///
/// Every connection keeps `pipeline` requests outstanding: it writes a batch,
/// reads all its replies, and only then writes the next batch, so offered load
/// adapts to the server (closed loop) and `connections × pipeline` bounds the
/// requests in flight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchConfig {
    /// Target `host:port`.
    pub addr: String,
    /// TCP connections, each its own task with its own socket and buffers.
    pub connections: usize,
    /// Requests per batch, i.e. outstanding per connection.
    pub pipeline: usize,
    /// Length of the measured window.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// Load before the measured window (not recorded): warms caches, TCP, the LRU.
    #[serde(serialize_with = "as_secs")]
    pub warmup: Duration,
    /// Fraction of requests that are `get`s; the rest are `set`s.
    pub get_ratio: f64,
    /// Keys are `key_prefix` + `0..key_space`, picked uniformly.
    pub key_space: usize,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Bytes in every value set.
    pub value_size: usize,
    /// Set every key once before the run (pipelined) so that gets hit.
    pub prefill: bool,
    /// Seed of the per-connection random generators (runs are reproducible in
    /// the requests they send, not in timing).
    pub seed: u64,
    /// Runtime threads of the generator: 1 runs everything on one
    /// current-thread runtime (at most one core, leaving the others to the
    /// server under test); N > 1 uses a multi-thread runtime with N workers.
    pub threads: usize,
    /// Bounds each connect, each prefill batch, and how long after the end of
    /// the window a connection may still wait for a reply before it is
    /// abandoned (and counted as an error).
    #[serde(serialize_with = "as_secs")]
    pub timeout: Duration,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            addr: "127.0.0.1:11211".to_owned(),
            connections: 50,
            pipeline: 1,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            get_ratio: 0.9,
            key_space: 100_000,
            key_prefix: "key:".to_owned(),
            value_size: 100,
            prefill: true,
            seed: 0x6d65_6d73_6861_7264,
            threads: 1,
            timeout: Duration::from_secs(5),
        }
    }
}

fn as_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl BenchConfig {
    /// Checks the settings; [`run`](crate::run) calls it first.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: String| Err(BenchError::Config(m));
        if self.connections == 0 || self.pipeline == 0 || self.key_space == 0 || self.threads == 0 {
            return bad("connections, pipeline, key_space and threads must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.get_ratio) {
            return bad(format!("get_ratio {} is not within 0..=1", self.get_ratio));
        }
        if self.duration.is_zero() {
            return bad("duration must be positive".to_owned());
        }
        if self.timeout.is_zero() {
            return bad("timeout must be positive".to_owned());
        }
        if self.key_prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return bad(format!("key_prefix {:?} contains a space or control byte", self.key_prefix));
        }
        let longest = self.key_prefix.len() + (self.key_space - 1).to_string().len();
        if longest > MAX_KEY_LEN {
            return bad(format!("keys would be {longest} bytes, memcached allows {MAX_KEY_LEN}"));
        }
        // Leave room for memcached's item header so the default -I 1m accepts it.
        if self.value_size > DEFAULT_MAX_ITEM_SIZE - 1024 {
            return bad(format!("value_size {} is larger than memcached's default item limit", self.value_size));
        }
        Ok(())
    }
}
