//! When server names are looked up, and what a pool does with the answer.
//!
//! Every lookup goes through [`refresh`], so the three places that look a
//! name up agree: the per-pool loop ([`run`], every `dns_refresh_interval`),
//! connecting ([`destination`]: when no address is known yet, when the
//! refresh is off, and on a reconnect after a failure unless the name's
//! lookups are failing, when the loop is the one retrying and the request
//! path does not wait on a resolver known to be down), and the prober. A
//! changed address brings an ejected server up for a probe at once: it may
//! have been dead only at its old address.

use crate::control::pool::Pool;
use crate::control::resolve::{Dest, Lookup};
use crate::control::servers::Server;
use memshard_net::Shutdown;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Looks `s`'s name up now and records the outcome (see the module docs);
/// a failure keeps the last good addresses and is logged once.
pub(crate) async fn refresh(pool: &Pool, s: &Server) {
    let server = &s.addr;
    match s.target.look_up(&pool.resolver).await {
        Lookup::Fixed => {}
        Lookup::Same { recovered } => {
            if recovered {
                tracing::info!(pool = %pool.name, %server, "name resolves again");
            }
        }
        Lookup::Changed { old, new, recovered } => {
            if recovered {
                tracing::info!(pool = %pool.name, %server, "name resolves again");
            }
            if old.is_empty() {
                tracing::debug!(pool = %pool.name, %server, addrs = ?new, "server resolved");
            } else {
                tracing::info!(pool = %pool.name, %server, ?old, ?new, "server address changed");
            }
            s.health.retry_soon();
        }
        Lookup::Failed { error, first, last } => {
            if first {
                tracing::warn!(
                    pool = %pool.name, %server, error = %error, last_good = ?last,
                    "lookup failed; keeping the last good address"
                );
            } else {
                tracing::debug!(pool = %pool.name, %server, error = %error, "lookup still failing");
            }
        }
    }
}

/// Where to connect server `s` (addresses to try in order, or its unix
/// socket path), and the generation of that answer. Looks a name up first
/// when no address is known, when the periodic refresh is off, or on a
/// `reconnect` (a connection broke or requests failed) while the name's
/// lookups are not failing.
pub(crate) async fn destination(pool: &Pool, s: &Server, reconnect: bool) -> io::Result<(Dest, u64)> {
    let t = &s.target;
    if let Some(path) = t.unix_path() {
        return Ok((Dest::Unix(path.clone()), t.generation()));
    }
    let refreshing = pool.servers().cfg.extensions.dns_refresh_interval.is_some();
    let stale = !refreshing || (reconnect && !t.is_failing());
    if !t.is_literal() && (stale || t.current().is_none()) {
        refresh(pool, s).await;
    }
    t.current()
        .map(|(addrs, generation)| (Dest::Tcp(addrs), generation))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {}", t.host())))
}

/// Most lookups one pool has in flight at once: a pool of a thousand
/// names must not send the cluster's DNS (and the proxy's own socket
/// buffers) a thousand queries in the same millisecond, where some are
/// dropped and time out.
const IN_FLIGHT: usize = 32;

/// Looks every one of `servers` up, at most [`IN_FLIGHT`] at once, and
/// returns when all are done. In parallel: one name timing out must not
/// delay the others.
pub(crate) async fn refresh_all(pool: &Arc<Pool>, servers: impl IntoIterator<Item = Arc<Server>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut round = tokio::task::JoinSet::new();
    for s in servers {
        let (pool, slots) = (pool.clone(), slots.clone());
        round.spawn(async move {
            // Never closed, so acquiring only waits.
            let _slot = slots.acquire_owned().await;
            refresh(&pool, &s).await;
        });
    }
    while round.join_next().await.is_some() {}
}

/// Re-resolves every named server of `pool` each `dns_refresh_interval`
/// (starting now) until shutdown: the servers of the set in force at each
/// round, at the interval it sets (off: looked at again each second, in
/// case a reload turns the refresh on).
pub(crate) async fn run(pool: Arc<Pool>, mut shutdown: Shutdown) -> io::Result<()> {
    loop {
        let set = pool.servers();
        let every = set.cfg.extensions.dns_refresh_interval;
        let named: Vec<Arc<Server>> = match every {
            Some(_) => set.servers.iter().filter(|s| !s.target.is_literal()).cloned().collect(),
            None => Vec::new(),
        };
        drop(set);
        // A slow round (resolver down) is followed by a full interval, not a burst.
        let next = tokio::time::sleep(every.unwrap_or(Duration::from_secs(1)));
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            () = refresh_all(&pool, named) => {}
        }
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            () = next => {}
        }
    }
}
