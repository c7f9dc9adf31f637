//! memshard: one binary for every role of the memshard cache tier.
//!
//! This crate only parses flags, sets up logging, builds the runtime, binds
//! listeners and calls each role's library `run` function. Exit codes: 0 clean
//! shutdown, 1 runtime failure, 2 bad flags or bad config.

mod admin_addr;
mod app;
mod bench;
mod daemon;
mod logging;
mod output;
mod proxy;
mod ring;
mod server;
mod server_tls;
mod signals;
mod size;
mod up;
mod up_tls;

use clap::{Parser, Subcommand};

use std::process::ExitCode;

/// memshard: a sharded memcache tier (memcached-compatible shards, a
/// twemproxy-compatible proxy, a demo web app) in one binary.
#[derive(Debug, Parser)]
#[command(name = "memshard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a memcached-compatible cache shard (drop-in for the memcached image).
    Server(server::ServerArgs),
    /// Run the twemproxy-compatible sharding proxy (drop-in for nutcracker).
    Proxy(proxy::ProxyArgs),
    /// Show which server each key maps to under a pool file, or how many keys a
    /// topology change would move.
    Ring(ring::RingArgs),
    /// Run the web app: GET /memcache?lookup=KEY in front of the proxy.
    App(app::AppArgs),
    /// Run the whole system on this machine: shards, proxy and app in one process.
    Up(up::UpArgs),
    /// Generate load against a memcached-protocol endpoint and report ops/s and latency.
    Bench(bench::BenchArgs),
}

/// A failure with its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad flags or bad configuration: exit 2.
    Usage(anyhow::Error),
    /// Failure while running: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Proxy(args) => proxy::main(args),
        Command::Ring(args) => ring::main(args),
        Command::App(args) => app::main(args),
        Command::Up(args) => up::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("memshard: error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("memshard: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
