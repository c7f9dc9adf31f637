//! `memshard proxy`: twemproxy's flags and YAML file.

use crate::{Failure, logging, output};
use anyhow::{Context, anyhow};
use clap::Args;
use memshard_config::Config;
use memshard_net::{ShutdownTrigger, os_signal};
use memshard_proxy::ProxyConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Flags follow nutcracker's where they exist.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// twemproxy YAML configuration file.
    #[arg(short = 'c', long = "conf-file", default_value = "conf/nutcracker.yml")]
    conf_file: PathBuf,
    /// Test the configuration for syntax errors and exit (0 ok, 2 invalid).
    #[arg(short = 't', long = "test-conf")]
    test_conf: bool,
    /// Stats port (twemproxy's JSON document on every connection).
    #[arg(short = 's', long = "stats-port", default_value_t = 22222)]
    stats_port: u16,
    /// Stats address.
    #[arg(short = 'a', long = "stats-addr", default_value = "0.0.0.0")]
    stats_addr: String,
    /// Stats aggregation interval in ms (accepted for compatibility: memshard's
    /// stats are always live).
    #[arg(short = 'i', long = "stats-interval", default_value_t = 30_000)]
    stats_interval: u64,
    /// Log to this file instead of stderr.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Worker threads per pool (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Keep every worker active, clients dealt out in turn and never moved.
    /// By default the proxy uses as few workers as the load needs, adding
    /// one when a worker nears a full core and the machine has idle cores,
    /// and moves clients between workers between their requests.
    #[arg(long = "all-workers")]
    all_workers: bool,
    /// Resolve server names with this DNS server (IP or IP:PORT, port 53 by
    /// default; repeatable) instead of the system resolver. /etc/hosts is
    /// then not read. memshard extension.
    #[arg(long = "dns-server", value_name = "IP[:PORT]", value_parser = parse_dns_server)]
    dns_server: Vec<SocketAddr>,
    /// How often the configuration file is read for a change, in ms (0: only
    /// on SIGHUP). A changed file that passes `-t`'s check is applied pool by
    /// pool without a restart; a bad one changes nothing. memshard extension.
    #[arg(long = "watch-interval", value_name = "MS", default_value_t = 2000)]
    watch_interval: u64,
    /// Serve the admin HTTP surface on this address (host:port; port 0 picks
    /// one): Prometheus /metrics, /healthz, /readyz, /ring?key=K, /config,
    /// /hotkeys and a live dashboard at /. Turns on hot-key tracking.
    /// memshard extension.
    #[arg(long = "admin", value_name = "HOST:PORT", value_parser = crate::admin_addr::parse)]
    admin: Option<String>,
    /// Log level 0..11 as nutcracker (≥ 6 is debug, ≥ 7 trace).
    #[arg(short = 'v', long = "verbose", default_value_t = 5)]
    verbose: u8,
    /// Run as a daemon (in the background; log with -o, or nothing is seen).
    #[arg(short = 'd', long = "daemonize")]
    daemonize: bool,
    /// Write the process id to this file (removed again on a clean exit).
    #[arg(short = 'p', long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// nutcracker's mbuf chunk size, 512 to 16777216 bytes. Accepted for
    /// nutcracker command lines and ignored: memshard has no mbufs (buffers
    /// grow to the request, and each client's answers are bounded at 4 MiB).
    #[arg(short = 'm', long = "mbuf-size", value_name = "N", default_value_t = 16_384)]
    mbuf_size: u32,
    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// Describe the stats (the fields of the stats port's JSON) and exit.
    #[arg(short = 'D', long = "describe-stats")]
    describe_stats: bool,
}

