//! Returns ejected servers to the ring: when a server's retry time comes, a
//! probe (connect + `version`) must succeed first — twemproxy re-adds blindly,
//! which makes a still-dead server flap in and out of the ring. With
//! `flush_on_return` (the default) a server that was ejected is then emptied
//! with `flush_all` before it rejoins: while it was out, its keys were
//! written elsewhere, and the older values it still holds must not be served
//! again once it is back.
//!
//! Only that return flushes. A reachability check (`preconnect` at start)
//! asks `version` and nothing else, and the flush is sent only while the
//! server is still marked ejected: a server that never left the ring holds
//! no value older than one the proxy acknowledged, and emptying it would
//! throw a warm cache away (nutcracker never flushes).

use crate::control::pool::Pool;
use crate::control::refresh;
use crate::control::servers::Server;
use memshard_client::{Client, ClientConfig};
use memshard_config::PoolConfig;
use memshard_net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(100);

pub(crate) async fn run(pool: Arc<Pool>, mut shutdown: Shutdown) -> std::io::Result<()> {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tick.tick() => {}
        }
        let set = pool.servers();
        for s in set.servers.iter().filter(|s| s.health.due_for_retry()) {
            if !set.cfg.extensions.server_probe || readmit(&pool, s, &set.cfg).await {
                pool.restore(s);
            } else {
                tracing::debug!(pool = %pool.name, server = %s.addr, "probe failed; staying ejected");
                pool.postpone(s);
            }
        }
    }
}

/// Is server `s` reachable? Connects to its name as it resolves now (a
/// probe is a reconnect: the server may be back at another address), or to
/// its unix socket, and asks `version`. Changes nothing on the server.
pub(crate) async fn reachable(pool: &Pool, s: &Server) -> bool {
    check(pool, s).await.is_some()
}

/// The connection of a successful check, for a command to follow it.
async fn check(pool: &Pool, s: &Server) -> Option<Client> {
    let t = pool.servers().timeout().min(Duration::from_secs(2));
    let cfg = ClientConfig { timeout: t, connect_timeout: t, max_in_flight: 1 };
    let (dest, _) = refresh::destination(pool, s, true).await.ok()?;
    let c = dest.connect(cfg, &pool.servers().tls_for(s)).await.ok()?;
    c.version().await.ok()?;
    Some(c)
}

/// The probe of an ejected server whose retry time came: reachable, then,
/// with `flush_on_return` and only if it is still ejected, flushed. The
/// flush comes after the `version` answer so that requests the server had
/// buffered before it stopped answering (a hung process resuming) are
/// processed first and flushed too.
async fn readmit(pool: &Pool, s: &Server, cfg: &PoolConfig) -> bool {
    let Some(c) = check(pool, s).await else { return false };
    if !cfg.extensions.flush_on_return || !s.health.is_ejected() {
        return true;
    }
    match c.flush_all().await {
        Ok(()) => {
            tracing::info!(pool = %pool.name, server = %s.addr, "flushed before returning to the ring");
            true
        }
        Err(e) => {
            tracing::warn!(pool = %pool.name, server = %s.addr, error = %e, "flush before return failed");
            false
        }
    }
}
