//! `memshard server`: memcached's flags, memcached's behaviour.

use crate::{Failure, logging, size::parse_size};
use anyhow::{Context, anyhow};
use clap::Args;
use memshard_net::{ShutdownTrigger, os_signal};
use memshard_server::ServerConfig;
use std::path::PathBuf;

/// Flags follow memcached's where they exist.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// TCP port to listen on (0 = any free port, printed at start).
    #[arg(short = 'p', long = "port", default_value_t = 11211)]
    port: u16,
    /// Interface to listen on.
    #[arg(short = 'l', long = "listen", default_value = "0.0.0.0")]
    listen: String,
    /// Unix socket path to listen on instead of TCP (-p and -l are then
    /// unused, as memcached's network support is disabled by -s).
    #[arg(short = 's', long = "unix-socket", value_name = "PATH")]
    unix_socket: Option<PathBuf>,
    /// Access mask of the unix socket file, in octal.
    #[arg(short = 'a', long = "unix-mask", value_name = "MASK", default_value = "0700", value_parser = parse_mask)]
    unix_mask: u32,
    /// Item memory in megabytes.
    #[arg(short = 'm', long = "memory-limit", default_value_t = 64)]
    memory_limit: usize,
    /// Max simultaneous connections.
    #[arg(short = 'c', long = "conn-limit", default_value_t = 1024)]
    conn_limit: usize,
    /// Number of worker threads (0 = one per core).
    #[arg(short = 't', long = "threads", default_value_t = 4)]
    threads: usize,
    /// Max item size (e.g. 1m, 512k); between 1k and 1g.
    #[arg(short = 'I', long = "max-item-size", default_value = "1m", value_parser = parse_size)]
    max_item_size: usize,
    /// UDP port: only 0 (disabled) is supported, as memcached's default.
    #[arg(short = 'U', long = "udp-port", default_value_t = 0)]
    udp_port: u16,
    /// Accepted for compatibility with memcached command lines; ignored.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Enable the `shutdown` command (memcached's --enable-shutdown).
    #[arg(short = 'A', long = "enable-shutdown")]
    enable_shutdown: bool,
    /// Delimiter between key prefix and the rest for `stats detail`; turns
    /// the per-prefix counting on at start.
    #[arg(short = 'D', value_name = "CHAR", value_parser = parse_delimiter)]
    prefix_delimiter: Option<u8>,
    /// Memory file: a graceful stop (SIGTERM, SIGINT, SIGUSR1) writes every
    /// item there and the next start loads it, then removes it (memcached's
    /// warm restart). Put it on a volume that outlives the process.
    #[arg(short = 'e', long = "memory-file", value_name = "PATH")]
    memory_file: Option<PathBuf>,
    /// Serve the admin HTTP port on HOST:PORT (port 0: any free port, printed
    /// at start): /metrics in the memcached_exporter's names, /healthz,
    /// /readyz, /config, /summary.json and a dashboard at /.
    #[arg(long = "admin", value_name = "ADDR", value_parser = crate::admin_addr::parse)]
    admin: Option<String>,
    /// TLS on every connection (memcached's -Z); the files come with -o
    /// ssl_chain_cert=…,ssl_key=…. SIGHUP and the `refresh_certs` command
    /// reload them.
    #[arg(short = 'Z', long = "enable-ssl")]
    enable_ssl: bool,
    /// memcached's extended options, comma separated (may be repeated):
    /// ssl_chain_cert, ssl_key, ssl_ca_cert, ssl_verify_mode (0 none, 1
    /// request, 2 require, 3 once), ssl_min_version (2 tlsv1.2, 3 tlsv1.3).
    #[arg(short = 'o', long = "extended", value_name = "OPTIONS")]
    extended: Vec<String>,
    /// memshard's own: with -Z, also read the ssl_* files again whenever
    /// their contents change (looked at every 2 s), as the proxy does — a
    /// renewed Kubernetes Secret is then served without a SIGHUP.
    #[arg(long = "tls-watch", requires = "enable_ssl")]
    tls_watch: bool,
    /// Verbose logging (-v, -vv).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

