//! The accept loop with a connection limit and a drain.

use crate::{Accept, Shutdown};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// How [`serve`] treats connections.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Most simultaneous connections (memcached `-c`, default 1024).
    pub max_connections: usize,
    /// Sent to a connection over the limit before it is closed.
    pub reject_reply: &'static [u8],
    /// How long to wait for open connections after shutdown before giving up.
    pub drain_timeout: Duration,
    /// Set TCP_NODELAY on accepted sockets (TCP only).
    pub nodelay: bool,
    /// Set SO_KEEPALIVE on accepted sockets (TCP only).
    pub keepalive: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_connections: 1024,
            // memcached's exact words (memcached.c, maxconns_fast).
            reject_reply: b"ERROR Too many open connections\r\n",
            drain_timeout: Duration::from_secs(10),
            nodelay: true,
            keepalive: false,
        }
    }
}

/// Connection counters, shared with whoever reports stats.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Connections open now.
    pub curr_connections: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused because of the limit.
    pub rejected_connections: AtomicU64,
    /// Worker threads taking connections now (pinned loops).
    pub active_workers: AtomicU64,
    /// Connections moved from one worker thread to another since start.
    pub moved_connections: AtomicU64,
}

/// Decrements `curr_connections` however the handler ends.
pub(crate) struct Open(pub(crate) Arc<ServeStats>);
impl Drop for Open {
    fn drop(&mut self) {
        self.0.curr_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection let in under the limit, with the permit and the
/// counter guard that end with it.
pub(crate) type Admitted<S> = (S, OwnedSemaphorePermit, Open);

/// Turns one accept result into an admitted connection: socket options, then
/// the connection limit. `None` after backing off from an accept error, or
/// after handing a connection over the limit to `rejects` (reject reply, close).
pub(crate) async fn admit<L: Accept>(
    accepted: std::io::Result<L::Stream>,
    backoff: &mut Duration,
    cfg: &ServeConfig,
    permits: &Arc<Semaphore>,
    stats: &Arc<ServeStats>,
    rejects: &mut JoinSet<()>,
) -> Option<Admitted<L::Stream>> {
    let stream = match accepted {
        Ok(s) => {
            *backoff = Duration::from_millis(1);
            s
        }
        Err(e) => {
            wait_after_accept_error(backoff, &e).await;
            return None;
        }
    };
    L::tune(&stream, cfg);
    let Ok(permit) = permits.clone().try_acquire_owned() else {
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        rejects.spawn(reject(stream, cfg.reject_reply));
        return None;
    };
    stats.total_connections.fetch_add(1, Ordering::Relaxed);
    stats.curr_connections.fetch_add(1, Ordering::Relaxed);
    Some((stream, permit, Open(stats.clone())))
}

/// Writes the reject reply and closes; best effort and bounded, so a peer
/// that never reads cannot pin the task.
async fn reject<S: AsyncWrite + Unpin>(mut stream: S, reply: &'static [u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply)).await;
    let _ = stream.shutdown().await;
}

/// After a failed accept (EMFILE and friends): wait a little, longer each
/// time, instead of spinning.
async fn wait_after_accept_error(backoff: &mut Duration, e: &std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(Duration::from_secs(1));
}

/// Accepts connections until `shutdown`, running `handler` for each one.
///
/// Returns after every handler finished or `drain_timeout` passed (remaining
/// handlers are then aborted). Handlers receive the shutdown signal so they can
/// finish the request in hand and close.
pub async fn serve<L, F, Fut>(listener: L, cfg: ServeConfig, stats: Arc<ServeStats>, mut shutdown: Shutdown, handler: F)
where
    L: Accept,
    F: Fn(L::Stream, Shutdown) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept_stream() => r,
            // Reap finished handlers so the set does not grow with history.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let Some((stream, permit, open)) = admit::<L>(accepted, &mut backoff, &cfg, &permits, &stats, &mut tasks).await
        else {
            continue;
        };
        let fut = handler(stream, shutdown.clone());
        tasks.spawn(async move {
            fut.await;
            drop(open);
            drop(permit);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(cfg.drain_timeout, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(remaining = tasks.len(), "drain timed out; closing remaining connections");
        tasks.shutdown().await;
    }
}
