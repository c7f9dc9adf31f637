//! Shards from DNS SRV: a pool with `discovery: dnssrv+NAME` asks for the
//! SRV records of NAME every `dns_refresh_interval` (through the proxy's
//! resolver: `--dns-server`, or `/etc/resolv.conf`'s servers), turns each
//! record into a server (`memshard_config::discovered_server`: reached at
//! its target, named `<pod>.<service>` on the ring, weight 1), and, when
//! the set differs from the one in force, publishes it through the same
//! path as a reload: servers that stay keep their connections, a new
//! target joins (its name looked up first), a vanished one leaves. Each
//! target's name is then resolved as any server name is (`refresh`), so a
//! pod's new IP moves connections, never keys.
//!
//! A failed lookup, an answer with no record, or one whose targets are all
//! unusable keeps the last good set: a DNS blip must never empty the ring.
//! Targets that are not valid host names are left out (and logged).

use crate::control::pool::Pool;
use crate::control::{purge, refresh};
use memshard_config::{Discovery, checked_servers, discovered_server};
use memshard_net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the pool's configuration is looked at for a new or changed
/// `discovery:` (a reload), between lookups.
const LOOK: Duration = Duration::from_millis(500);

/// The lookup interval when `dns_refresh_interval` is 0 (off): discovery
/// still has to follow the cluster.
const DEFAULT_EVERY: Duration = memshard_config::DEFAULT_DNS_REFRESH_INTERVAL;

/// Looks the pool's SRV records up every `dns_refresh_interval` (and at
/// once when `discovery:` appears or changes) until `shutdown`.
pub(crate) async fn run(pool: Arc<Pool>, mut shutdown: Shutdown) -> std::io::Result<()> {
    let (mut asked, mut next) = (None::<Discovery>, Instant::now());
    let mut failing = false;
    loop {
        let set = pool.servers();
        if let Some(d) = set.cfg.extensions.discovery.clone() {
            let every = set.cfg.extensions.dns_refresh_interval.unwrap_or(DEFAULT_EVERY);
            if asked.as_ref() != Some(&d) || Instant::now() >= next {
                drop(set);
                failing = discover(&pool, &d, failing).await;
                next = Instant::now() + every;
                asked = Some(d);
            }
        } else {
            asked = None;
        }
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            () = tokio::time::sleep(LOOK) => {}
        }
    }
}

/// One lookup of `d` for `pool`; whether it failed (so a failure is logged
/// at warn once, not every round).
async fn discover(pool: &Arc<Pool>, d: &Discovery, was_failing: bool) -> bool {
    let keep = |why: String| {
        if was_failing {
            tracing::debug!(pool = %pool.name, discovery = %d, "{why}; keeping the last good servers");
        } else {
            tracing::warn!(pool = %pool.name, discovery = %d, "{why}; keeping the last good servers");
        }
        true
    };
    let records = match pool.resolver.srv(&d.srv).await {
        Ok(r) => r,
        Err(e) => return keep(format!("SRV lookup failed: {e}")),
    };
    if records.is_empty() {
        return keep("the SRV answer has no records".to_string());
    }
    let (mut found, mut bad) = (Vec::with_capacity(records.len()), Vec::new());
    for (target, port) in &records {
        match discovered_server(target, *port) {
            Some(server) => found.push(server),
            None => bad.push(target.as_str()),
        }
    }
    if !bad.is_empty() {
        tracing::warn!(pool = %pool.name, discovery = %d, left_out = bad.len(), examples = ?&bad[..bad.len().min(5)],
            "SRV targets that are not valid host names (or lack a service label) are left out");
    }
    if found.is_empty() {
        return keep("no SRV target is a valid host name".to_string());
    }
    let servers = match checked_servers(&pool.name, found) {
        Ok(s) => s,
        Err(e) => return keep(format!("the SRV targets do not make a valid server list: {e}")),
    };
    if was_failing {
        tracing::info!(pool = %pool.name, discovery = %d, "SRV lookups succeed again");
    }
    let set = pool.servers();
    // A reload may have changed the pool while the lookup ran: an answer
    // for a discovery no longer in force is not applied.
    if set.cfg.extensions.discovery.as_ref() != Some(d) {
        return false;
    }
    let same = set.cfg.servers.len() == servers.len()
        && set.cfg.servers.iter().zip(&servers).all(|(a, b)| a.as_written() == b.as_written());
    if same {
        return false;
    }
    let (mut cfg, generation) = (set.cfg.clone(), set.generation);
    cfg.servers = servers;
    drop(set);
    match pool.prepare(&cfg) {
        Ok(next) => {
            // New targets are looked up before they join: a request routed
            // to one then finds its address, not a lookup (or, when the
            // lookup fails under a burst, an error).
            let unresolved = next.servers.iter().filter(|s| !s.target.is_literal() && s.target.current().is_none());
            refresh::refresh_all(pool, unresolved.cloned().collect::<Vec<_>>()).await;
            // A set published meanwhile (a reload) is not undone: the next
            // round compares against it.
            if pool.servers().generation != generation {
                return false;
            }
            tracing::info!(pool = %pool.name, discovery = %d, servers = cfg.servers.len(), "discovered servers changed");
            // Keys the change moves are cleared where they arrive first.
            purge::moving_in(pool, &pool.servers(), &next).await;
            if pool.servers().generation != generation {
                return false;
            }
            pool.publish(next);
            false
        }
        Err(e) => keep(format!("the discovered servers make no ring: {e}")),
    }
}
