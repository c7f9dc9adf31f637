//! `stats`, `stats settings`, `stats items` and `stats slabs` answer with
//! memcached 1.6.18's field names, in its order, so the `memcached_exporter`
//! reads memshard as it reads memcached; and the per-class figures of the
//! same items are memcached's. Compared with a recording from memcached
//! (`crates/testkit/recordings/`), which is itself checked against a live
//! memcached when one is installed.

use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run};
use memshard_testkit::recordings::{MEMCACHED_STATS, stat_pairs, stat_section};
use memshard_testkit::{peer_or_skip, spawn_memcached};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GROUPS: [&str; 4] = ["", "settings", "items", "slabs"];

/// memshard's one addition to `stats`, after `version`.
const MEMSHARD_ONLY: [&str; 1] = ["memshard_version"];

/// Fields whose values depend on nothing but the items stored and the
/// default settings: equal on both servers.
const SAME_VALUES: [&str; 24] = [
    "cmd_get",
    "cmd_set",
    "get_hits",
    "curr_items",
    "total_items",
    "maxbytes",
    "maxconns",
    "item_size_max",
    "growth_factor",
    "chunk_size",
    "slab_chunk_max",
    "items:1:number",
    "items:1:mem_requested",
    "items:4:number",
    "items:4:mem_requested",
    "1:chunk_size",
    "1:chunks_per_page",
    "1:total_pages",
    "1:used_chunks",
    "1:free_chunks",
    "1:get_hits",
    "4:cmd_set",
    "active_slabs",
    "total_malloced",
];

async fn ask(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    while !(buf.ends_with(b"END\r\n") || buf.ends_with(b"STORED\r\n")) {
        let n =
            tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.expect("in time").expect("read");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).expect("utf8")
}

/// The recording's steps, then each group's reply.
async fn replay(addr: SocketAddr) -> Vec<String> {
    ask(addr, b"set a 0 0 1\r\nx\r\n").await;
    let mut bb = b"set bb 5 100 100\r\n".to_vec();
    bb.extend_from_slice(&[b'y'; 100]);
    bb.extend_from_slice(b"\r\n");
    ask(addr, &bb).await;
    ask(addr, b"get a\r\n").await;
    let mut out = Vec::new();
    for g in GROUPS {
        let req = if g.is_empty() { "stats\r\n".to_string() } else { format!("stats {g}\r\n") };
        out.push(ask(addr, req.as_bytes()).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_groups_carry_memcacheds_names_and_per_class_figures() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let server = tokio::spawn(run(listener, ServerConfig { threads: 1, ..ServerConfig::default() }, shutdown));
    let replies = replay(addr).await;
    trigger.trigger();
    let _ = server.await;
    for (g, reply) in GROUPS.iter().zip(&replies) {
        let ours: Vec<&str> = stat_pairs(reply).iter().map(|p| p.0).filter(|n| !MEMSHARD_ONLY.contains(n)).collect();
        let theirs: Vec<&str> = stat_section(MEMCACHED_STATS, g).iter().map(|p| p.0).collect();
        assert!(!theirs.is_empty(), "the recording has `stats {g}`");
        assert_eq!(ours, theirs, "field names of `stats {g}`");
        let recorded = stat_section(MEMCACHED_STATS, g);
        for (name, value) in stat_pairs(reply) {
            if SAME_VALUES.contains(&name) {
                let want = recorded.iter().find(|p| p.0 == name).map(|p| p.1);
                assert_eq!(Some(value), want, "`stats {g}` {name}");
            }
        }
    }
    let general = stat_pairs(&replies[0]);
    assert!(general.contains(&("version", "1.6.18")));
    assert!(general.contains(&("memshard_version", env!("CARGO_PKG_VERSION"))));
}

/// The recording is what memcached 1.6.18 prints (names; the same values
/// for the fields that depend only on the items).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_is_memcacheds() {
    if peer_or_skip("memcached").is_none() {
        return;
    }
    let mc = spawn_memcached(&["-U", "0"]).expect("memcached starts");
    let replies = replay(mc.addr()).await;
    for (g, reply) in GROUPS.iter().zip(&replies) {
        let live: Vec<&str> = stat_pairs(reply).iter().map(|p| p.0).collect();
        let recorded: Vec<&str> = stat_section(MEMCACHED_STATS, g).iter().map(|p| p.0).collect();
        assert_eq!(live, recorded, "memcached's `stats {g}` names");
        for (name, value) in stat_pairs(reply) {
            if SAME_VALUES.contains(&name) {
                assert_eq!(stat_section(MEMCACHED_STATS, g).iter().find(|p| p.0 == name).map(|p| p.1), Some(value));
            }
        }
    }
}
