//! memshard-config: twemproxy's YAML pool configuration, read as nutcracker
//! 0.5.0 reads it.
//!
//! This crate loads the file given to `memshard proxy -c FILE` (and checks
//! it for `memshard proxy -t -c FILE`): a mapping of pool names to pools,
//! each with a `listen:` address, hashing and failure settings and a
//! `servers:` list. It applies twemproxy's YAML restrictions, key table,
//! value rules, defaults, server naming rule and ordering, and reports the
//! first problem with its line number, in twemproxy's wording and order
//! ([`ConfigError`]).
//!
//! It is not the proxy: it opens no socket, resolves no name and builds no
//! ring. The twemproxy vocabulary it checks names against — the 12 hash
//! names ([`HashKind`]), the distributions ([`Distribution`]), the server
//! naming rule and order — is the ring crate's, so there is one of each.
//!
//! # Example
//!
//! ```
//! use memshard_config::{Config, Listen};
//!
//! let yaml = "memcached:\n  listen: 0.0.0.0:11211\n  timeout: 400\n  servers:\n   - cache-0.mc:11211:1\n   - 10.0.0.7:11212:2 spare\n";
//! let config = Config::from_yaml(yaml)?;
//! let pool = config.pool("memcached").unwrap();
//! assert_eq!(pool.listen, Listen::Tcp { host: "0.0.0.0".into(), port: 11211 });
//! // Servers come in twemproxy's order, by the name hashed onto the ring.
//! let names: Vec<&str> = pool.servers.iter().map(|s| s.ring_name()).collect();
//! assert_eq!(names, ["spare", "cache-0.mc"]);
//!
//! let bad = "memcached:\n  listen: 0.0.0.0:11211\n  preconnect: yes\n  servers:\n   - cache-0.mc:11211:1\n";
//! let err = Config::from_yaml(bad).unwrap_err();
//! assert_eq!(err.to_string(), r#"line 3: directive "preconnect" value "yes" is not "true" or "false""#);
//! # Ok::<(), memshard_config::ConfigError>(())
//! ```
//!
//! # Layout
//!
//! - `yaml`: the YAML subset (one document; no `---`, flow collections,
//!   anchors, aliases or tags; depth 2) and the raw pool tree; it first
//!   reads line breaks, byte order marks and control characters as
//!   libyaml does, and `tabs` applies libyaml's tab rules, so that
//!   yaml-rust2 (YAML 1.2) accepts what twemproxy's libyaml (YAML 1.1)
//!   accepts;
//! - `directive`: the key table and the value rules, then per-pool checks;
//! - [`listen`](Listen), [`server`](ServerEntry), [`pool`](PoolConfig):
//!   one file per part of a pool;
//! - [`Config`]: the checks across pools and the entry points;
//! - `fuzzing` (feature `fuzzing`): an invariant checker for fuzz targets
//!   and property tests.
//!
//! # Where memshard differs from nutcracker on purpose
//!
//! Every other file is accepted or refused exactly as `nutcracker -t`
//! does; the crate's tests compare the two on every sample.
//!
//! - **Redis pools are refused** (`redis: true`, `redis_db`): memshard
//!   proxies memcached only. `redis_auth` is refused as twemproxy refuses
//!   it on a memcached pool.
//! - **`client_connections` is enforced** ([`PoolConfig::client_connections`]);
//!   twemproxy parses and ignores it.
//! - **`reuseport`** (twemproxy's master branch, after 0.5.0) is accepted;
//!   nutcracker 0.5.0 calls it unknown.
//! - **Extension keys** (`dns_refresh_interval`, `server_probe`, `flush_on_return`, `discovery`, `replicas`, `server_restart_timeout`, `ring_change_settle`, see
//!   [`Extensions`]) are accepted; nutcracker calls them unknown.
//! - **The listen host is not resolved while loading.** twemproxy runs
//!   getaddrinfo on it and refuses a name that does not resolve; here only
//!   its syntax is checked, and resolution happens when the proxy binds.
//! - **Refused although nutcracker accepts, because it cannot work as
//!   meant:** a number above `i32::MAX` (twemproxy wraps it, so
//!   `4294967297` becomes 1); unix socket permissions that are not octal
//!   digits (twemproxy reads `abc` or `999` as 0, meaning no chmod); a server
//!   with an empty host (`:11211:1`), an empty name (a quoted entry ending
//!   in a space) or a unix path longer than 107 bytes.
//!
//! Known leftovers, found by comparing both on thousands of randomly
//! mutated files: yaml-rust2 still refuses a `#` comment glued to a closing
//! quote (`"{}"#x`) and a tab-only line inside a multi-line quoted scalar,
//! and accepts a tab-only line inside a block scalar's trailing blank lines;
//! libyaml does the opposite in each case.

mod config;
mod directive;
mod discovery;
mod error;
/// Invariant checkers for the fuzz targets and the regression and property
/// tests; not part of the crate's API (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod listen;
mod number;
mod pool;
mod server;
mod tabs;
mod yaml;

pub use config::Config;
pub use discovery::{Discovery, checked_servers, discovered_server, is_dns_name};
pub use error::{ConfigError, ErrorKind};
pub use listen::{Listen, MAX_UNIX_PATH};
pub use memshard_ring::{Distribution, HashKind};
pub use pool::{
    DEFAULT_BACKLOG, DEFAULT_DNS_REFRESH_INTERVAL, DEFAULT_RING_CHANGE_SETTLE, DEFAULT_SERVER_CONNECTIONS,
    DEFAULT_SERVER_FAILURE_LIMIT, DEFAULT_SERVER_RESTART_TIMEOUT, DEFAULT_SERVER_RETRY_TIMEOUT, Extensions, PoolConfig,
    TlsListen, TlsToServers,
};
pub use server::{KETAMA_PORT, ServerAddr, ServerEntry};
