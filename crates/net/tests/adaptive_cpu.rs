//! The adaptive spread on real CPU readings: a saturated worker gets help
//! and gives it back. In a test binary of its own, so no other test of the
//! same run competes for the cores whose idle time the policy reads.

mod common;

use common::start_with;
use memshard_net::{Seat, Spread};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Takes one byte, spends half a millisecond of CPU on it, answers with the
/// worker's number; between requests, moves when asked.
async fn busy(mut s: TcpStream, _sd: memshard_net::Shutdown, seat: Seat) -> Option<TcpStream> {
    let mut b = [0u8; 1];
    loop {
        if seat.should_move() {
            return Some(s);
        }
        if s.read_exact(&mut b).await.is_err() {
            return None;
        }
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_micros(500) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let w = u8::try_from(seat.worker()).unwrap_or(u8::MAX);
        if s.write_all(&[w]).await.is_err() {
            return None;
        }
    }
}

/// Requests from `clients` connections for `secs`, `pause` apart; returns
/// the answers each worker gave.
async fn load(addr: std::net::SocketAddr, clients: usize, secs: u64, pause: Duration) -> [usize; 2] {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = TcpStream::connect(addr).await.expect("connect");
                let mut by_worker = [0usize; 2];
                let end = tokio::time::Instant::now() + Duration::from_secs(secs);
                while tokio::time::Instant::now() < end {
                    c.write_all(b"x").await.expect("write");
                    let mut b = [0u8; 1];
                    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut b))
                        .await
                        .expect("answer in time")
                        .expect("read");
                    by_worker[usize::from(b[0]).min(1)] += 1;
                    tokio::time::sleep(pause).await;
                }
                by_worker
            })
        })
        .collect();
    let mut total = [0usize; 2];
    for t in tasks {
        let w = t.await.expect("client passed");
        total[0] += w[0];
        total[1] += w[1];
    }
    total
}

/// The whole adaptive loop — per-thread CPU read from /proc, the policy,
/// connections handed back — on a load that saturates one worker, then on
/// one that fits on one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_saturated_worker_gets_help_and_gives_it_back_when_the_load_drops() {
    let (addr, stats, trigger, serving) = start_with(Spread::AdaptiveOnCpu, busy).await;
    // Eight clients always waiting on half a millisecond of CPU each: the
    // one active worker runs flat out, so a second one joins — once the
    // machine has an idle core for it (another process may hold it for a
    // while: the load goes on, a second at a time, for up to 20 s).
    let mut heavy = [0, 0];
    for _ in 0..20 {
        let round = load(addr, 8, 1, Duration::ZERO).await;
        heavy = [heavy[0] + round[0], heavy[1] + round[1]];
        if stats.active_workers.load(Ordering::Relaxed) == 2 && heavy[1] > 0 {
            break;
        }
    }
    assert_eq!(stats.active_workers.load(Ordering::Relaxed), 2, "answers by worker {heavy:?}");
    assert!(heavy[1] > 0, "the second worker served nothing: {heavy:?}");
    let moved = stats.moved_connections.load(Ordering::Relaxed);
    assert!(moved > 0);
    // A trickle: back to one worker, the light clients moved onto it
    // (giving workers back needs no idle core: one pass of 3 s).
    let light = load(addr, 4, 3, Duration::from_millis(10)).await;
    assert_eq!(stats.active_workers.load(Ordering::Relaxed), 1, "answers by worker {light:?}");
    assert!(stats.moved_connections.load(Ordering::Relaxed) > moved, "the light clients on worker 1 moved back");
    trigger.trigger();
    serving.await.expect("joined").expect("served");
}
