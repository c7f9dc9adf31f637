//! The stats port: like twemproxy, every accepted connection immediately gets
//! the JSON document and is closed; no request is read.

use crate::control::pool::Pool;
use crate::control::reload::{ConfigInfo, SharedInfo};
use crate::control::stats::{PoolView, document};
use arc_swap::ArcSwap;
use memshard_net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Serves the document of the pools in `registry` (as a reload leaves
/// them) and of the configuration in force (`info`) until `shutdown`.
pub(crate) async fn run(
    listener: TcpListener,
    registry: Arc<ArcSwap<Vec<Arc<Pool>>>>,
    info: SharedInfo,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let started = Instant::now();
    loop {
        let (mut sock, _) = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "stats accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // twemproxy lists pools sorted by name.
        let mut pools: Vec<Arc<Pool>> = registry.load().to_vec();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        let sets: Vec<_> = pools.iter().map(|p| p.servers()).collect();
        let views: Vec<PoolView<'_>> = pools
            .iter()
            .zip(&sets)
            .map(|(p, set)| PoolView {
                name: &p.name,
                stats: &p.stats,
                servers: set
                    .stats_order
                    .iter()
                    .map(|&i| (set.servers[i].name.as_str(), &set.servers[i].stats))
                    .collect(),
                replicated: set.replicas() > 1,
            })
            .collect();
        let total: u64 = pools.iter().map(|p| p.conns.total_connections.load(Ordering::Relaxed)).sum();
        let curr: u64 = pools.iter().map(|p| p.conns.curr_connections.load(Ordering::Relaxed)).sum();
        let doc = document(started, total, curr as i64, &ConfigInfo::read(&info), &views);
        tokio::spawn(async move {
            // Bounded: a stats client that never reads must not pin a task.
            let _ = tokio::time::timeout(Duration::from_secs(2), sock.write_all(doc.as_bytes())).await;
            let _ = sock.shutdown().await;
        });
    }
}
