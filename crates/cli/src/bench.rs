//! `memshard bench`: closed- or open-loop load against any memcached-protocol
//! endpoint, with HDR percentiles, a live progress line and JSON output.

use crate::{Failure, logging, output};
use anyhow::anyhow;
use clap::Args;
use memshard_bench::{Arrivals, BenchConfig, KeyDist, Mix, Phase, Progress, ValueSize};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Load generator: N connections × pipeline depth; closed loop (as fast as
/// the server answers) or open loop (`--rate`, latency from each request's
/// scheduled send time); get/set or mg/ms mixes; uniform or Zipfian keys;
/// HDR latency percentiles to p99.99.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Target host:port.
    #[arg(short = 's', long = "server", default_value = "127.0.0.1:11211")]
    server: String,
    /// TCP connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Most requests in flight per connection (closed loop: the batch size).
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// Measured seconds [default: 10, or no limit but the request count with -n].
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Stop after this many measured requests (all connections together).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Warm-up seconds before measuring (load on, nothing recorded).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Open loop: total requests per second, spread over the connections.
    #[arg(short = 'r', long)]
    rate: Option<f64>,
    /// Open loop: spacing of scheduled sends, uniform or poisson.
    #[arg(long, default_value = "uniform", requires = "rate")]
    arrivals: Arrivals,
    /// Operation mix, OP=WEIGHT,…: get, set (text), mg, ms (meta), e.g. mg=90,ms=10.
    #[arg(short = 'm', long, conflicts_with = "get_ratio")]
    mix: Option<Mix>,
    /// Fraction of text gets, the rest text sets (shorthand for --mix get=R,set=1-R).
    #[arg(long)]
    get_ratio: Option<f64>,
    /// Keys per text get (a multi-get counts as one request).
    #[arg(long = "multiget", default_value_t = 1)]
    multiget: usize,
    /// Number of distinct keys.
    #[arg(short = 'k', long = "keys", visible_alias = "key-space", default_value_t = 100_000)]
    keys: usize,
    /// Key popularity: uniform, zipf (exponent 0.99) or zipf:S; under zipf key 0 is the hottest.
    #[arg(long, default_value = "uniform")]
    key_dist: KeyDist,
    /// Prefix of every key (keys are PREFIX0 … PREFIX<keys-1>).
    #[arg(long, default_value = "key:")]
    key_prefix: String,
    /// Value bytes: N, MIN-MAX (uniform) or SIZE=WEIGHT,… (e.g. 100=90,4000=10).
    #[arg(short = 'v', long, default_value = "100")]
    value_size: ValueSize,
    /// Skip setting every key before measuring (then gets may miss).
    #[arg(long)]
    no_prefill: bool,
    /// Generator runtime threads (1 keeps it on one core).
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// Speak TLS, trusting the CA in this PEM file.
    #[arg(long = "tls-ca", value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM), for targets that require one.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_ca")]
    tls_cert: Option<std::path::PathBuf>,
    /// Its key (PEM); default: in the --tls-cert file.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The name the target's certificate is checked against (default: the host of --server).
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls_ca")]
    tls_name: Option<String>,
    /// Seconds allowed for connects and prefill batches, and for answers after the end.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Seed of the request stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as JSON (every figure, and the configuration).
    #[arg(long)]
    json: bool,
    /// No live progress line (there is none either when stderr is not a terminal).
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// Longest run accepted, and the bound of a run limited by `-n` alone.
const DAY_SECS: f64 = 86_400.0;

#[allow(clippy::print_stderr)]
pub(crate) fn main(args: BenchArgs) -> Result<(), Failure> {
    logging::init(0);
    let cfg = config(args.server.clone(), &args)?;
    cfg.validate().map_err(|e| Failure::Usage(e.into()))?;
    let live = !args.quiet && std::io::stderr().is_terminal();
    let progress: Option<memshard_bench::ProgressFn> = live.then(|| Arc::new(show) as memshard_bench::ProgressFn);
    let report = memshard_bench::run_blocking(cfg, progress).map_err(|e| Failure::Runtime(e.into()))?;
    if live {
        eprintln!();
    }
    output::emit(&if args.json { format!("{}\n", report.to_json()) } else { format!("{report}\n") })?;
    if report.errors > 0 {
        let timeouts = report.error_kinds.timeout;
        let hint = if timeouts > 0 && report.config.rate.is_some() { " (target rate not sustained?)" } else { "" };
        return Err(Failure::Runtime(anyhow!("{} requests or connections failed{hint}", report.errors)));
    }
    Ok(())
}

fn config(addr: String, a: &BenchArgs) -> Result<BenchConfig, Failure> {
    let secs = |s: f64, what: &str| {
        if (0.0..=DAY_SECS).contains(&s) {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(Failure::Usage(anyhow!("--{what} must be between 0 and {DAY_SECS} seconds")))
        }
    };
    let duration = match (a.duration, a.requests) {
        (Some(d), _) => d,
        (None, Some(_)) => DAY_SECS,
        (None, None) => 10.0,
    };
    let mix = match (&a.mix, a.get_ratio) {
        (Some(m), _) => m.clone(),
        (None, Some(r)) => Mix::get_set(r).map_err(|e| Failure::Usage(e.into()))?,
        (None, None) => Mix::default(),
    };
    let defaults = BenchConfig::default();
    Ok(BenchConfig {
        addr,
        connections: a.connections,
        pipeline: a.pipeline,
        duration: secs(duration, "duration")?,
        requests: a.requests,
        warmup: secs(a.warmup, "warmup")?,
        rate: a.rate,
        arrivals: a.arrivals,
        mix,
        multiget: a.multiget,
        key_space: a.keys,
        key_dist: a.key_dist,
        key_prefix: a.key_prefix.clone(),
        value_size: a.value_size.clone(),
        prefill: !a.no_prefill,
        seed: a.seed.unwrap_or(defaults.seed),
        threads: a.threads,
        timeout: secs(a.timeout, "timeout")?,
        tls: tls(a)?,
    })
}

/// `--tls-ca` (with `--tls-cert`, `--tls-key`, `--tls-name`): TLS to the target.
fn tls(a: &BenchArgs) -> Result<Option<memshard_bench::BenchTls>, Failure> {
    let Some(ca) = &a.tls_ca else { return Ok(None) };
    let files = memshard_tls::ClientTlsFiles {
        ca: ca.clone(),
        cert: a.tls_cert.clone(),
        key: a.tls_key.clone(),
        min_version: memshard_tls::MinVersion::Tls12,
    };
    let config = memshard_tls::ClientTls::new(files, "bench").map_err(|e| Failure::Usage(anyhow!("--tls-ca: {e}")))?;
    let name = a.tls_name.clone().unwrap_or_else(|| memshard_tls::host_of(&a.server).to_string());
    Ok(Some(memshard_bench::BenchTls { config: std::sync::Arc::new(config), name }))
}

/// Rewrites one progress line in place on stderr.
#[allow(clippy::print_stderr)]
fn show(p: &Progress) {
    let phase = match p.phase {
        Phase::Prefill => {
            eprint!("\rprefill: {} keys set\x1b[K", p.ops);
            return;
        }
        Phase::Warmup => "warmup ",
        Phase::Measure => "measure",
    };
    let p99 = p.p99_us.map_or_else(|| "-".to_owned(), |us| format!("{us:.0} us"));
    eprint!(
        "\r{phase} {:>6.1} s  {:>10.0} ops/s  p99 so far {p99:>10}  errors {}\x1b[K",
        p.elapsed_secs, p.ops_per_sec, p.errors
    );
}
