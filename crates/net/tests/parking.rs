//! Idle connections park: a handler hands its idle stream back with
//! `Seat::park`, the worker holds it as a bare socket, and the next request
//! gets a new handler (told it `resumed`) — nothing lost, nothing reordered.

mod common;

use common::start_with;
use memshard_net::{PARK_TICK, Seat, Spread};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Echoes each byte as `b'a' + handler generation` (0 for a fresh
/// connection, 1 once resumed from the lot); parks after two park ticks
/// with nothing read, as the proxy does.
async fn parker(mut s: TcpStream, _sd: memshard_net::Shutdown, seat: Seat) -> Option<TcpStream> {
    let generation = u8::from(seat.resumed());
    let mut b = [0u8; 1];
    let mut idle = 0;
    loop {
        tokio::select! {
            r = s.read(&mut b) => {
                if !matches!(r, Ok(1)) {
                    return None;
                }
                idle = 0;
                if s.write_all(&[b[0], b'a' + generation]).await.is_err() {
                    return None;
                }
            }
            () = seat.park_tick() => {
                idle += 1;
                if idle >= 2 {
                    seat.park();
                    return Some(s);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_parks_and_its_next_request_is_served() {
    let (addr, stats, trigger, serving) = start_with(Spread::All, parker).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut ans = [0u8; 2];
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&[i as u8]).await.expect("write");
        c.read_exact(&mut ans).await.expect("read");
        assert_eq!(ans, [i as u8, b'a'], "served by its first handler");
    }
    // Idle past a park tick: every connection parks.
    tokio::time::sleep(PARK_TICK * 3).await;
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&[i as u8 + 100]).await.expect("write");
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut ans))
            .await
            .expect("answer in time")
            .expect("read");
        assert_eq!(ans, [i as u8 + 100, b'b'], "served by a handler resumed from the lot");
    }
    // Parked connections stay open connections.
    assert_eq!(stats.curr_connections.load(std::sync::atomic::Ordering::Relaxed), 20);
    // A parked connection whose client leaves is closed and counted out.
    tokio::time::sleep(PARK_TICK * 3).await;
    drop(clients);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stats.curr_connections.load(std::sync::atomic::Ordering::Relaxed) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "closed parked connections were not counted out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    trigger.trigger();
    serving.await.expect("joined").expect("served");
}
