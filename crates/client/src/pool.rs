//! A fixed set of pipelined connections to one server, repaired lazily.
//!
//! Each of the `size` slots holds at most one [`Client`]. [`Pool::client`]
//! starts at the next slot in round-robin order and returns the first healthy
//! connection. A slot whose connection is missing or broken is reconnected by
//! the caller that finds it, at most one connect per call and only once the
//! slot's backoff has passed (doubling from `min_backoff` to `max_backoff`
//! after each failed connect), so a dead server costs callers one fast
//! failure per backoff period rather than a connect storm.

use crate::connection::{Client, ClientConfig};
use crate::error::{ClientError, Result};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Settings of a [`Pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of connections (values below 1 are treated as 1).
    pub size: usize,
    /// Settings of each connection.
    pub client: ClientConfig,
    /// Wait after the first failed connect of a slot.
    pub min_backoff: Duration,
    /// Longest wait between connect attempts of a slot.
    pub max_backoff: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            size: 4,
            client: ClientConfig::default(),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Default)]
struct Slot {
    client: Option<Client>,
    /// A caller is connecting this slot right now.
    connecting: bool,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<ClientError>,
}

struct PoolInner {
    addr: String,
    config: PoolConfig,
    /// TLS for every connection, and the name the server's certificate is
    /// checked against; `None`: plaintext.
    tls: Option<(Arc<memshard_tls::ClientTls>, String)>,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    /// Signalled whenever a connect attempt finishes.
    changed: Notify,
}

/// A cheap-to-clone pool of pipelined connections to one address.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("addr", &self.inner.addr).field("size", &self.inner.slots.len()).finish()
    }
}

/// What a caller decided to do about a slot, with the lock released.
enum Visit {
    Healthy(Client),
    Connect,
}

/// What a scan over the slots saw besides healthy connections.
#[derive(Default)]
struct Scan {
    connecting: bool,
    last_error: Option<ClientError>,
}

impl Pool {
    /// A pool for `addr` (`host:port`, resolved at every connect) that has not
    /// connected yet: connections are made on first use.
    pub fn new(addr: impl Into<String>, config: PoolConfig) -> Pool {
        Pool::with_tls(addr, config, None)
    }

    /// [`Pool::new`], every connection speaking TLS with `tls` (its
    /// configuration, and the name to check the server's certificate against).
    pub fn with_tls(
        addr: impl Into<String>,
        config: PoolConfig,
        tls: Option<(Arc<memshard_tls::ClientTls>, String)>,
    ) -> Pool {
        let size = config.size.max(1);
        let slots = (0..size).map(|_| Mutex::new(Slot::default())).collect();
        Pool {
            inner: Arc::new(PoolInner {
                addr: addr.into(),
                config,
                tls,
                slots,
                next: AtomicUsize::new(0),
                changed: Notify::new(),
            }),
        }
    }

    /// One new connection, over TLS if the pool speaks it.
    async fn open(&self, config: ClientConfig) -> Result<Client> {
        let addr = self.inner.addr.as_str();
        match &self.inner.tls {
            None => Client::connect_with(addr, config).await,
            Some((tls, name)) => Client::connect_tls_with(addr, tls, name, config).await,
        }
    }

    /// A pool with every connection made up front; fails if any connect fails.
    pub async fn connect(addr: impl Into<String>, config: PoolConfig) -> Result<Pool> {
        let pool = Pool::new(addr, config);
        for i in 0..pool.inner.slots.len() {
            let client = pool.open(config.client).await?;
            pool.inner.slots[i].lock().client = Some(client);
        }
        Ok(pool)
    }

    /// The address connections go to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Number of slots.
    pub fn size(&self) -> usize {
        self.inner.slots.len()
    }

    /// Slots holding a connection that is not broken.
    pub fn healthy(&self) -> usize {
        self.inner.slots.iter().filter(|s| s.lock().client.as_ref().is_some_and(|c| !c.is_broken())).count()
    }

    /// A healthy connection, round-robin; reconnects a dead slot when needed
    /// (see the module docs). When every slot is dead and another caller is
    /// already connecting one, waits for that attempt instead of piling on.
    /// Fails with the last connect error when no slot is healthy and none can
    /// be reconnected now.
    pub async fn client(&self) -> Result<Client> {
        let slots = &self.inner.slots;
        let n = slots.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let deadline = Instant::now() + self.inner.config.client.connect_timeout;
        loop {
            // Registered before the scan so a connect finishing mid-scan still wakes us.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let mut scan = Scan::default();
            for i in 0..n {
                let idx = (start + i) % n;
                match self.visit(idx, &mut scan) {
                    Some(Visit::Healthy(c)) => return Ok(c),
                    // Connect the first dead slot on our path ourselves: it is
                    // usually the one round-robin picked for us.
                    Some(Visit::Connect) => return self.reconnect(idx).await,
                    None => {}
                }
            }
            if !scan.connecting || Instant::now() >= deadline {
                return Err(scan.last_error.unwrap_or(ClientError::Closed));
            }
            // Someone else is connecting a slot: wait for them, then look again.
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }

    fn visit(&self, idx: usize, scan: &mut Scan) -> Option<Visit> {
        let mut slot = self.inner.slots[idx].lock();
        if let Some(c) = &slot.client {
            if !c.is_broken() {
                return Some(Visit::Healthy(c.clone()));
            }
            slot.client = None;
        }
        if slot.last_error.is_some() {
            scan.last_error.clone_from(&slot.last_error);
        }
        if slot.connecting {
            scan.connecting = true;
            return None;
        }
        if slot.retry_at.is_none_or(|t| Instant::now() >= t) {
            slot.connecting = true;
            return Some(Visit::Connect);
        }
        None
    }

    /// Connects slot `idx` (already marked `connecting`). The attempt runs in
    /// its own task so that a caller giving up midway cannot leave the slot
    /// marked `connecting` forever; a connection made for a caller that left
    /// still goes into the slot.
    async fn reconnect(&self, idx: usize) -> Result<Client> {
        let pool = self.clone();
        tokio::spawn(async move { pool.connect_slot(idx).await }).await.unwrap_or(Err(ClientError::Closed))
    }

    async fn connect_slot(&self, idx: usize) -> Result<Client> {
        let cfg = self.inner.config;
        let result = self.open(cfg.client).await;
        let mut slot = self.inner.slots[idx].lock();
        slot.connecting = false;
        self.inner.changed.notify_waiters();
        match result {
            Ok(client) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.last_error = None;
                slot.client = Some(client.clone());
                Ok(client)
            }
            Err(e) => {
                slot.failures = slot.failures.saturating_add(1);
                let backoff = backoff(cfg.min_backoff, cfg.max_backoff, slot.failures);
                slot.retry_at = Some(Instant::now() + backoff);
                slot.last_error = Some(e.clone());
                tracing::debug!(addr = %self.inner.addr, slot = idx, error = %e, ?backoff, "pool connect failed");
                Err(e)
            }
        }
    }
}

/// `min * 2^(failures-1)`, capped at `max`.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(20);
    min.saturating_mul(1 << shift).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(1));
        assert_eq!(backoff(min, max, 1), min);
        assert_eq!(backoff(min, max, 2), Duration::from_millis(100));
        assert_eq!(backoff(min, max, 5), Duration::from_millis(800));
        assert_eq!(backoff(min, max, 6), max);
        assert_eq!(backoff(min, max, u32::MAX), max);
    }
}
