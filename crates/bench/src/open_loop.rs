//! The open loop, connection side: send each request at its scheduled time
//! (handed over by the [pacer](crate::pacer)) when fewer than `pipeline`
//! requests are in flight, later otherwise, and time it from the schedule.
//!
//! A scheduled request that finds every pipeline slot taken waits *unsent*,
//! and its wait counts in its latency: if the server stalls for 500 ms, the
//! requests scheduled during the stall report up to 500 ms, as the clients
//! of a real service would see it (no coordinated omission). The backlog is
//! the channel from the pacer, so it costs nothing until it exists.

use crate::connection::{BenchConn, ConnError};
use crate::progress::Live;
use crate::stats::ConnStats;
use crate::workload::Workload;
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;

/// One scheduled request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    /// When it should be sent; its latency runs from here.
    pub(crate) intended: Instant,
    /// Whether it was scheduled inside the measured window.
    pub(crate) record: bool,
}

/// Sends scheduled requests and reads replies until the pacer has closed the
/// schedule and every request is answered.
pub(crate) async fn run(
    conn: &mut BenchConn,
    wl: &Workload,
    pipeline: usize,
    arrivals: &mut UnboundedReceiver<Arrival>,
    stats: &Mutex<ConnStats>,
    live: &Live,
) -> Result<(), ConnError> {
    let mut scheduled_all = false;
    loop {
        // Everything already due that has a free slot goes out in one write.
        while !scheduled_all && conn.in_flight() < pipeline {
            match arrivals.try_recv() {
                Ok(a) => conn.queue(wl, a.intended, a.record),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => scheduled_all = true,
            }
        }
        conn.flush().await?;
        if scheduled_all && conn.in_flight() == 0 {
            return Ok(());
        }
        let awaiting_reply = conn.in_flight() > 0;
        let slot_free = !scheduled_all && conn.in_flight() < pipeline;
        // Both futures are cancel-safe: a read that loses the race consumed
        // no bytes, a receive that loses it took no arrival.
        tokio::select! {
            biased;
            read = conn.fill(), if awaiting_reply => {
                let arrived: Instant = read?;
                conn.drain(arrived, stats, live)?;
            }
            next = arrivals.recv(), if slot_free => match next {
                Some(a) => conn.queue(wl, a.intended, a.record),
                None => scheduled_all = true,
            },
        }
    }
}

/// Measured arrivals still waiting in the channel (never sent).
pub(crate) fn unsent(arrivals: &mut UnboundedReceiver<Arrival>) -> u64 {
    let mut n = 0;
    while let Ok(a) = arrivals.try_recv() {
        n += u64::from(a.record);
    }
    n
}