pub(crate) fn main(args: ServerArgs) -> Result<(), Failure> {
    logging::init(args.verbose);
    if args.udp_port != 0 {
        return Err(Failure::Usage(anyhow!("UDP is not supported: use -U 0")));
    }
    if !(1024..=1 << 30).contains(&args.max_item_size) {
        return Err(Failure::Usage(anyhow!("-I must be between 1k and 1g")));
    }
    if args.memory_limit == 0 {
        return Err(Failure::Usage(anyhow!("-m must be at least 1 (megabyte)")));
    }
    if args.conn_limit == 0 {
        return Err(Failure::Usage(anyhow!("-c must be at least 1")));
    }
    if args.user.is_some() {
        tracing::debug!("-u is accepted for compatibility and ignored");
    }
    let ssl = crate::server_tls::SslOptions::parse(&args.extended).map_err(Failure::Usage)?;
    let tls = ssl.load(args.enable_ssl).map_err(Failure::Usage)?;
    let threads =
        if args.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { args.threads };
    let cfg = ServerConfig {
        memory_limit: args.memory_limit.saturating_mul(1024 * 1024),
        max_connections: args.conn_limit,
        max_item_size: args.max_item_size,
        threads,
        shutdown_command: args.enable_shutdown,
        prefix_delimiter: args.prefix_delimiter,
        memory_file: args.memory_file.clone(),
        tls: tls.clone(),
        ssl_verify_mode: ssl.verify_mode(),
        ..ServerConfig::default()
    };
    // The acceptor, the sweeper, the admin port and signal handling share one small runtime;
    // connections run on `threads` dedicated worker threads (memshard_server::run).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async move {
        let listener: memshard_net::Listener = match &args.unix_socket {
            Some(path) => {
                memshard_net::bind_unix(path, Some(args.unix_mask), memshard_net::BindOptions::default().backlog)
                    .await
                    .map_err(|e| Failure::Runtime(e.into()))?
                    .into()
            }
            None => {
                let addr = format!("{}:{}", args.listen, args.port);
                memshard_net::bind(&addr).await.map_err(|e| Failure::Runtime(e.into()))?.into()
            }
        };
        // Bound before serving: a port that is taken stops the start.
        let admin = match &args.admin {
            Some(addr) => Some(memshard_net::bind(addr).await.map_err(|e| Failure::Runtime(e.into()))?),
            None => None,
        };
        if let Some(tls) = tls {
            if args.tls_watch {
                let items: Vec<std::sync::Arc<dyn memshard_tls::watch::Reload>> = vec![tls.clone()];
                tokio::spawn(memshard_tls::watch::run(
                    items,
                    memshard_tls::watch::POLL_INTERVAL,
                    std::future::pending(),
                ));
            }
            tokio::spawn(reload_on_sighup(tls));
        }
        let (trigger, shutdown) = ShutdownTrigger::new();
        tokio::spawn(async move {
            // SIGUSR1 is memcached's graceful-restart signal; SIGTERM and
            // SIGINT stop the same way (and save the -e file, if any).
            let usr1 = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                () = os_signal() => {}
                () = usr1 => {}
            }
            tracing::info!("shutting down");
            trigger.trigger();
        });
        memshard_server::run_with_admin(listener, cfg, admin, shutdown).await.map_err(|e| Failure::Runtime(e.into()))
    })
}

/// SIGHUP reloads the TLS files (a failure is logged and the old
/// certificates stay).
async fn reload_on_sighup(tls: std::sync::Arc<memshard_tls::ServerTls>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        let _ = tls.reload();
    }
}

/// memcached's `-D`: one character.
fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s.as_bytes() {
        [b] if b.is_ascii_graphic() => Ok(*b),
        _ => Err(format!("'{s}' is not one printable character")),
    }
}

/// memcached's `-a`: octal digits only, at most 0777.
fn parse_mask(s: &str) -> Result<u32, String> {
    let bad = || format!("'{s}' is not an octal file mode (e.g. 0700)");
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    u32::from_str_radix(s, 8).ok().filter(|&m| m <= 0o777).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_mask;

    #[test]
    fn unix_mask_is_octal_up_to_0777() {
        assert_eq!(parse_mask("0700"), Ok(0o700));
        assert_eq!(parse_mask("600"), Ok(0o600));
        assert_eq!(parse_mask("0777"), Ok(0o777));
        for bad in ["", "0800", "1777", "rwx", "-1", "0x1ff"] {
            assert!(parse_mask(bad).is_err(), "{bad} accepted");
        }
    }
}
