//! Many clients at once, over many worker threads: every client reads back
//! exactly what it wrote, counters add up, and shutdown drains cleanly.

use memshard_client::{Client, StoreStatus};
use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_clients_see_their_own_writes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let server = tokio::spawn(run(listener, ServerConfig { threads: 4, ..ServerConfig::default() }, shutdown));

    let mut tasks = Vec::new();
    for c in 0..20u32 {
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(addr).await.expect("connect");
            for i in 0..200u32 {
                let key = format!("c{c}:k{}", i % 17);
                let value = format!("value-{c}-{i}");
                assert_eq!(client.set(key.as_bytes(), value.as_bytes(), i, 0).await.expect("set"), StoreStatus::Stored);
                let item = client.get(key.as_bytes()).await.expect("get").expect("hit");
                assert_eq!(&item.value[..], value.as_bytes());
                assert_eq!(item.flags, i);
            }
        }));
    }
    let admin = Client::connect(addr).await.expect("connect");
    for t in tasks {
        t.await.expect("client task");
    }
    let _ = admin.set(b"counter0", b"0", 0, 0).await;
    // A shared counter under contention: 500 increments from 10 tasks land exactly.
    let mut incs = Vec::new();
    for _ in 0..10 {
        incs.push(tokio::spawn(async move {
            let client = Client::connect(addr).await.expect("connect");
            for _ in 0..50 {
                client.incr(b"counter0", 1).await.expect("incr").expect("present");
            }
        }));
    }
    for t in incs {
        t.await.expect("incr task");
    }
    let total = admin.get(b"counter0").await.expect("get").expect("hit");
    assert_eq!(std::str::from_utf8(&total.value).expect("utf8").trim(), "500");
    let stats = admin.stats().await.expect("stats");
    let stat = |name: &str| stats.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).expect(name);
    assert_eq!(stat("incr_hits"), "500");
    assert_eq!(stat("threads"), "4");
    drop(admin);

    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("drained in time")
        .expect("join")
        .expect("run ok");
}