pub(crate) fn main(args: ProxyArgs) -> Result<(), Failure> {
    if args.version {
        return output::emit(concat!(
            "This is memshard-proxy-",
            env!("CARGO_PKG_VERSION"),
            " (nutcracker 0.5.0 compatible)\n"
        ));
    }
    if args.describe_stats {
        return output::emit(&memshard_proxy::describe_stats());
    }
    // nutcracker's NC_MBUF_MIN_SIZE and NC_MBUF_MAX_SIZE.
    if !(512..=16_777_216).contains(&args.mbuf_size) {
        return Err(Failure::Usage(anyhow!("mbuf chunk size must be between 512 and 16777216 bytes")));
    }
    // The bytes parsed are the bytes hashed: the stats name what is in force.
    let bytes = std::fs::read(&args.conf_file);
    let config = match &bytes {
        Ok(b) => Config::from_bytes(b, &args.conf_file),
        Err(_) => Config::load(&args.conf_file),
    }
    .map_err(|e| Failure::Usage(anyhow!("{e}")))?;
    if args.test_conf {
        // Files the pool keys name must load too: a start would stop on them.
        memshard_proxy::check_tls(&config).map_err(|e| Failure::Usage(anyhow!("{e}")))?;
        return output::emit(&format!("memshard: configuration file '{}' syntax is ok\n", args.conf_file.display()));
    }
    let level = match args.verbose {
        0..=5 => 0,
        6 => 1,
        _ => 2,
    };
    logging::init_to(level, args.output.as_deref()).map_err(|e| Failure::Usage(anyhow!("{e}")))?;
    if args.stats_interval == 0 {
        return Err(Failure::Usage(anyhow!("--stats-interval must be positive")));
    }
    let mut proxy = ProxyConfig::default();
    if let Some(w) = args.workers {
        if w == 0 {
            return Err(Failure::Usage(anyhow!("--workers must be at least 1")));
        }
        proxy.workers = w;
    }
    if args.all_workers {
        proxy.spread = memshard_net::Spread::All;
    }
    proxy.dns_servers = args.dns_server;
    // Absolute: -d moves the working directory to `/` before any reload.
    proxy.config_file = Some(std::path::absolute(&args.conf_file).unwrap_or_else(|_| args.conf_file.clone()));
    proxy.config_sha256 = bytes.ok().map(|b| memshard_proxy::sha256_hex(&b));
    proxy.watch_interval = (args.watch_interval > 0).then(|| std::time::Duration::from_millis(args.watch_interval));
    // Before any thread exists: daemonizing forks.
    let pid_path = args.pid_file.as_deref().map(crate::daemon::PidFile::absolute).transpose()?;
    if args.daemonize {
        crate::daemon::daemonize()?;
    }
    let _pid_file = pid_path.as_deref().map(crate::daemon::PidFile::create).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async move {
        let mut listeners: Vec<memshard_net::Listener> = Vec::new();
        for (_, pool) in &config.pools {
            // twemproxy's `backlog` and `reuseport` pool keys; a stale unix
            // socket file is replaced and the new one chmod-ed.
            listeners.push(memshard_proxy::bind(pool).await.map_err(|e| Failure::Runtime(e.into()))?);
        }
        // SIGHUP reloads the file and the pools' TLS certificates (both
        // are also watched for changes).
        let (reload, reload_certs) = (proxy.reload.clone(), proxy.reload_certs.clone());
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration and the TLS certificates");
                reload.notify_one();
                reload_certs.notify_one();
            }
        });
        let stats_addr = format!("{}:{}", args.stats_addr, args.stats_port);
        let stats = memshard_net::bind(&stats_addr).await.map_err(|e| Failure::Runtime(e.into()))?;
        let admin = match &args.admin {
            Some(a) => Some(
                memshard_net::bind(a)
                    .await
                    .map_err(|e| Failure::Runtime(anyhow!("cannot listen on --admin {a}: {e}")))?,
            ),
            None => None,
        };
        let (trigger, shutdown) = ShutdownTrigger::new();
        tokio::spawn(async move {
            os_signal().await;
            tracing::info!("shutting down");
            trigger.trigger();
        });
        let ports = memshard_proxy::Ports { stats: Some(stats), admin };
        memshard_proxy::run(config, listeners, ports, proxy, shutdown).await.map_err(|e| {
            // A daemon's stderr is /dev/null: the log is where this is seen.
            tracing::error!("{e}");
            Failure::Runtime(e.into())
        })
    })
}

/// `IP:PORT`, `[IPv6]:PORT`, or a bare IP meaning port 53.
fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)).map_err(|_| format!("'{s}' is not an IP address or IP:PORT"))
}

#[cfg(test)]
mod tests {
    use super::parse_dns_server;

    #[test]
    fn dns_server_takes_ip_with_or_without_port() {
        assert_eq!(parse_dns_server("127.0.0.1:5353"), Ok("127.0.0.1:5353".parse().expect("addr")));
        assert_eq!(parse_dns_server("10.0.0.2"), Ok("10.0.0.2:53".parse().expect("addr")));
        assert_eq!(parse_dns_server("[::1]:53"), Ok("[::1]:53".parse().expect("addr")));
        assert_eq!(parse_dns_server("::1"), Ok("[::1]:53".parse().expect("addr")));
        assert!(parse_dns_server("dns.example:53").is_err());
    }
}
