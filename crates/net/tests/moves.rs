//! Connections moving between worker threads: a handler hands its stream
//! back between requests, and the connection goes on, on another worker,
//! without losing or reordering a byte.

mod common;

use common::{Serving, start_with};
use memshard_net::{Seat, Spread};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Echoes each line as `<worker> <line>`; between lines, moves when asked.
async fn echo(mut s: TcpStream, _sd: memshard_net::Shutdown, seat: Seat) -> Option<TcpStream> {
    let mut line = Vec::new();
    loop {
        // One request in flight per client: between lines nothing is
        // buffered here, so the stream can move.
        if seat.should_move() {
            return Some(s);
        }
        line.clear();
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b).await {
                Ok(1) => {
                    line.push(b[0]);
                    if b[0] == b'\n' {
                        break;
                    }
                }
                _ => return None,
            }
        }
        let mut out = format!("{} ", seat.worker()).into_bytes();
        out.extend_from_slice(&line);
        if s.write_all(&out).await.is_err() {
            return None;
        }
    }
}

/// Serves `echo` on two workers; returns the address, the stats, the
/// trigger and the serving task.
async fn start(spread: Spread) -> Serving {
    start_with(spread, echo).await
}

/// Sends `n` numbered lines, one at a time, checking each echo; returns the
/// workers that answered.
async fn client(addr: std::net::SocketAddr, id: usize, n: usize, pause: Duration) -> BTreeSet<usize> {
    let s = TcpStream::connect(addr).await.expect("connect");
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut seen = BTreeSet::new();
    let mut answer = String::new();
    for i in 0..n {
        w.write_all(format!("client {id} line {i}\n").as_bytes()).await.expect("write");
        answer.clear();
        tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("client {id} line {i}: no echo"))
            .expect("read");
        let (worker, rest) = answer.split_once(' ').unwrap_or_else(|| panic!("bad echo {answer:?}"));
        assert_eq!(rest, format!("client {id} line {i}\n"), "client {id}: echo out of order or lost");
        seen.insert(worker.parse().expect("worker number"));
        tokio::time::sleep(pause).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_move_back_and_forth_without_losing_a_byte() {
    let (addr, stats, trigger, serving) = start(Spread::Alternate(Duration::from_millis(15))).await;
    let clients: Vec<_> = (0..8).map(|id| tokio::spawn(client(addr, id, 150, Duration::from_millis(1)))).collect();
    let mut both = 0;
    let mut all = BTreeSet::new();
    for c in clients {
        let seen = c.await.expect("client passed");
        both += usize::from(seen.len() == 2);
        all.extend(seen);
    }
    assert_eq!(all, BTreeSet::from([0, 1]), "both workers served");
    assert!(both > 0, "no connection was served by both workers");
    assert!(stats.moved_connections.load(Ordering::Relaxed) > 0);
    trigger.trigger();
    serving.await.expect("joined").expect("served");
    assert_eq!(stats.curr_connections.load(Ordering::Relaxed), 0, "every moved connection was counted out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_starts_on_one_worker() {
    let (addr, stats, trigger, serving) = start(Spread::Adaptive).await;
    // A light load never needs the second worker.
    let clients: Vec<_> = (0..6).map(|id| tokio::spawn(client(addr, id, 20, Duration::from_millis(2)))).collect();
    for c in clients {
        assert_eq!(c.await.expect("client passed"), BTreeSet::from([0]));
    }
    assert_eq!(stats.moved_connections.load(Ordering::Relaxed), 0);
    assert_eq!(stats.active_workers.load(Ordering::Relaxed), 1);
    trigger.trigger();
    serving.await.expect("joined").expect("served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_all_takes_turns_and_never_moves() {
    let (addr, stats, trigger, serving) = start(Spread::All).await;
    let mut all = Vec::new();
    for id in 0..4 {
        all.push(client(addr, id, 5, Duration::ZERO).await);
    }
    assert_eq!(all, vec![BTreeSet::from([0]), BTreeSet::from([1]), BTreeSet::from([0]), BTreeSet::from([1])]);
    assert_eq!(stats.moved_connections.load(Ordering::Relaxed), 0);
    assert_eq!(stats.active_workers.load(Ordering::Relaxed), 2);
    trigger.trigger();
    serving.await.expect("joined").expect("served");
}
