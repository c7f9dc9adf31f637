//! Thread-per-core serving: one acceptor hands each connection to one of N
//! worker threads, each running its own single-threaded runtime, and the
//! connection stays on that thread for its whole life (memcached's model).
//!
//! Pinning matters twice: no cross-thread task migration on the request path,
//! and every allocation a connection makes comes from its thread's allocator
//! arena, so memory freed by evictions is reused instead of fragmenting across
//! arenas.

use crate::limit::{Open, ServeConfig, ServeStats, admit};
use crate::{Accept, Shutdown};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

/// One accepted connection on its way to a worker, with the guards that keep
/// the connection counters and the limit right however it ends.
struct Job<D> {
    stream: D,
    permit: OwnedSemaphorePermit,
    open: Open,
}

/// Like [`serve`](crate::serve), but runs connection handlers on `threads`
/// dedicated worker threads (each a current-thread runtime), assigning
/// connections round-robin. Returns after shutdown, once every worker drained
/// (bounded by `drain_timeout`).
pub async fn serve_pinned<L, F, Fut>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    shutdown: Shutdown,
    threads: usize,
    handler: F,
) -> std::io::Result<()>
where
    L: Accept,
    F: Fn(L::Stream, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // A `Send` future runs as a local task just as well: one worker loop
    // serves both kinds of handler.
    serve_pinned_local(listener, cfg, stats, shutdown, threads, handler).await
}

/// Like [`serve_pinned`], for handlers whose futures are not `Send`: each
/// worker runs its connections as local tasks (a `LocalSet`), so a handler
/// and the tasks it spawns with `tokio::task::spawn_local` may share
/// `Rc`/`RefCell` state with each other — no locks or atomics between tasks
/// that never leave their thread.
pub async fn serve_pinned_local<L, F, Fut>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    shutdown: Shutdown,
    threads: usize,
    handler: F,
) -> std::io::Result<()>
where
    L: Accept,
    F: Fn(L::Stream, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let handler = Arc::new(handler);
    let start = |rx, sd, drain| {
        let handler = handler.clone();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(move || {
            let local = tokio::task::LocalSet::new();
            rt.block_on(local.run_until(worker_local::<L, F, Fut>(rx, handler, sd, drain)));
        })
    };
    accept_loop(listener, cfg, stats, shutdown, threads, start).await
}

/// Starts `threads` worker threads (`start` builds each one's body from its
/// job queue), then accepts and hands connections out round-robin until
/// shutdown; then waits for the workers to drain.
async fn accept_loop<L, S, W>(
    listener: L,
    cfg: ServeConfig,
    stats: Arc<ServeStats>,
    mut shutdown: Shutdown,
    threads: usize,
    start: S,
) -> std::io::Result<()>
where
    L: Accept,
    S: Fn(mpsc::UnboundedReceiver<Job<L::Detached>>, Shutdown, Duration) -> std::io::Result<W>,
    W: FnOnce() + Send + 'static,
{
    let mut senders = Vec::with_capacity(threads.max(1));
    let mut joins = Vec::with_capacity(threads.max(1));
    for i in 0..threads.max(1) {
        let (tx, rx) = mpsc::unbounded_channel::<Job<L::Detached>>();
        let body = start(rx, shutdown.clone(), cfg.drain_timeout)?;
        let join = std::thread::Builder::new().name(format!("memshard-worker-{i}")).spawn(body)?;
        senders.push(tx);
        joins.push(join);
    }
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let mut rejects = JoinSet::new();
    let mut backoff = Duration::from_millis(1);
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept_stream() => r,
            Some(_) = rejects.join_next(), if !rejects.is_empty() => continue,
        };
        let Some((stream, permit, open)) =
            admit::<L>(accepted, &mut backoff, &cfg, &permits, &stats, &mut rejects).await
        else {
            continue;
        };
        // Leave this runtime's reactor; the worker registers it with its own.
        let Ok(std_stream) = L::detach(stream) else { continue };
        let job = Job { stream: std_stream, permit, open };
        if senders[next % senders.len()].send(job).is_err() {
            tracing::error!("worker thread {} is gone", next % senders.len());
        }
        next = next.wrapping_add(1);
    }
    drop(listener);
    // Closing the channels tells the workers to drain and stop.
    drop(senders);
    let waited = tokio::task::spawn_blocking(move || {
        for j in joins {
            let _ = j.join();
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!("a worker thread panicked");
    }
    Ok(())
}

/// One worker thread's loop: every connection is a local task; on shutdown
/// (the job channel closes) it waits up to `drain` for them, then closes the
/// rest. Must run inside a `LocalSet`.
async fn worker_local<L, F, Fut>(
    mut rx: mpsc::UnboundedReceiver<Job<L::Detached>>,
    handler: Arc<F>,
    shutdown: Shutdown,
    drain: Duration,
) where
    L: Accept,
    F: Fn(L::Stream, Shutdown) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { break };
                let Ok(stream) = L::attach(job.stream) else { continue };
                let fut = handler(stream, shutdown.clone());
                let (permit, open) = (job.permit, job.open);
                tasks.spawn_local(async move {
                    fut.await;
                    drop(open);
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let drained = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(remaining = tasks.len(), "drain timed out; closing remaining connections");
        tasks.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShutdownTrigger;
    use std::cell::Cell;
    use std::rc::Rc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Handlers holding `Rc` state, shared with a local task they spawn,
    /// serve connections and drain on shutdown.
    #[tokio::test]
    async fn local_handlers_share_rc_state_with_their_tasks() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (trigger, sd) = ShutdownTrigger::new();
        let stats = Arc::new(ServeStats::default());
        let serving = tokio::spawn(serve_pinned_local(
            l,
            ServeConfig::default(),
            stats,
            sd,
            2,
            |mut s: TcpStream, _| async move {
                let seen = Rc::new(Cell::new(0u8));
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).await.is_ok() {
                    let (seen2, byte) = (seen.clone(), b[0]);
                    tokio::task::spawn_local(async move { seen2.set(byte) }).await.expect("local task");
                    if s.write_all(&[seen.get() + 1]).await.is_err() {
                        return;
                    }
                }
            },
        ));
        for i in 0..4u8 {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            c.write_all(&[i]).await.expect("write");
            let mut r = [0u8; 1];
            c.read_exact(&mut r).await.expect("read");
            assert_eq!(r[0], i + 1);
        }
        trigger.trigger();
        serving.await.expect("joined").expect("served");
    }
}
