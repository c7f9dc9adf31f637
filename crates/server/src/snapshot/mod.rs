//! Warm restarts: the store written to a file at a graceful stop and read
//! back at the next start (`memshard server -e PATH`, memcached's flag).
//!
//! ```text
//!   stop (SIGTERM/SIGINT/SIGUSR1) ─► connections drained ─► save: PATH.tmp, fsync, rename, fsync dir
//!   start ─► PATH there? ─► load (checksummed blocks, LRU order) ─► remove PATH ─► listen
//! ```
//!
//! The file is removed once loaded, so a crash later cannot bring back the
//! values it held: a server killed without saving starts empty. The format
//! (`format.rs`) is a header and blocks of items, each block with its own
//! checksum, so a damaged or cut file loses only what it damaged: the intact
//! blocks load, the rest is refused, and one log line says why. Items are
//! written a store shard at a time, least recently used first, and loaded in
//! the same order, so the LRU order survives and a store with a smaller `-m`
//! keeps the most recently used items that fit. Saving streams pages of a
//! shard's items (shared views, no copy of the store) through one block
//! buffer, so it needs a few hundred KiB beside the store.

mod format;
mod load;
mod save;

pub use load::{LoadReport, load};
pub use save::{SaveReport, check_writable, save};
