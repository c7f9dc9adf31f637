//! Many tasks share one connection; each must get its own reply.

mod common;

use bytes::Bytes;
use common::{Action, FakeServer, echo};
use memshard_client::{Client, ClientConfig, ClientError, Item, OwnedReply, StoreCmd, StoreStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_tasks_pipelined_get_their_own_replies() {
    let server = FakeServer::start(echo).await;
    let cfg = ClientConfig { max_in_flight: 64, ..ClientConfig::default() };
    let client = Client::connect_with(server.addr, cfg).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..100 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let key = format!("t{t}-k{i}");
                let item = c.get(&key).await.unwrap().unwrap();
                assert_eq!(item, Item { value: Bytes::from(key.clone()), flags: 7, cas: None });
                if i % 10 == 0 {
                    assert_eq!(c.set(&key, b"v", 0, 0).await.unwrap(), StoreStatus::Stored);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(server.accepted(), 1, "everything went over one connection");
    assert!(server.max_batch.load(Ordering::SeqCst) > 1, "requests were pipelined, not one per round trip");
    assert_eq!(client.in_flight(), 0);
    assert!(!client.is_broken());
}

#[tokio::test]
async fn multi_get_noreply_and_raw_requests_stay_aligned() {
    let server = FakeServer::start(echo).await;
    let client = Client::connect(server.addr).await.unwrap();
    let got = client.get_multi(&["a", "bb", "ccc"]).await.unwrap();
    let keys: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![Bytes::from("a"), Bytes::from("bb"), Bytes::from("ccc")]);
    assert!(client.get_multi::<&str>(&[]).await.unwrap().is_empty());
    // noreply requests put nothing in the FIFO: the next reply is version's.
    client.store_noreply(StoreCmd::Set, b"k", b"v", 0, 0).await.unwrap();
    client.send_noreply(&b"set k 0 0 1 noreply\r\nx\r\n"[..]).await.unwrap();
    assert_eq!(client.version().await.unwrap(), "fake-1.0");
    // Two requests in one raw write, two terminal units back.
    let replies = client.request(&b"get x\r\nversion\r\n"[..], 2).await.unwrap();
    assert_eq!(replies.len(), 3);
    assert!(matches!(&replies[0], OwnedReply::Value { key, .. } if key == "x"));
    assert_eq!(replies[1], OwnedReply::End);
    assert_eq!(replies[2], OwnedReply::Version("fake-1.0".into()));
    assert_eq!(client.mn().await.unwrap().code, memshard_client::MetaCode::Mn);
}

#[tokio::test]
async fn server_errors_and_bad_arguments_leave_the_connection_usable() {
    let server = FakeServer::start(|req| match common::get_key(req).as_deref() {
        Some(b"err") => Action::Reply(b"SERVER_ERROR out of memory\r\n".to_vec()),
        Some(b"odd") => Action::Reply(b"STORED\r\n".to_vec()),
        _ => echo(req),
    })
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    match client.get("err").await {
        Err(ClientError::Server(m)) => assert_eq!(m, "SERVER_ERROR out of memory"),
        other => panic!("expected server error, got {other:?}"),
    }
    assert!(matches!(client.get("odd").await, Err(ClientError::Unexpected { command: "get", .. })));
    assert!(matches!(client.get("has space").await, Err(ClientError::InvalidArgument(_))));
    assert!(matches!(client.get("x".repeat(251)).await, Err(ClientError::InvalidArgument(_))));
    assert!(matches!(client.mg("k", "v q").await, Err(ClientError::InvalidArgument(_))));
    assert!(matches!(client.mg("k", "v v").await, Err(ClientError::InvalidArgument(_))));
    assert!(matches!(client.mg("k", "v\r\nflush_all").await, Err(ClientError::InvalidArgument(_))));
    assert!(!client.is_broken());
    assert_eq!(client.get("ok").await.unwrap().unwrap().value, "ok");
}

#[tokio::test]
async fn in_flight_is_bounded_by_max_in_flight() {
    let peak = Arc::new(AtomicUsize::new(0));
    let server = FakeServer::start(|req| Action::Delay(Duration::from_millis(1), common::echo_bytes(req))).await;
    let cfg = ClientConfig { max_in_flight: 4, timeout: Duration::from_secs(10), ..ClientConfig::default() };
    let client = Client::connect_with(server.addr, cfg).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let (c, peak) = (client.clone(), Arc::clone(&peak));
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let fut = c.get(format!("{t}-{i}"));
                peak.fetch_max(c.in_flight(), Ordering::SeqCst);
                fut.await.unwrap().unwrap();
                peak.fetch_max(c.in_flight(), Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=4).contains(&peak), "peak in flight {peak}");
}

#[tokio::test]
async fn dropping_the_last_handle_flushes_noreply_writes_then_hangs_up() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let server = FakeServer::start(move |req| {
        log.lock().unwrap().push(req.command());
        echo(req)
    })
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    for i in 0..100 {
        client.store_noreply(StoreCmd::Set, format!("k{i}").as_bytes(), b"v", 0, 0).await.unwrap();
    }
    client.delete_noreply("k0").await.unwrap();
    drop(client);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 101 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 101);
    assert_eq!(seen.last(), Some(&"delete"));
}
