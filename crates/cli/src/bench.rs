//! `memshard bench`: closed-loop load against any memcached-protocol endpoint.

use crate::{Failure, logging};
use anyhow::anyhow;
use clap::Args;
use memshard_bench::{BenchConfig, Progress};
use std::sync::Arc;
use std::time::Duration;

/// Load generator: N connections × pipeline depth, get/set mix, fixed duration,
/// HDR latency percentiles.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Target host:port.
    #[arg(short = 's', long = "server", default_value = "127.0.0.1:11211")]
    server: String,
    /// TCP connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Requests outstanding per connection.
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// Measured seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Fraction of gets (the rest are sets).
    #[arg(long, default_value_t = 0.9)]
    get_ratio: f64,
    /// Number of distinct keys.
    #[arg(short = 'k', long, default_value_t = 100_000)]
    key_space: usize,
    /// Value size in bytes.
    #[arg(short = 'v', long, default_value_t = 100)]
    value_size: usize,
    /// Skip setting every key before measuring.
    #[arg(long)]
    no_prefill: bool,
    /// Generator threads (1 keeps it on one core).
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No live progress line.
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn main(args: BenchArgs) -> Result<(), Failure> {
    logging::init(0);
    let secs = |s: f64, what: &str| {
        if (0.0..=86_400.0).contains(&s) {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(Failure::Usage(anyhow!("--{what} must be between 0 and 86400 seconds")))
        }
    };
    let cfg = BenchConfig {
        addr: args.server,
        connections: args.connections,
        pipeline: args.pipeline,
        duration: secs(args.duration, "duration")?,
        warmup: secs(args.warmup, "warmup")?,
        get_ratio: args.get_ratio,
        key_space: args.key_space,
        value_size: args.value_size,
        prefill: !args.no_prefill,
        threads: args.threads,
        ..BenchConfig::default()
    };
    cfg.validate().map_err(|e| Failure::Usage(e.into()))?;
    let progress: Option<memshard_bench::ProgressFn> = if args.quiet {
        None
    } else {
        Some(Arc::new(|p: &Progress| {
            eprint!("\r{:?} {:>5.1}s  {:>10.0} ops/s  errors {}   ", p.phase, p.elapsed_secs, p.ops_per_sec, p.errors);
        }))
    };
    let report = memshard_bench::run_blocking(cfg, progress).map_err(|e| Failure::Runtime(e.into()))?;
    if !args.quiet {
        eprintln!();
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if report.errors > 0 {
        return Err(Failure::Runtime(anyhow!("{} requests failed", report.errors)));
    }
    Ok(())
}
