//! Against a real memcached, when installed (skipped loudly otherwise).

mod common;

use bytes::Bytes;
use memshard_client::{Client, MetaCode, OwnedReply, Pool, PoolConfig, StoreCmd, StoreStatus};

#[tokio::test]
async fn classic_commands_against_memcached() {
    let Some(mc) = common::memcached_or_skip("classic_commands_against_memcached") else { return };
    let c = Client::connect(mc.addr()).await.unwrap();
    assert!(c.version().await.unwrap().starts_with("1."));
    c.flush_all().await.unwrap();

    assert_eq!(c.get("a").await.unwrap(), None);
    assert_eq!(c.set("a", "hello", 42, 0).await.unwrap(), StoreStatus::Stored);
    let item = c.get("a").await.unwrap().unwrap();
    assert_eq!((item.value, item.flags, item.cas), (Bytes::from("hello"), 42, None));
    assert_eq!(c.add("a", "x", 0, 0).await.unwrap(), StoreStatus::NotStored);
    assert_eq!(c.replace("nope", "x", 0, 0).await.unwrap(), StoreStatus::NotStored);
    assert_eq!(c.append("a", "!", 0, 0).await.unwrap(), StoreStatus::Stored);
    assert_eq!(c.prepend("a", ">", 0, 0).await.unwrap(), StoreStatus::Stored);
    let item = c.gets("a").await.unwrap().unwrap();
    assert_eq!(item.value, ">hello!");
    let cas = item.cas.unwrap();
    assert_eq!(c.cas("a", "v2", 0, 0, cas + 1).await.unwrap(), StoreStatus::Exists);
    assert_eq!(c.cas("a", "v2", 0, 0, cas).await.unwrap(), StoreStatus::Stored);
    assert_eq!(c.cas("missing", "v", 0, 0, 1).await.unwrap(), StoreStatus::NotFound);

    assert_eq!(c.set("n", "10", 0, 0).await.unwrap(), StoreStatus::Stored);
    assert_eq!(c.incr("n", 5).await.unwrap(), Some(15));
    assert_eq!(c.decr("n", 20).await.unwrap(), Some(0));
    assert_eq!(c.incr("missing", 1).await.unwrap(), None);
    assert!(
        matches!(c.incr("a", 1).await, Err(memshard_client::ClientError::Server(m)) if m.starts_with("CLIENT_ERROR"))
    );
    assert!(c.touch("n", 100).await.unwrap());
    assert!(!c.touch("missing", 100).await.unwrap());

    let got = c.get_multi(&["a", "missing", "n"]).await.unwrap();
    let keys: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![Bytes::from("a"), Bytes::from("n")]);
    assert!(c.gets_multi(&["a"]).await.unwrap()[0].1.cas.is_some());

    assert!(c.delete("a").await.unwrap());
    assert!(!c.delete("a").await.unwrap());

    c.store_noreply(StoreCmd::Set, b"q", b"quiet", 0, 0).await.unwrap();
    c.delete_noreply("n").await.unwrap();
    assert_eq!(c.get("q").await.unwrap().unwrap().value, "quiet");
    assert_eq!(c.get("n").await.unwrap(), None);

    let stats = c.stats().await.unwrap();
    assert!(stats.iter().any(|(k, _)| k == "curr_connections"));
    let settings = c.stats_group("settings").await.unwrap();
    assert!(settings.iter().any(|(k, v)| k == "tcpport" && *v == mc.addr().port().to_string()));

    let big = vec![b'z'; 500_000];
    assert_eq!(c.set("big", &big, 0, 0).await.unwrap(), StoreStatus::Stored);
    assert_eq!(c.get("big").await.unwrap().unwrap().value.len(), big.len());

    let raw = c.request(&b"set r 0 0 1\r\nx\r\nget r\r\n"[..], 2).await.unwrap();
    assert_eq!(raw[0], OwnedReply::Stored);
    assert!(matches!(&raw[1], OwnedReply::Value { data, .. } if data == "x"));
    assert_eq!(raw[2], OwnedReply::End);
}

#[tokio::test]
async fn meta_commands_against_memcached() {
    let Some(mc) = common::memcached_or_skip("meta_commands_against_memcached") else { return };
    let c = Client::connect(mc.addr()).await.unwrap();
    assert_eq!(c.mg("m", "v").await.unwrap().code, MetaCode::En);
    let r = c.ms("m", "meta", "T0 F9").await.unwrap();
    assert_eq!(r.code, MetaCode::Hd);
    let r = c.mg("m", "v f c k").await.unwrap();
    assert_eq!(r.code, MetaCode::Va);
    assert_eq!(r.value.as_deref(), Some(&b"meta"[..]));
    assert_eq!(r.flag(b'f'), Some("9"));
    assert_eq!(r.flag(b'k'), Some("m"));
    let cas: u64 = r.flag(b'c').unwrap().parse().unwrap();
    assert_eq!(c.ms("m", "x", &format!("C{}", cas + 1)).await.unwrap().code, MetaCode::Ex);
    assert_eq!(c.ms("m", "x", &format!("C{cas}")).await.unwrap().code, MetaCode::Hd);

    assert_eq!(c.ma("cnt", "").await.unwrap().code, MetaCode::Nf);
    let r = c.ma("cnt", "N0 J10 v").await.unwrap();
    assert_eq!((r.code, r.value.as_deref()), (MetaCode::Va, Some(&b"10"[..])));
    let r = c.ma("cnt", "MD D3 v").await.unwrap();
    assert_eq!(r.value.as_deref(), Some(&b"7"[..]));

    assert_eq!(c.md("m", "").await.unwrap().code, MetaCode::Hd);
    assert_eq!(c.md("m", "").await.unwrap().code, MetaCode::Nf);
    assert_eq!(c.mn().await.unwrap().code, MetaCode::Mn);
    // base64 keys round-trip through the flag parser and the encoder.
    assert_eq!(c.ms("Zm9v", "b64", "b").await.unwrap().code, MetaCode::Hd);
    assert_eq!(c.get("foo").await.unwrap().unwrap().value, "b64");

    // Quiet batch: hits answer, misses and successes stay silent.
    c.set("h1", "one", 0, 0).await.unwrap();
    let replies = c.quiet_batch(b"mg h1 v q k\r\nmg nope v q\r\nms s 1 q\r\nx\r\nmd nope q\r\n").await.unwrap();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(matches!(&replies[0], OwnedReply::Meta { code: MetaCode::Va, data: Some(d), .. } if d == "one"));
    assert!(matches!(&replies[1], OwnedReply::Meta { code: MetaCode::Nf, .. }));
    assert_eq!(c.get("s").await.unwrap().unwrap().value, "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_pipelines_against_memcached() {
    let Some(mc) = common::memcached_or_skip("pool_pipelines_against_memcached") else { return };
    let pool = Pool::new(mc.addr().to_string(), PoolConfig { size: 3, ..PoolConfig::default() });
    let mut tasks = Vec::new();
    for t in 0..50 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let c = pool.client().await.unwrap();
                let (k, v) = (format!("p{t}:{i}"), format!("value-{t}-{i}"));
                assert_eq!(c.set(&k, &v, t, 0).await.unwrap(), StoreStatus::Stored);
                let item = c.get(&k).await.unwrap().unwrap();
                assert_eq!((item.value, item.flags), (Bytes::from(v), t));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.healthy(), 3);
}
