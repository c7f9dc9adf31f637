//! The closed loop: each connection writes a batch of `pipeline` requests,
//! reads every reply, and only then writes the next batch. Offered load
//! adapts to the server, so this measures capacity; latency runs from the
//! batch's write, so a server stall delays the next batch instead of showing
//! up in the latencies of the requests that would have been sent meanwhile
//! (use the open loop for that).

use crate::connection::{BenchConn, ConnError};
use crate::progress::{Live, Window};
use crate::stats::ConnStats;
use crate::workload::Workload;
use std::sync::Mutex;
use tokio::time::Instant;

/// Runs batches until `window.end`, or until `quota` measured requests were
/// written; requests written after `window.measure_from` are recorded.
pub(crate) async fn run(
    conn: &mut BenchConn,
    wl: &Workload,
    pipeline: usize,
    window: Window,
    quota: Option<u64>,
    stats: &Mutex<ConnStats>,
    live: &Live,
) -> Result<(), ConnError> {
    let mut measured = 0u64;
    loop {
        let now = Instant::now();
        if now >= window.end || quota.is_some_and(|q| measured >= q) {
            return Ok(());
        }
        let record = now >= window.measure_from;
        let batch = match quota {
            Some(q) if record => usize::try_from(q - measured).unwrap_or(usize::MAX).min(pipeline),
            _ => pipeline,
        };
        for _ in 0..batch {
            conn.queue(wl, now, record);
        }
        if record {
            measured += batch as u64;
        }
        conn.flush().await?;
        while conn.in_flight() > 0 {
            let arrived = conn.fill().await?;
            conn.drain(arrived, stats, live)?;
        }
    }
}
