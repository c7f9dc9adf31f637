//! memshard-testkit: dev-only support for memshard's integration tests.
//!
//! It provides three things: discovery and lifecycle of *peer* programs
//! (real memcached and friends) that memshard is compared against
//! ([`peer`]); a byte-level *conformance table* of memcached text and meta
//! protocol request streams with the exact replies recorded from memcached
//! 1.6.18 ([`conformance`]); and a *runner* that replays the table against
//! any server and reports differences with every byte escaped ([`runner`]).
//! A minimal HTTP/1.1 client ([`http`]) lets tests read the web app's exact
//! answers; [`role`] starts memshard roles as processes and reads their RSS.
//!
//! It is not a memcached client and not a protocol implementation: it only
//! writes recorded bytes and compares what comes back, so it cannot share a
//! bug with the code under test. It is never a dependency of production
//! crates.

pub mod conformance;
pub mod dns;
pub mod escape;
pub mod http;
pub mod key_recorder;
pub mod peer;
pub mod recorder;
pub mod recordings;
pub mod role;
pub mod runner;
mod up;
mod wire;

pub use conformance::{Case, Expect, Target, table};
pub use key_recorder::{BackendAddr, KeyRecorders};
pub use peer::{
    ChildGuard, MemcachedProcess, find_peer, free_port, peer_or_skip, require_peers, spawn_memcached, wait_for_listen,
};
pub use role::{Endpoint, RoleProcess, rss_bytes, spawn_role};
pub use runner::{Mismatch, Outcome, Report, RunError, run_case, run_table};
pub use up::{UpProcess, spawn_up};
pub use wire::Closed;
