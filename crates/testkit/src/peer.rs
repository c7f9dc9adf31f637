//! Finding and running peer programs (real memcached, nutcracker, ...).
//!
//! Tests that compare memshard against a peer must not silently pass when the
//! peer is missing, and must not fail on a developer machine that lacks it.
//! The compromise: a missing peer is skipped with a loud `SKIPPED:` line on
//! stderr, unless `MEMSHARD_REQUIRE_PEERS=1` is set (CI sets it), in which
//! case a missing peer is a test failure.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Environment variable that turns a missing peer from a skip into a failure.
pub const REQUIRE_PEERS_ENV: &str = "MEMSHARD_REQUIRE_PEERS";

/// Directories searched after `PATH`: peers installed by distribution
/// packages live there even when a minimal `PATH` omits the `sbin`s
/// (nutcracker is in `/usr/sbin` on Debian).
const EXTRA_DIRS: &[&str] = &["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// How long a spawned peer gets to start accepting connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many fresh ports [`spawn_memcached`] tries before giving up; another
/// process can grab the port between our probe and memcached's bind.
const SPAWN_ATTEMPTS: usize = 5;

/// Finds an executable named `name` on `PATH` or in the usual system
/// directories. Returns `None` when it is not installed.
pub fn find_peer(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// True when `MEMSHARD_REQUIRE_PEERS=1`: missing peers must fail tests.
pub fn require_peers() -> bool {
    std::env::var(REQUIRE_PEERS_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Returns the peer's path, or prints `SKIPPED: <test>: peer <name> not
/// installed` to stderr and returns `None` so the caller can return early.
///
/// # Panics
///
/// Panics when the peer is missing and [`require_peers`] is true.
pub fn peer_or_skip(name: &str) -> Option<PathBuf> {
    if let Some(path) = find_peer(name) {
        return Some(path);
    }
    // libtest names each test's thread after the test, which is exactly the
    // identifier a reader of the log needs.
    let current = thread::current();
    let test = current.name().unwrap_or("<unnamed test>");
    if require_peers() {
        panic!(
            "{test}: peer {name} not installed, and {REQUIRE_PEERS_ENV}=1 forbids skipping \
             (install it, e.g. `apt-get install {name}`)"
        );
    }
    #[allow(clippy::print_stderr)] // the whole point is to be seen in test output
    {
        eprintln!("SKIPPED: {test}: peer {name} not installed");
    }
    None
}

/// Returns a loopback port that was free a moment ago.
///
/// The port is found by binding `127.0.0.1:0` and dropping the listener, so
/// it can in principle be taken again before the caller binds it; callers
/// that spawn servers should retry on failure (as [`spawn_memcached`] does).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Polls `addr` until a TCP connect succeeds or `timeout` passes.
pub fn wait_for_listen(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} did not accept connections within {timeout:?}: {e}"),
                ));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Owns a child process and kills it when dropped, so a failing test cannot
/// leak servers.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Takes ownership of `child`.
    pub fn new(child: Child) -> Self {
        Self { child }
    }

    /// The operating-system process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Mutable access to the child, e.g. for `try_wait` or its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the child now and reaps it. Idempotent.
    pub fn kill(&mut self) {
        // Both calls fail harmlessly when the child already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running memcached on a loopback port, killed on drop.
#[derive(Debug)]
pub struct MemcachedProcess {
    guard: ChildGuard,
    addr: SocketAddr,
}

impl MemcachedProcess {
    /// The address memcached listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TCP port memcached listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The process id, for logs.
    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// Stops memcached now instead of at drop.
    pub fn kill(&mut self) {
        self.guard.kill();
    }
}

/// Starts memcached on a free loopback port with TCP only (`-U 0`) and the
/// extra `args` (e.g. `["-t", "1", "-m", "64"]`; do not pass `-l`/`-p`/`-U`),
/// and waits until it accepts connections.
///
/// Fails with `NotFound` when memcached is not installed; callers normally
/// check [`peer_or_skip`] first.
pub fn spawn_memcached(args: &[&str]) -> io::Result<MemcachedProcess> {
    let bin =
        find_peer("memcached").ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "memcached not installed"))?;
    let mut last_err = None;
    for _ in 0..SPAWN_ATTEMPTS {
        match spawn_memcached_once(&bin, args) {
            Ok(process) => return Ok(process),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("memcached did not start")))
}

fn spawn_memcached_once(bin: &Path, args: &[&str]) -> io::Result<MemcachedProcess> {
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut cmd = Command::new(bin);
    // memcached refuses to start as root without -u; when not root it
    // ignores -u, so passing it unconditionally is harmless.
    if !args.contains(&"-u") {
        cmd.args(["-u", "root"]);
    }
    cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut guard = ChildGuard::new(cmd.spawn()?);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = guard.child_mut().try_wait()? {
            // Typically "failed to listen": the port was taken meanwhile.
            let mut stderr = String::new();
            if let Some(mut pipe) = guard.child_mut().stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(io::Error::other(format!("memcached on port {port} exited with {status}: {}", stderr.trim())));
        }
        if let Ok(sock) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            // Two spawns can be handed the same free port: only accept the
            // process that answers with our child's pid.
            if server_pid(sock) == Some(guard.id()) {
                return Ok(MemcachedProcess { guard, addr });
            }
            return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("port {port} answered by another process")));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("memcached on port {port} did not accept within {READY_TIMEOUT:?}"),
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The `pid` a memcached-protocol server reports in `stats`.
fn server_pid(mut sock: TcpStream) -> Option<u32> {
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.write_all(b"stats\r\n").ok()?;
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    // Bounded: a stats reply is a few KiB.
    while !buf.ends_with(b"END\r\n") && buf.len() < 1 << 20 {
        let n = sock.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    text.lines().find_map(|l| l.strip_prefix("STAT pid ")).and_then(|p| p.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(find_peer("sh").is_some());
        assert!(find_peer("definitely-not-a-memshard-peer").is_none());
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn child_guard_kills_on_drop() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        drop(ChildGuard::new(child));
        // A reaped process has no /proc entry.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
