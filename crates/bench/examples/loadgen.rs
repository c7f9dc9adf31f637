//! Driving the library from Rust rather than through `memshard bench`:
//!
//! `cargo run --release -p memshard-bench --example loadgen -- ADDR [PIPELINE] [SECS] [CONNS] [THREADS]`
//!
//! Prints progress lines and the report to stderr and the JSON report to stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

use memshard_bench::{BenchConfig, Progress, run_blocking};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let cfg = BenchConfig {
        addr: args.first().cloned().unwrap_or_else(|| "127.0.0.1:11211".to_owned()),
        pipeline: num(1, 1),
        duration: Duration::from_secs(num(2, 5) as u64),
        connections: num(3, 50),
        threads: num(4, 1),
        ..BenchConfig::default()
    };
    let progress = Arc::new(|p: &Progress| {
        eprintln!("{:>5.1}s {:?}: {:.0} ops/s, {} errors", p.elapsed_secs, p.phase, p.ops_per_sec, p.errors)
    });
    match run_blocking(cfg, Some(progress)) {
        Ok(report) => {
            eprintln!("{report}");
            println!("{}", report.to_json());
        }
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
