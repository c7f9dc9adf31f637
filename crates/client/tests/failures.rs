//! Timeouts, hang-ups and garbage break the connection and fail every waiter.

mod common;

use common::{Action, FakeServer, echo, get_key};
use memshard_client::{Client, ClientConfig, ClientError};
use std::time::{Duration, Instant};

fn long() -> ClientConfig {
    ClientConfig { timeout: Duration::from_secs(10), ..ClientConfig::default() }
}

/// Starts `n` gets of `key` on `client` in the background.
fn spawn_gets(client: &Client, key: &str, n: usize) -> Vec<tokio::task::JoinHandle<Result<(), ClientError>>> {
    (0..n)
        .map(|_| {
            let (c, k) = (client.clone(), key.to_owned());
            tokio::spawn(async move { c.get(k).await.map(|_| ()) })
        })
        .collect()
}

#[tokio::test]
async fn timeout_breaks_the_connection_and_errors_every_waiter() {
    let server = FakeServer::start(|req| match get_key(req).as_deref() {
        Some(b"slow") => Action::Delay(Duration::from_secs(30), b"END\r\n".to_vec()),
        _ => echo(req),
    })
    .await;
    let client = Client::connect_with(server.addr, long()).await.unwrap();
    assert!(client.get("warm").await.unwrap().is_some());
    let start = Instant::now();
    let impatient = client.with_timeout(Duration::from_millis(200));
    let slow = tokio::spawn(async move { impatient.get("slow").await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    // Queued behind "slow" with a 10 s timeout of their own.
    let waiters = spawn_gets(&client, "fast", 10);
    assert!(matches!(slow.await.unwrap(), Err(ClientError::Timeout)));
    for w in waiters {
        assert!(matches!(w.await.unwrap(), Err(ClientError::Timeout)));
    }
    assert!(start.elapsed() < Duration::from_secs(5), "waiters were failed, not left to time out");
    assert!(client.is_broken());
    assert!(matches!(client.get("after").await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn server_hanging_up_mid_stream_errors_waiters() {
    let server = FakeServer::start(|req| match get_key(req).as_deref() {
        Some(b"hang") => Action::Silent,
        // Half a value, then gone.
        Some(b"boom") => Action::ReplyThenClose(b"VALUE boom 0 10\r\nabc".to_vec()),
        _ => echo(req),
    })
    .await;
    let client = Client::connect_with(server.addr, long()).await.unwrap();
    assert!(client.get("ok").await.unwrap().is_some());
    let start = Instant::now();
    let mut waiters = spawn_gets(&client, "hang", 10);
    tokio::time::sleep(Duration::from_millis(30)).await;
    waiters.extend(spawn_gets(&client, "boom", 1));
    for w in waiters {
        match w.await.unwrap() {
            Err(ClientError::Closed | ClientError::Io(_)) => {}
            other => panic!("expected a connection error, got {other:?}"),
        }
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(client.is_broken());
    assert!(matches!(client.version().await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn garbage_reply_is_a_protocol_error() {
    let server = FakeServer::start(|req| match get_key(req).as_deref() {
        Some(b"junk") => Action::Reply(b"WHAT IS THIS\r\n".to_vec()),
        _ => echo(req),
    })
    .await;
    let client = Client::connect_with(server.addr, long()).await.unwrap();
    assert!(matches!(client.get("junk").await, Err(ClientError::Protocol(_))));
    assert!(client.is_broken());
}

#[tokio::test]
async fn unsolicited_reply_is_a_protocol_error() {
    // Two replies to one request: the second has no waiter.
    let server = FakeServer::start(|_| Action::Reply(b"VERSION 1\r\nVERSION 2\r\n".to_vec())).await;
    let client = Client::connect_with(server.addr, long()).await.unwrap();
    assert_eq!(client.version().await.unwrap(), "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !client.is_broken() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(client.is_broken());
}

#[tokio::test]
async fn connect_to_a_closed_port_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(matches!(Client::connect(("127.0.0.1", port)).await, Err(ClientError::Io(_))));
}
