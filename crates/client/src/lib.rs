//! memshard-client: a small async memcached client over tokio TCP or unix sockets.
//!
//! A [`Client`] is a cheap-to-clone handle to one connection on which requests
//! from any number of tasks are *pipelined*: each is written as soon as
//! possible and replies are matched to requests in order (see the
//! `connection` module docs for the writer task / reader task / FIFO design).
//! Every request has a timeout; a timeout, I/O error or undecodable reply
//! breaks the connection and fails every request in flight on it. A [`Pool`]
//! keeps N such connections to one server and replaces broken ones lazily,
//! with backoff.
//!
//! Typed methods cover the classic text commands (`get`, `gets`, multi-get,
//! the storage commands, `cas`, `delete`, `incr`/`decr`, `touch`, `flush_all`,
//! `version`, `stats`) and the meta commands (`mg`, `ms`, `md`, `ma`, `mn`).
//! [`Client::request`] sends pre-encoded bytes for anything else.
//!
//! It is not a sharding or failover client (the memshard proxy does that), it
//! does not retry (a retried `incr` is not idempotent), and it does not speak
//! the binary protocol or UDP. Encoding and decoding are `memshard-proto`'s.

mod commands;
mod connect;
mod connection;
mod error;
mod meta;
mod peer;
mod pool;
mod reply;

pub use connection::{Client, ClientConfig, Started};
pub use error::{ClientError, Result};
pub use memshard_proto::{MetaCode, StoreCmd};
pub use peer::Peer;
pub use pool::{Pool, PoolConfig};
pub use reply::{Item, MetaReply, OwnedReply, StoreStatus};
