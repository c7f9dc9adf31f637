//! Hostile input against `memshard server` and `memshard proxy` as separate
//! processes: every case of `hostile.mct` (garbage, binary-protocol bytes,
//! huge and negative lengths, 1 MB lines, over-long keys, control characters,
//! truncated data blocks, garbage interleaved with pipelined commands) gets
//! its recorded reply or close; a client connected the whole time keeps being
//! served; and the process's RSS stays bounded. The figures are printed for
//! docs/RELIABILITY.md.

use memshard_testkit::{RoleProcess, Target, run_case, spawn_role, table};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RSS may grow by at most this much over the whole hostile table: the 1 MB
/// and 2 MB inputs pass through buffers that are freed again, so what stays
/// is allocator slack, not input.
const RSS_GROWTH_LIMIT: u64 = 64 << 20;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_memshard"))
}

fn hostile_cases() -> Vec<memshard_testkit::Case> {
    let cases: Vec<_> = table().expect("table parses").into_iter().filter(|c| c.name.starts_with("hostile.")).collect();
    assert!(cases.len() >= 60, "the hostile table has {} cases", cases.len());
    cases
}

/// One set/get round trip on a connection that stays open through the run.
async fn canary(conn: &mut TcpStream, round: usize) {
    let value = format!("v{round}");
    let req = format!("set canary 0 0 {}\r\n{value}\r\nget canary\r\n", value.len());
    conn.write_all(req.as_bytes()).await.expect("canary write");
    let want = format!("STORED\r\nVALUE canary 0 {}\r\n{value}\r\nEND\r\n", value.len());
    let mut got = vec![0; want.len()];
    tokio::time::timeout(std::time::Duration::from_secs(10), conn.read_exact(&mut got))
        .await
        .expect("canary answered in time")
        .expect("canary read");
    assert_eq!(String::from_utf8_lossy(&got), want, "canary round {round}");
}

/// Runs every hostile case against `addr`; `procs` are the processes whose
/// RSS is bounded (and printed).
#[allow(clippy::print_stderr)]
async fn run_hostile(addr: SocketAddr, target: Target, procs: &[(&str, &RoleProcess)]) {
    let cases = hostile_cases();
    let mut conn = TcpStream::connect(addr).await.expect("canary connect");
    canary(&mut conn, 0).await;
    let before: Vec<u64> = procs.iter().map(|(_, p)| p.rss_bytes().expect("rss")).collect();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        match run_case(addr, case, target).await {
            Ok(memshard_testkit::Outcome::Pass) => {}
            Ok(memshard_testkit::Outcome::Mismatch(m)) => failures.push(m.to_string()),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
        if i % 10 == 9 {
            canary(&mut conn, i).await;
        }
    }
    canary(&mut conn, cases.len()).await;
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    for ((name, p), before) in procs.iter().zip(before) {
        let after = p.rss_bytes().expect("rss");
        eprintln!(
            "hostile input: {name}: {} cases, RSS {:.1} MiB before, {:.1} MiB after",
            cases.len(),
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        );
        assert!(after < before + RSS_GROWTH_LIMIT, "{name}: RSS grew from {before} to {after} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_every_hostile_input_and_keeps_serving() {
    // The table was recorded from `memcached -t 1 -m 64`: same limits.
    let server = spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "2", "-m", "64"], 1)
        .expect("start memshard server");
    run_hostile(server.addr(), Target::Memshard, &[("server", &server)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_answers_every_hostile_input_and_keeps_serving() {
    let server = spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "1", "-m", "64"], 1)
        .expect("start memshard server");
    let dir = std::env::temp_dir().join(format!("memshard-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("pool.yml");
    let yaml = format!(
        "hostile:\n  listen: 127.0.0.1:0\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  servers:\n   - {}:1\n",
        server.addr()
    );
    std::fs::write(&conf, yaml).expect("write config");
    let conf = conf.to_str().expect("utf-8 path").to_owned();
    let proxy = spawn_role(bin(), &["proxy", "-c", &conf, "-a", "127.0.0.1", "-s", "0", "--workers", "2"], 2)
        .expect("start memshard proxy");
    run_hostile(proxy.addr(), Target::Proxy, &[("proxy", &proxy), ("server behind the proxy", &server)]).await;
    let _ = std::fs::remove_dir_all(&dir);
}
