//! `memshard up`: the whole system on one machine, in one process: N shard
//! servers, the proxy with the system's pool settings in front of them, and
//! the web app in front of the proxy. Ctrl-C stops it in order: the app
//! drains first, then the proxy, then the shards. With `--tls` every hop
//! speaks mutual TLS, with certificates made for the run (`up_tls`).

use crate::{Failure, logging};
use anyhow::{Context, anyhow};
use clap::Args;
use memshard_app::AppConfig;
use memshard_config::Config;
use memshard_net::{Shutdown, ShutdownTrigger, os_signal};
use memshard_proxy::ProxyConfig;
use memshard_server::ServerConfig;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Flags. Every port accepts 0 (any free port).
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Number of shard servers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=256))]
    shards: u16,
    /// Port of the web app.
    #[arg(long = "app-port", default_value_t = 3000)]
    app_port: u16,
    /// Port of the proxy (twemproxy's customary 22121, so a local memcached on
    /// 11211 does not collide).
    #[arg(long = "proxy-port", default_value_t = 22121)]
    proxy_port: u16,
    /// Port of the proxy's stats JSON.
    #[arg(long = "stats-port", default_value_t = 22222)]
    stats_port: u16,
    /// Port of the proxy's admin page (dashboard, /metrics, /ring?key=K,
    /// /hotkeys); each shard's admin page takes a free port.
    #[arg(long = "admin-port", default_value_t = 9151)]
    admin_port: u16,
    /// Interface every listener binds (shards always take free ports on it).
    #[arg(long, default_value = "127.0.0.1")]
    listen: String,
    /// Item memory of each shard, in megabytes.
    #[arg(short = 'm', long = "memory-limit", default_value_t = 64)]
    memory_limit: usize,
    /// Keep the cache across restarts of `up`: each shard saves its items
    /// to DIR/shard-N.mem when stopped and loads them at the next start
    /// (`memshard server -e`). The folder is created if missing.
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// TLS on every hop, mutual: the app presents a certificate to the
    /// proxy, the proxy one to the shards, each checked against a CA made
    /// for this run (see --tls-dir).
    #[arg(long)]
    tls: bool,
    /// Where --tls writes its CA and certificates (ca.crt; app, proxy and
    /// shard .crt/.key), for clients of your own; created if missing. By
    /// default a temporary folder, removed at exit.
    #[arg(long = "tls-dir", value_name = "DIR", requires = "tls")]
    tls_dir: Option<std::path::PathBuf>,
    /// Verbose logging (-v, -vv).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

/// The system's pool as deployed on Kubernetes (deploy/k8s), with each shard
/// at a local address but under its Kubernetes name, so a key lands on the
/// same shard number here as in the cluster.
pub(crate) fn system_config(proxy: SocketAddr, shards: &[SocketAddr], tls: Option<&Path>) -> String {
    let mut yaml = format!(
        "memcached:\n  listen: {proxy}\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: true\n  \
         timeout: 400\n  server_retry_timeout: 2000\n  server_failure_limit: 1\n"
    );
    if let Some(dir) = tls {
        let f = |name: &str| dir.join(name).display().to_string();
        let _ = write!(
            yaml,
            "  tls_cert_file: {}\n  tls_key_file: {}\n  tls_client_ca_file: {}\n  server_tls: true\n  \
             server_tls_ca_file: {}\n  server_tls_cert_file: {}\n  server_tls_key_file: {}\n",
            f("proxy.crt"),
            f("proxy.key"),
            f("ca.crt"),
            f("ca.crt"),
            f("proxy.crt"),
            f("proxy.key")
        );
    }
    yaml.push_str("  servers:\n");
    for (i, addr) in shards.iter().enumerate() {
        let _ = writeln!(yaml, "   - {addr}:1 sharded-memcache-{i}.memcache");
    }
    yaml
}

