//! When a pool's certificates are read again: whenever their files'
//! contents change (polled every `memshard_tls::watch::POLL_INTERVAL`,
//! which sees the symlink swap of a Kubernetes Secret), and on SIGHUP.
//! Each pass looks at the server set in force, so a reload that changes
//! the files' paths is followed.

use crate::control::pool::Pool;
use std::sync::Arc;

/// Reloads the pool's certificates whenever their files change, until
/// the pool stops.
pub(crate) async fn watch(pool: Arc<Pool>, mut shutdown: memshard_net::Shutdown) -> std::io::Result<()> {
    let mut tick = tokio::time::interval(memshard_tls::watch::POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tick.tick() => {}
        }
        for item in pool.servers().tls.items() {
            memshard_tls::watch::reload_if_changed(&*item);
        }
    }
}

/// SIGHUP: every pool's certificates, read again now, changed or not.
pub(crate) fn reload_all(pools: &[Arc<Pool>]) {
    for pool in pools {
        let _ = memshard_tls::watch::reload_all(&pool.servers().tls.items());
    }
}
