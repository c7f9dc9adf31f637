//! The pool replaces broken connections lazily, with backoff.

mod common;

use common::{Action, FakeServer, echo, get_key};
use memshard_client::{ClientConfig, ClientError, Pool, PoolConfig};
use std::time::Duration;
use tokio::net::TcpListener;

fn config(size: usize) -> PoolConfig {
    PoolConfig {
        size,
        client: ClientConfig { timeout: Duration::from_secs(5), ..ClientConfig::default() },
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
    }
}

#[tokio::test]
async fn pool_replaces_broken_connections() {
    let server = FakeServer::start(|req| match get_key(req).as_deref() {
        Some(b"die") => Action::ReplyThenClose(Vec::new()),
        _ => echo(req),
    })
    .await;
    let pool = Pool::new(server.addr.to_string(), config(2));
    assert_eq!(pool.healthy(), 0, "lazy: nothing connected yet");
    for _ in 0..4 {
        assert!(pool.client().await.unwrap().get("x").await.unwrap().is_some());
    }
    assert_eq!(pool.healthy(), 2);
    assert_eq!(server.accepted(), 2);
    // Kill both connections from the server side.
    for _ in 0..2 {
        let c = pool.client().await.unwrap();
        assert!(c.get("die").await.is_err());
        assert!(c.is_broken());
    }
    assert_eq!(pool.healthy(), 0);
    for _ in 0..4 {
        assert!(pool.client().await.unwrap().get("again").await.unwrap().is_some());
    }
    assert_eq!(pool.healthy(), 2);
    assert_eq!(server.accepted(), 4);
}

#[tokio::test]
async fn pool_backs_off_then_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let pool = Pool::new(addr.to_string(), config(1));
    assert!(matches!(pool.client().await, Err(ClientError::Io(_))));
    // Within the backoff the pool does not even try, and reports the last error.
    assert!(matches!(pool.client().await, Err(ClientError::Io(_))));
    let listener = TcpListener::bind(addr).await.unwrap();
    let server = FakeServer::start_on(listener, echo);
    assert!(pool.client().await.is_err(), "still backing off");
    assert_eq!(server.accepted(), 0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let c = pool.client().await.unwrap();
    assert_eq!(c.version().await.unwrap(), "fake-1.0");
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn eager_pool_connects_every_slot() {
    let server = FakeServer::start(echo).await;
    let pool = Pool::connect(server.addr.to_string(), config(3)).await.unwrap();
    assert_eq!(pool.healthy(), 3);
    assert_eq!(server.wait_accepted(3).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_waits_for_connects_instead_of_failing() {
    let server = FakeServer::start(echo).await;
    let pool = Pool::new(server.addr.to_string(), config(2));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.client().await?.get(format!("k{i}")).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    assert_eq!(server.wait_accepted(2).await, 2, "one connect per slot");
}
