//! A slow shard: a TCP forwarder in front of a real shard that holds every
//! reply chunk back for a configurable delay, as a shard with a slow disk
//! swap, a noisy neighbour or a congested link would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Starts the forwarder to `target` on 127.0.0.1 (a port of its own); each
/// reply chunk waits `delay_ms` before it is passed on. Runs until the test's
/// runtime ends. Must be called inside a tokio runtime.
pub(crate) fn start(target: SocketAddr, delay_ms: Arc<AtomicU64>) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("forwarder addr");
    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let delay_ms = delay_ms.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                // Each chunk is due `delay` after it arrived, however many
                // chunks are queued: the shard is slow, not serial.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                let down = tokio::spawn(async move {
                    while let Some((due, chunk)) = rx.recv().await {
                        tokio::time::sleep_until(due).await;
                        if cw.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = sr.read(&mut buf).await {
                    let due = Instant::now() + Duration::from_millis(delay_ms.load(Ordering::Relaxed));
                    if n == 0 || tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                drop(tx);
                let _ = down.await;
                up.abort();
            });
        }
    });
    addr
}
