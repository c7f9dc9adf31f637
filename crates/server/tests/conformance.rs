//! The byte-level conformance table (recorded from memcached 1.6.18) replayed
//! against memshard server: every reply must match memcached's byte for byte,
//! except the rows that document a deliberate difference.

use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run};
use memshard_testkit::runner::run_table;
use memshard_testkit::{Target, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_table_matches() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    // The table was recorded with `memcached -t 1 -m 64`: same limits here.
    let cfg = ServerConfig { memory_limit: 64 << 20, threads: 1, ..ServerConfig::default() };
    let server = tokio::spawn(run(listener, cfg, shutdown));
    let cases = table().expect("table parses");
    let report = run_table(addr, &cases, Target::Memshard).await;
    trigger.trigger();
    let _ = server.await;
    assert!(report.is_clean(), "{report}");
    eprintln!("{} cases", cases.len());
}
