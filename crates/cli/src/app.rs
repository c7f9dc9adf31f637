//! `memshard app`: the web app in front of the proxy.

use crate::signals::shutdown_on_signal;
use crate::{Failure, logging};
use anyhow::{Context, anyhow};
use clap::Args;
use memshard_app::AppConfig;
use std::time::Duration;

/// Flags; `MEMSHARD_LISTEN` and `MEMSHARD_CACHE` stand in for the first two
/// when they are not given (as Kubernetes manifests set them).
#[derive(Debug, Args)]
pub(crate) struct AppArgs {
    /// Address to serve HTTP on (port 0 = any free port, logged at start).
    #[arg(long, env = "MEMSHARD_LISTEN", default_value = "0.0.0.0:3000")]
    listen: String,
    /// host:port of the cache: the memshard proxy (or any memcached).
    #[arg(long, env = "MEMSHARD_CACHE", default_value = "127.0.0.1:11211")]
    cache: String,
    /// Pipelined connections to the cache.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Longest a lookup may take before the app answers 503, in ms.
    #[arg(long = "request-timeout", default_value_t = 2000)]
    request_timeout_ms: u64,
    /// Longest a SIGTERM waits for requests in flight, in ms.
    #[arg(long = "drain-timeout", default_value_t = 10_000)]
    drain_timeout_ms: u64,
    /// Expiry of the values the app adds, in seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    ttl: u32,
    /// Verbose logging (-v, -vv).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

impl AppArgs {
    fn config(&self) -> Result<AppConfig, Failure> {
        if self.connections == 0 {
            return Err(Failure::Usage(anyhow!("--connections must be at least 1")));
        }
        if self.request_timeout_ms == 0 {
            return Err(Failure::Usage(anyhow!("--request-timeout must be positive")));
        }
        Ok(AppConfig {
            cache: self.cache.clone(),
            connections: self.connections,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
            ttl: self.ttl,
            ..AppConfig::default()
        })
    }
}

pub(crate) fn main(args: AppArgs) -> Result<(), Failure> {
    logging::init(args.verbose);
    let config = args.config()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async move {
        let listener = memshard_net::bind(&args.listen).await.map_err(|e| Failure::Runtime(e.into()))?;
        memshard_app::run(listener, config, shutdown_on_signal()).await.map_err(|e| Failure::Runtime(e.into()))
    })
}
