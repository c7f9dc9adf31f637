//! Warm restarts (`-e`): what a graceful stop saves and the next start
//! loads — values, flags, expiry, CAS, LRU order — and what a damaged, cut
//! or foreign file does (the intact part loads, nothing else is served).

use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

struct Running {
    addr: SocketAddr,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

async fn start(file: &Path, memory_mb: usize) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let cfg = ServerConfig {
        threads: 2,
        memory_limit: memory_mb << 20,
        memory_file: Some(file.to_path_buf()),
        ..ServerConfig::default()
    };
    let task = tokio::spawn(async move {
        run(listener, cfg, shutdown).await.expect("server runs");
    });
    Running { addr, trigger, task }
}

impl Running {
    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("stops in time").expect("joins");
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memshard-snapshot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

async fn ask(s: &mut TcpStream, req: &[u8], until: &str) -> String {
    s.write_all(req).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while !buf.ends_with(until.as_bytes()) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in time; got {:?}", String::from_utf8_lossy(&buf)))
            .expect("read");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).expect("utf8")
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// `n` items `k{i}` = `v{i}` padded to 100 bytes, set in order.
async fn fill(c: &mut TcpStream, n: usize) {
    let mut req = Vec::new();
    for i in 0..n {
        req.extend_from_slice(format!("set k{i} 0 0 100 noreply\r\n{:0<100}\r\n", format!("v{i}")).as_bytes());
    }
    req.extend_from_slice(b"mn\r\n");
    ask(c, &req, "MN\r\n").await;
}

fn stat(reply: &str, name: &str) -> u64 {
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_survive_restart_after_restart_with_flags_expiry_and_cas() {
    let d = dir("roundtrip");
    let file = d.join("mem");
    let s = start(&file, 64).await;
    let mut c = connect(s.addr).await;
    ask(&mut c, b"set plain 0 0 5\r\nhello\r\n", "STORED\r\n").await;
    ask(&mut c, b"set flagged 4294967295 0 3\r\nabc\r\n", "STORED\r\n").await;
    ask(&mut c, b"set ttl 0 1000 1\r\nx\r\n", "STORED\r\n").await;
    ask(&mut c, b"set short 0 1 1\r\ny\r\n", "STORED\r\n").await;
    ask(&mut c, b"set gone 0 0 1\r\nz\r\ndelete gone\r\n", "DELETED\r\n").await;
    ask(&mut c, b"ms aGk= 2 b\r\nhi\r\n", "HD\r\n").await;
    let gets = ask(&mut c, b"gets plain\r\n", "END\r\n").await;
    let mut cas: u64 = gets.split_whitespace().nth(4).and_then(|t| t.parse().ok()).expect("cas");
    let last_cas = {
        // The CAS handed out last (to a deleted item) must stay used.
        ask(&mut c, b"set tmp 0 0 1\r\nq\r\n", "STORED\r\n").await;
        let g = ask(&mut c, b"gets tmp\r\n", "END\r\n").await;
        ask(&mut c, b"delete tmp\r\n", "DELETED\r\n").await;
        g.split_whitespace().nth(4).and_then(|t| t.parse::<u64>().ok()).expect("cas")
    };
    drop(c);
    s.stop().await;
    assert!(file.exists(), "a graceful stop writes the memory file");
    assert!(!d.join("mem.tmp").exists(), "no temporary file is left");
    // `short` expires while the server is down.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    for round in 0..3 {
        let s = start(&file, 64).await;
        let mut c = connect(s.addr).await;
        assert_eq!(ask(&mut c, b"version\r\n", "\r\n").await, "VERSION 1.6.18\r\n");
        assert!(!file.exists(), "round {round}: the file is removed once loaded");
        let got = ask(&mut c, b"gets plain flagged ttl short gone binkey tmp\r\n", "END\r\n").await;
        assert!(got.contains(&format!("VALUE plain 0 5 {cas}\r\nhello\r\n")), "round {round}: {got}");
        assert!(got.contains("VALUE flagged 4294967295 3 "), "round {round}: {got}");
        assert!(got.contains("VALUE ttl 0 1 "), "round {round}: {got}");
        for missing in ["VALUE short", "VALUE gone", "VALUE tmp"] {
            assert!(!got.contains(missing), "round {round}: {missing} came back: {got}");
        }
        let ttl = ask(&mut c, b"mg ttl t\r\n", "\r\n").await;
        let left: u64 = ttl.trim().strip_prefix("HD t").and_then(|t| t.parse().ok()).expect("ttl");
        assert!((990..=1000).contains(&left), "round {round}: absolute expiry kept, {left} s left");
        let bin = ask(&mut c, b"mg aGk= b k v\r\n", "\r\n").await;
        assert!(bin.starts_with("VA 2 kaGk= b"), "round {round}: a base64 key stays one: {bin}");
        // A gets token from before the restart still works, and every new
        // CAS is above everything handed out before it.
        ask(&mut c, b"set fresh 0 0 1\r\nn\r\n", "STORED\r\n").await;
        let g = ask(&mut c, b"gets fresh\r\n", "END\r\n").await;
        let fresh: u64 = g.split_whitespace().nth(4).and_then(|t| t.parse().ok()).expect("cas");
        assert!(fresh > last_cas, "round {round}: new CAS {fresh} above the last handed out {last_cas}");
        if round == 0 {
            let r = ask(&mut c, format!("cas plain 0 0 5 {cas}\r\nHELLO\r\n").as_bytes(), "\r\n").await;
            assert_eq!(r, "STORED\r\n");
            ask(&mut c, b"set plain 0 0 5\r\nhello\r\n", "STORED\r\n").await;
            let g = ask(&mut c, b"gets plain\r\n", "END\r\n").await;
            cas = g.split_whitespace().nth(4).and_then(|t| t.parse().ok()).expect("cas");
        }
        ask(&mut c, b"delete fresh\r\n", "DELETED\r\n").await;
        drop(c);
        s.stop().await;
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_memory_limit_keeps_the_most_recently_used() {
    let d = dir("smaller");
    let file = d.join("mem");
    let s = start(&file, 8).await;
    let mut c = connect(s.addr).await;
    fill(&mut c, 29_000).await;
    // The last thousand a second later, then touch the oldest 100 another
    // second later, so they become the most recently
    // used (the store's shards are merged by last access, to the second; the
    // first fetch of an item only marks it fetched, the second sets its time).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut last = Vec::new();
    for i in 29_000..30_000 {
        last.extend_from_slice(format!("set k{i} 0 0 100 noreply\r\n{:0<100}\r\n", format!("v{i}")).as_bytes());
    }
    last.extend_from_slice(b"mn\r\n");
    ask(&mut c, &last, "MN\r\n").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut touch = Vec::new();
    for i in 0..100 {
        touch.extend_from_slice(format!("mg k{i}\r\nmg k{i}\r\n").as_bytes());
    }
    touch.extend_from_slice(b"mn\r\n");
    ask(&mut c, &touch, "MN\r\n").await;
    drop(c);
    s.stop().await;

    // 2 MiB holds about a third of them.
    let s = start(&file, 2).await;
    let mut c = connect(s.addr).await;
    let stats = ask(&mut c, b"stats\r\n", "END\r\n").await;
    let kept = stat(&stats, "curr_items");
    assert!((3_000..25_000).contains(&kept), "kept {kept} of 30000");
    let mut hot = Vec::new();
    for i in 0..100 {
        hot.extend_from_slice(format!("mg k{i} v\r\n").as_bytes());
    }
    hot.extend_from_slice(b"mn\r\n");
    let hot = ask(&mut c, &hot, "MN\r\n").await;
    assert_eq!(hot.matches("VA 100").count(), 100, "the recently used survive");
    // The most recently set (the last thousand) survive.
    let mut newest = Vec::new();
    for i in 29_000..30_000 {
        newest.extend_from_slice(format!("mg k{i} v\r\n").as_bytes());
    }
    newest.extend_from_slice(b"mn\r\n");
    let newest = ask(&mut c, &newest, "MN\r\n").await;
    assert_eq!(newest.matches("VA 100").count(), 1000, "the most recently set survive");
    // (Which of the first 29,000 survive is decided within the second they
    // were set in: the shards are merged by last access, to the second. The
    // touched hundred, set first of all, surviving is the LRU order kept.)
    drop(c);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&d);
}

/// Saves `n` items and returns the file's bytes.
async fn saved(d: &Path, n: usize) -> Vec<u8> {
    let file = d.join("mem");
    let s = start(&file, 64).await;
    let mut c = connect(s.addr).await;
    fill(&mut c, n).await;
    drop(c);
    s.stop().await;
    std::fs::read(&file).expect("saved file")
}

/// Starts on `bytes` as the memory file; returns how many of `n` keys
/// answer, after checking every answer is the value stored for its key.
async fn start_on(d: &Path, bytes: &[u8], n: usize) -> usize {
    let file = d.join("mem");
    std::fs::write(&file, bytes).expect("write");
    let s = start(&file, 64).await;
    let mut c = connect(s.addr).await;
    assert_eq!(ask(&mut c, b"version\r\n", "\r\n").await, "VERSION 1.6.18\r\n");
    assert!(!file.exists(), "a refused file is removed too");
    let mut found = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut req = Vec::new();
        for i in chunk {
            req.extend_from_slice(format!("mg k{i} k v\r\n").as_bytes());
        }
        req.extend_from_slice(b"mn\r\n");
        let got = ask(&mut c, &req, "MN\r\n").await;
        let mut lines = got.lines();
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("VA 100 k") {
                let value = lines.next().expect("value line");
                assert_eq!(value, format!("{:0<100}", format!("v{}", rest.trim_start_matches('k'))), "{line}");
                found += 1;
            }
        }
    }
    // The server serves after any file.
    assert_eq!(ask(&mut c, b"set after 0 0 1\r\n1\r\n", "\r\n").await, "STORED\r\n");
    drop(c);
    s.stop().await;
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_cut_and_foreign_files_load_only_what_their_checksums_vouch_for() {
    let d = dir("damaged");
    let n = 20_000;
    let good = saved(&d, n).await;
    // Control: the intact file loads everything.
    assert_eq!(start_on(&d, &good, n).await, n);

    // One flipped byte in the middle: that block is refused, the rest loads.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let got = start_on(&d, &flipped, n).await;
    assert!(got < n && got > n / 2, "one damaged block: kept {got} of {n}");

    // Cut short: what came before the cut loads.
    let cut = &good[..good.len() * 2 / 3];
    let got = start_on(&d, cut, n).await;
    assert!(got > n / 3 && got < n, "cut file: kept {got} of {n}");

    // A damaged header or a file of something else: the server starts empty.
    let mut header = good.clone();
    header[20] ^= 1;
    assert_eq!(start_on(&d, &header, n).await, 0);
    let foreign: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert_eq!(start_on(&d, &foreign, n).await, 0);
    assert_eq!(start_on(&d, b"", n).await, 0);
    // A block head whose length was damaged is caught by its own checksum.
    let mut head = good.clone();
    head[64] ^= 0x10;
    assert_eq!(start_on(&d, &head, n).await, 0);
    let _ = std::fs::remove_dir_all(&d);
}
