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
    /// Speak TLS to the cache, trusting the CA in this PEM file (the
    /// proxy's `tls_cert_file` must chain to it). The files are read again
    /// when they change.
    #[arg(long = "cache-tls-ca", env = "MEMSHARD_CACHE_TLS_CA", value_name = "FILE")]
    cache_tls_ca: Option<std::path::PathBuf>,
    /// The app's own certificate (PEM), for a proxy that requires one
    /// (`tls_client_ca_file`).
    #[arg(long = "cache-tls-cert", env = "MEMSHARD_CACHE_TLS_CERT", value_name = "FILE", requires = "cache_tls_ca")]
    cache_tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM); default: in the --cache-tls-cert file.
    #[arg(long = "cache-tls-key", env = "MEMSHARD_CACHE_TLS_KEY", value_name = "FILE", requires = "cache_tls_cert")]
    cache_tls_key: Option<std::path::PathBuf>,
    /// The name the cache's certificate is checked against (default: the
    /// host of --cache).
    #[arg(long = "cache-tls-name", env = "MEMSHARD_CACHE_TLS_NAME", value_name = "NAME", requires = "cache_tls_ca")]
    cache_tls_name: Option<String>,
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
        let cache_tls = match &self.cache_tls_ca {
            None => None,
            Some(ca) => {
                let files = memshard_tls::ClientTlsFiles {
                    ca: ca.clone(),
                    cert: self.cache_tls_cert.clone(),
                    key: self.cache_tls_key.clone(),
                    min_version: memshard_tls::MinVersion::Tls12,
                };
                let tls = memshard_tls::ClientTls::new(files, "app")
                    .map_err(|e| Failure::Usage(anyhow!("cannot load the cache's TLS files: {e}")))?;
                let name = match &self.cache_tls_name {
                    Some(n) => n.clone(),
                    None => memshard_tls::host_of(&self.cache).to_string(),
                };
                Some((std::sync::Arc::new(tls), name))
            }
        };
        Ok(AppConfig {
            cache_tls,
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
        if let Some((tls, _)) = &config.cache_tls {
            // Rotated certificates are picked up by new connections.
            let items: Vec<std::sync::Arc<dyn memshard_tls::watch::Reload>> = vec![tls.clone()];
            tokio::spawn(memshard_tls::watch::run(items, memshard_tls::watch::POLL_INTERVAL, std::future::pending()));
        }
        memshard_app::run(listener, config, shutdown_on_signal()).await.map_err(|e| Failure::Runtime(e.into()))
    })
}
