//! memshard roles as separate processes, as a user starts them: spawn the
//! binary, wait for its `listening on ADDR` lines, read its memory use.

use crate::peer::ChildGuard;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running role process, killed on drop.
#[derive(Debug)]
pub struct RoleProcess {
    /// The process (killed and reaped when dropped).
    pub child: ChildGuard,
    /// The addresses of its `listening on` lines, in order.
    pub addrs: Vec<SocketAddr>,
}

impl RoleProcess {
    /// The first listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The process's resident set size now, in bytes.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        rss_bytes(self.child.id())
    }
}

/// Runs `bin args…` with `RUST_LOG=info` and waits (up to 20 s) until it has
/// logged `listening` lines for `listeners` addresses. Its stderr keeps being
/// drained so it never blocks on a full pipe.
pub fn spawn_role(bin: &Path, args: &[&str], listeners: usize) -> io::Result<RoleProcess> {
    let mut child =
        Command::new(bin).args(args).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr pipe"))?;
    let child = ChildGuard::new(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = listening_addr(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let mut addrs = Vec::new();
    while addrs.len() < listeners {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addrs.push(addr),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} {args:?}: {} of {listeners} `listening on` lines", bin.display(), addrs.len()),
                ));
            }
        }
    }
    Ok(RoleProcess { child, addrs })
}

/// The address of a `… listening on ADDR …` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.split("listening on ").nth(1)?.split_whitespace().next()?.parse().ok()
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
    use super::listening_addr;

    #[test]
    fn finds_the_address_in_a_log_line() {
        let line = "2026-11-25T05:21:28Z  INFO listening on 127.0.0.1:33427 role=\"server\"";
        assert_eq!(listening_addr(line), Some("127.0.0.1:33427".parse().expect("addr")));
        assert_eq!(listening_addr("INFO listening on /tmp/x.sock role=\"proxy\""), None);
        assert_eq!(listening_addr("INFO shutting down"), None);
    }
}