/// A role's task and the trigger that stops it.
struct Role {
    name: String,
    stop: ShutdownTrigger,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Role {
    /// Starts `run`; `exited` hears the role's name when it ends.
    fn spawn<F, E>(name: String, exited: &mpsc::UnboundedSender<String>, run: impl FnOnce(Shutdown) -> F) -> Role
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error>,
    {
        let (stop, shutdown) = ShutdownTrigger::new();
        let work = run(shutdown);
        let (exited, who) = (exited.clone(), name.clone());
        let task = tokio::spawn(async move {
            let result = work.await.map_err(Into::into);
            let _ = exited.send(who);
            result
        });
        Role { name, stop, task }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.trigger();
        self.task
            .await
            .with_context(|| format!("{} panicked", self.name))?
            .with_context(|| format!("{} failed", self.name))
    }
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, Failure> {
    let addr = format!("{host}:{port}");
    memshard_net::bind(&addr).await.with_context(|| format!("cannot listen on {addr}")).map_err(Failure::Runtime)
}

pub(crate) fn main(args: UpArgs) -> Result<(), Failure> {
    logging::init(args.verbose);
    if args.memory_limit == 0 {
        return Err(Failure::Usage(anyhow!("--memory-limit must be at least 1 (megabyte)")));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(run(args))
}

async fn run(args: UpArgs) -> Result<(), Failure> {
    // Bind everything first, so a taken port fails before anything starts.
    let mut shard_listeners = Vec::new();
    for _ in 0..args.shards {
        shard_listeners.push(bind(&args.listen, 0).await?);
    }
    let shard_addrs: Vec<SocketAddr> =
        shard_listeners.iter().map(TcpListener::local_addr).collect::<Result<_, _>>().context("shard address")?;
    let mut shard_admins = Vec::new();
    for _ in 0..args.shards {
        shard_admins.push(bind(&args.listen, 0).await?);
    }
    let shard_admin_addrs: Vec<SocketAddr> =
        shard_admins.iter().map(TcpListener::local_addr).collect::<Result<_, _>>().context("shard admin address")?;
    let proxy_listener = bind(&args.listen, args.proxy_port).await?;
    let proxy_addr = proxy_listener.local_addr().context("proxy address")?;
    let stats_listener = bind(&args.listen, args.stats_port).await?;
    let stats_addr = stats_listener.local_addr().context("stats address")?;
    let admin_listener = bind(&args.listen, args.admin_port).await?;
    let admin_addr = admin_listener.local_addr().context("admin address")?;
    let app_listener = bind(&args.listen, args.app_port).await?;
    let app_addr = app_listener.local_addr().context("app address")?;
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --data-dir {}", dir.display()))
            .map_err(Failure::Runtime)?;
    }
    let tls = match args.tls {
        true => Some(
            crate::up_tls::LocalPki::make(args.tls_dir.as_deref(), &args.listen, args.shards)
                .map_err(Failure::Runtime)?,
        ),
        false => None,
    };
    let tls_dir = tls.as_ref().map(|t| t.dir().to_path_buf());
    let config = Config::from_yaml(&system_config(proxy_addr, &shard_addrs, tls_dir.as_deref()))
        .map_err(|e| Failure::Runtime(anyhow!("generated proxy config: {e}")))?;

    let (exited, mut exits) = mpsc::unbounded_channel();
    let mut shards = Vec::new();
    for (i, (listener, admin)) in shard_listeners.into_iter().zip(shard_admins).enumerate() {
        let cfg = ServerConfig {
            memory_limit: args.memory_limit.saturating_mul(1024 * 1024),
            threads: 1,
            // Shards are numbered as on the ring, so shard i finds its own
            // items again whatever port it gets next time.
            memory_file: args.data_dir.as_ref().map(|d| d.join(format!("shard-{i}.mem"))),
            tls: tls.as_ref().map(|t| t.shard.clone()),
            ssl_verify_mode: if tls.is_some() { 2 } else { 0 },
            ..ServerConfig::default()
        };
        shards.push(Role::spawn(format!("shard {i}"), &exited, |s| {
            memshard_server::run_with_admin(listener, cfg, Some(admin), s)
        }));
    }
    let proxy = Role::spawn("proxy".to_owned(), &exited, |s| {
        let ports = memshard_proxy::Ports { stats: Some(stats_listener), admin: Some(admin_listener) };
        memshard_proxy::run(config, vec![proxy_listener], ports, ProxyConfig::default(), s)
    });
    let app_config = AppConfig {
        cache: proxy_addr.to_string(),
        cache_tls: tls.as_ref().map(|t| (t.app.clone(), t.name.clone())),
        ..AppConfig::default()
    };
    let app = Role::spawn("app".to_owned(), &exited, |s| memshard_app::run(app_listener, app_config, s));

    let addrs = Addrs {
        shards: &shard_addrs,
        shard_admins: &shard_admin_addrs,
        proxy: proxy_addr,
        stats: stats_addr,
        admin: admin_addr,
        app: app_addr,
    };
    print_summary(&addrs, args.data_dir.as_deref(), tls_dir.as_deref());

    // Run until Ctrl-C/SIGTERM, or until a role stops by itself (a failure).
    tokio::select! {
        () = os_signal() => tracing::info!("shutting down"),
        Some(who) = exits.recv() => tracing::error!("{who} stopped unexpectedly; shutting down"),
    }
    let mut failures = Vec::new();
    for role in std::iter::once(app).chain(std::iter::once(proxy)).chain(shards) {
        if let Err(e) = role.stop().await {
            failures.push(format!("{e:#}"));
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(Failure::Runtime(anyhow!("{}", failures.join("; ")))) }
}

/// Where each part of the local system listens.
struct Addrs<'a> {
    shards: &'a [SocketAddr],
    shard_admins: &'a [SocketAddr],
    proxy: SocketAddr,
    stats: SocketAddr,
    admin: SocketAddr,
    app: SocketAddr,
}

fn print_summary(addrs: &Addrs<'_>, data_dir: Option<&Path>, tls_dir: Option<&Path>) {
    let Addrs { shards, shard_admins, proxy, stats, admin, app } = *addrs;
    let mut out = String::from("memshard up: the whole system is running\n");
    for (i, (addr, admin)) in shards.iter().zip(shard_admins).enumerate() {
        let _ = writeln!(
            out,
            "  shard {i:<3}  {addr:<21}  (on the ring as sharded-memcache-{i}.memcache; admin http://{admin}/)"
        );
    }
    let _ = writeln!(out, "  proxy      {proxy:<21}  (fnv1a_64, ketama, auto-eject; stats JSON on {stats})");
    let _ = writeln!(out, "  dashboard  http://{admin}/  (the proxy's admin page: /metrics, /ring?key=K, /hotkeys)");
    let _ = writeln!(out, "  app        http://{app}");
    if let Some(dir) = data_dir {
        let _ = writeln!(
            out,
            "  data       {} (each shard's items, saved at Ctrl-C, loaded at the next start)",
            dir.display()
        );
    }
    if let Some(dir) = tls_dir {
        let _ = writeln!(
            out,
            "  tls        {} (TLS on every hop, mutual: ca.crt signed app, proxy and shard certificates)",
            dir.display()
        );
    }
    let host =
        if app.ip().is_loopback() || app.ip().is_unspecified() { "localhost".to_owned() } else { app.ip().to_string() };
    let _ = writeln!(out, "\nTry it:\n  curl \"http://{host}:{}/memcache?lookup=cat\"", app.port());
    if let Some(dir) = tls_dir {
        let d = dir.display();
        let _ = writeln!(
            out,
            "  openssl s_client -quiet -connect {proxy} -CAfile {d}/ca.crt -cert {d}/app.crt -key {d}/app.key"
        );
    }
    out.push_str("\nCtrl-C stops everything.\n");
    // The system runs on whether or not anyone reads this.
    let _ = crate::output::emit(&out);
}

#[cfg(test)]
mod tests {
    use super::system_config;
    use memshard_config::Config;
    use memshard_proxy::placement;

    /// The pool of the Kubernetes deployment (deploy/k8s), as the proxy
    /// issue quotes it.
    const CLUSTER: &str = "memcached:\n  listen: 0.0.0.0:11211\n  hash: fnv1a_64\n  distribution: ketama\n  \
        auto_eject_hosts: true\n  timeout: 400\n  server_retry_timeout: 2000\n  server_failure_limit: 1\n  servers:\n   \
        - sharded-memcache-0.memcache:11211:1\n   - sharded-memcache-1.memcache:11211:1\n   \
        - sharded-memcache-2.memcache:11211:1\n";

    #[test]
    fn local_system_places_keys_as_the_cluster_does() {
        let local = ["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"].map(|a| a.parse().expect("addr"));
        let local =
            Config::from_yaml(&system_config("127.0.0.1:22121".parse().expect("addr"), &local, None)).expect("local");
        let cluster = Config::from_yaml(CLUSTER).expect("cluster");
        let (lp, cp) = (&local.pools[0].1, &cluster.pools[0].1);
        assert_eq!(
            (
                lp.hash,
                lp.distribution,
                lp.timeout,
                lp.auto_eject_hosts,
                lp.server_retry_timeout,
                lp.server_failure_limit
            ),
            (
                cp.hash,
                cp.distribution,
                cp.timeout,
                cp.auto_eject_hosts,
                cp.server_retry_timeout,
                cp.server_failure_limit
            )
        );
        let (l, c) = (placement("memcached", lp).expect("local ring"), placement("memcached", cp).expect("ring"));
        for i in 0..5000 {
            let key = format!("k{i}");
            let (li, ci) = (l.ring.server_for(key.as_bytes()), c.ring.server_for(key.as_bytes()));
            assert_eq!(l.specs[li].ring_name(), c.specs[ci].ring_name(), "{key}");
        }
    }
}
