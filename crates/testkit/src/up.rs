//! `memshard up` as a process: started on ephemeral ports (every port 0,
//! `-m 16`), its printed summary read for the addresses of every part.

use crate::ChildGuard;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// A running `memshard up` (killed when dropped) and what its summary said.
#[derive(Debug)]
pub struct UpProcess {
    /// The process.
    pub child: ChildGuard,
    /// Each shard's address, in ring order.
    pub shards: Vec<SocketAddr>,
    /// Each shard's admin port.
    pub shard_admins: Vec<SocketAddr>,
    /// The proxy's pool address.
    pub proxy: SocketAddr,
    /// The proxy's admin port (the dashboard).
    pub dashboard: SocketAddr,
    /// The web app's address.
    pub app: SocketAddr,
    /// The `curl …` line to paste.
    pub curl_line: String,
    /// With `--tls`: the folder of the run's CA and certificates.
    pub tls_dir: Option<std::path::PathBuf>,
}

/// Starts `bin up` with every port 0, `-m 16` and `extra`, and reads its
/// summary up to the Ctrl-C hint. Panics (it is for tests) when the summary
/// lacks an address.
pub fn spawn_up(bin: &Path, extra: &[&str]) -> UpProcess {
    let child = Command::new(bin)
        .args(["up", "--app-port", "0", "--proxy-port", "0", "--stats-port", "0", "--admin-port", "0", "-m", "16"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start memshard up");
    let mut child = ChildGuard::new(child);
    let stdout = child.child_mut().stdout.take().expect("stdout");
    let (mut shards, mut shard_admins, mut curl_line) = (Vec::new(), Vec::new(), String::new());
    let (mut proxy, mut dashboard, mut app, mut tls_dir) = (None, None, None, None);
    let url = |u: &str| -> SocketAddr {
        u.trim_start_matches("http://").trim_end_matches(['/', ')']).parse().expect("an http://ADDR/ address")
    };
    // The summary ends with the Ctrl-C hint; stop reading there. If `up`
    // dies first, stdout closes and the loop ends too.
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["shard", _, addr, .., "admin", admin] => {
                shards.push(addr.parse().expect("shard address"));
                shard_admins.push(url(admin));
            }
            ["proxy", addr, ..] => proxy = Some(addr.parse().expect("proxy address")),
            ["dashboard", admin, ..] => dashboard = Some(url(admin)),
            ["app", addr] => app = Some(url(addr)),
            ["curl", ..] => curl_line = line.trim().to_owned(),
            ["tls", dir, ..] => tls_dir = Some(std::path::PathBuf::from(dir)),
            ["Ctrl-C", ..] => break,
            _ => {}
        }
    }
    UpProcess {
        child,
        shards,
        shard_admins,
        proxy: proxy.expect("the proxy's address is printed"),
        dashboard: dashboard.expect("the dashboard's address is printed"),
        app: app.expect("the app's address is printed"),
        curl_line,
        tls_dir,
    }
}
