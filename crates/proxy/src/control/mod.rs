//! The control plane: where each pool's servers are and whether they may be
//! used. Which servers a pool has (its file, or `discover`: DNS SRV
//! records), where a server's name resolves to (`resolve`: the lookup;
//! `refresh`: when names are looked up, and what a change does), which
//! servers are healthy (`health`: failures and ejection; `prober`: ejected
//! servers probed back in), the ring built from the healthy ones and swapped
//! in (`publish`), the counters and JSON of the stats port (`stats`,
//! `stats_server`), the hot-key sketch (`hotkeys`), what the admin port
//! shows (`admin`) and the pools' TLS certificates (`tls`), reloaded while
//! serving (`tls_watch`). It writes
//! what the data path reads per request (a pool's ring, a server's address
//! generation, its health) and imports nothing from the data path.

pub(crate) mod admin;
pub(crate) mod discover;
pub(crate) mod health;
pub(crate) mod hotkeys;
pub(crate) mod pool;
pub(crate) mod prober;
pub(crate) mod publish;
pub(crate) mod purge;
pub(crate) mod refresh;
pub(crate) mod reload;
pub(crate) mod resolve;
pub(crate) mod servers;
pub(crate) mod stats;
pub(crate) mod stats_server;
pub(crate) mod tls;
pub(crate) mod tls_watch;
