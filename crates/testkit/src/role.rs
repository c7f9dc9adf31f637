//! memshard roles as separate processes, as a user starts them: spawn the
//! binary, wait for its `listening on ADDR` lines, read its memory use.

use crate::peer::ChildGuard;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where a role listens: what one `listening on` line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket's path.
    Unix(PathBuf),
}

/// A running role process, killed on drop.
#[derive(Debug)]
pub struct RoleProcess {
    /// The process (killed and reaped when dropped).
    pub child: ChildGuard,
    /// The TCP addresses of its `listening on` lines, in order.
    pub addrs: Vec<SocketAddr>,
    /// Every `listening on` line's endpoint, TCP or unix socket, in order.
    pub endpoints: Vec<Endpoint>,
}

impl RoleProcess {
    /// The first TCP listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The first unix socket listened on, if any.
    pub fn unix_path(&self) -> Option<&Path> {
        self.endpoints.iter().find_map(|e| match e {
            Endpoint::Unix(p) => Some(p.as_path()),
            Endpoint::Tcp(_) => None,
        })
    }

    /// The process's resident set size now, in bytes.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        rss_bytes(self.child.id())
    }

    /// Sends SIGTERM and waits (up to 15 s) for the exit code (`None`: killed
    /// by a signal).
    pub fn stop(&mut self) -> io::Result<Option<i32>> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !sent.success() {
            return Err(io::Error::other(format!("kill -TERM {pid} failed")));
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.child_mut().try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no exit within 15 s of SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `bin args…` with `RUST_LOG=info` and waits (up to 20 s) until it has
/// logged `listening` lines for `listeners` endpoints (TCP addresses or unix
/// socket paths). Its stderr keeps being drained so it never blocks on a full
/// pipe.
pub fn spawn_role(bin: &Path, args: &[&str], listeners: usize) -> io::Result<RoleProcess> {
    let mut child =
        Command::new(bin).args(args).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr pipe"))?;
    let child = ChildGuard::new(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(endpoint) = listening_on(&line) {
                let _ = tx.send(endpoint);
            }
        }
    });
    let mut endpoints = Vec::new();
    while endpoints.len() < listeners {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(endpoint) => endpoints.push(endpoint),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} {args:?}: {} of {listeners} `listening on` lines", bin.display(), endpoints.len()),
                ));
            }
        }
    }
    let addrs = endpoints
        .iter()
        .filter_map(|e| match e {
            Endpoint::Tcp(a) => Some(*a),
            Endpoint::Unix(_) => None,
        })
        .collect();
    Ok(RoleProcess { child, addrs, endpoints })
}

/// The endpoint of a `… listening on ADDR …` log line: a socket address, or
/// an absolute path for a unix socket.
fn listening_on(line: &str) -> Option<Endpoint> {
    let text = line.split("listening on ").nth(1)?.split_whitespace().next()?;
    if text.starts_with('/') {
        return Some(Endpoint::Unix(PathBuf::from(text)));
    }
    text.parse().ok().map(Endpoint::Tcp)
}

/// The resident set size of process `pid`, in bytes (Linux `/proc`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS line"))
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, listening_on};

    #[test]
    fn finds_the_endpoint_in_a_log_line() {
        let line = "2026-11-25T05:21:28Z  INFO listening on 127.0.0.1:33427 role=\"server\"";
        assert_eq!(listening_on(line), Some(Endpoint::Tcp("127.0.0.1:33427".parse().expect("addr"))));
        let unix = "INFO listening on /tmp/x.sock role=\"proxy\"";
        assert_eq!(listening_on(unix), Some(Endpoint::Unix("/tmp/x.sock".into())));
        assert_eq!(listening_on("INFO shutting down"), None);
    }
}
