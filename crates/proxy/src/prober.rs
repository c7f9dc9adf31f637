//! Returns ejected servers to the ring: when a server's retry time comes, a
//! probe (connect + `version`) must succeed first — twemproxy re-adds blindly,
//! which makes a still-dead server flap in and out of the ring. With
//! `flush_on_return` (the default) the probe then empties the server with
//! `flush_all`: while it was out, its keys were written elsewhere, and the
//! older values it still holds must not be served again once it is back.

use crate::pool::Pool;
use crate::resolve;
use memshard_client::ClientConfig;
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
        for i in pool.due_for_retry() {
            if !pool.cfg.extensions.server_probe || probe(&pool, i).await {
                pool.restore(i);
            } else {
                tracing::debug!(pool = %pool.name, server = %pool.addrs[i], "probe failed; staying ejected");
                pool.postpone(i);
            }
        }
    }
}

/// Connects to the server's name as it resolves now (a probe is a
/// reconnect: the server may be back at another address), or to its unix
/// socket, and asks `version`; then, with `flush_on_return`, `flush_all`.
/// The flush comes after the `version` answer so that requests the server
/// had buffered before it stopped answering (a hung process resuming) are
/// processed first and flushed too.
pub(crate) async fn probe(pool: &Pool, i: usize) -> bool {
    let t = pool.timeout().min(Duration::from_secs(2));
    let cfg = ClientConfig { timeout: t, connect_timeout: t, max_in_flight: 1 };
    let Ok((dest, _)) = resolve::destination(pool, i, true).await else { return false };
    let Ok(c) = dest.connect(cfg).await else { return false };
    if c.version().await.is_err() {
        return false;
    }
    if !pool.cfg.extensions.flush_on_return {
        return true;
    }
    match c.flush_all().await {
        Ok(()) => {
            tracing::info!(pool = %pool.name, server = %pool.addrs[i], "flushed before returning to the ring");
            true
        }
        Err(e) => {
            tracing::warn!(pool = %pool.name, server = %pool.addrs[i], error = %e, "flush before return failed");
            false
        }
    }
}
