//! twemproxy-compatible key → server placement for memshard's sharding proxy.
//!
//! This crate answers one question, bit for bit the way twemproxy (nutcracker) 0.5.0 answers it:
//! *which backend server owns this key?* It holds the 12 key hash functions of twemproxy's `hash:`
//! option, the three `distribution:` algorithms (ketama, modula, random), the server identity and
//! sort rules that decide where each server lands, and the `hash_tag:` rule that picks the bytes to
//! hash. A [`Ring`] is immutable and built from a whole server set in one call, so a proxy can
//! rebuild it on ejection, return, reload or DNS change and swap an `Arc<Ring>` atomically;
//! lookups take `&self`, never allocate, and never lock.
//!
//! It is pure computation: no sockets, no tokio, no clock, no configuration parsing (the YAML
//! `servers:` strings are parsed elsewhere into [`ServerSpec`]s) and no failure accounting (the
//! caller decides which servers are live and rebuilds). The golden files in `testdata/` were
//! recorded from the real nutcracker binary and are replayed by this crate's tests.
//!
//! # Layout
//!
//! - [`hash`]: the 12 hash functions, one file per family, and [`HashKind`] to name them.
//! - [`server`]: [`ServerSpec`], the twemproxy server identity string and the server sort order.
//! - [`tag`]: [`HashTag`], which bytes of a key are hashed.
//! - `ketama`, `modula`, `random`: the three distributions' tables and lookups.
//! - [`ring`]: [`Ring`], which ties it together, and [`Distribution`].
//!
//! # Example
//!
//! ```
//! use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
//!
//! let servers = [
//!     ServerSpec::tcp("127.0.0.1", 21211, 1),
//!     ServerSpec::tcp("127.0.0.1", 21212, 1),
//!     ServerSpec::tcp("127.0.0.1", 21213, 1),
//! ];
//! let ring = Ring::build(&servers, HashKind::Fnv1a64, Distribution::Ketama, None)?;
//! assert_eq!(ring.server_for(b"apple"), 1); // as nutcracker routes it
//! # Ok::<(), memshard_ring::RingError>(())
//! ```

pub mod hash;
mod ketama;
mod modula;
mod random;
pub mod ring;
pub mod server;
pub mod tag;

mod error;

pub use error::RingError;
pub use hash::HashKind;
pub use ketama::{KETAMA_POINTS_PER_SERVER, ketama_points};
pub use ring::{Distribution, Point, Ring, ServersFor};
pub use server::ServerSpec;
pub use tag::HashTag;
