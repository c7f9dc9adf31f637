//! Unix sockets end to end, as a user runs them: `memshard server -s PATH -a
//! MASK` (memcached's flags) and `memshard proxy` with a pool listening on a
//! socket file in front of that server's socket: the `listening on PATH`
//! lines, the files' modes, a round trip, exit 0 on SIGTERM and the socket
//! files removed.

use memshard_testkit::{RoleProcess, spawn_role};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Starts `memshard ARGS` and waits for its first `listening on` line.
fn start(args: &[&str]) -> RoleProcess {
    spawn_role(Path::new(env!("CARGO_BIN_EXE_memshard")), args, 1).expect("memshard starts")
}

/// Sends `req` on a fresh connection to `path`, reads until the reply ends
/// with `until` (or the peer closes, or 10 s pass).
fn ask(path: &Path, req: &[u8], until: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(req).expect("write");
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while !out.ends_with(until) {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("socket file").permissions().mode() & 0o777
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memshard-unix-process-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[test]
fn server_and_proxy_on_unix_sockets_serve_and_clean_up() {
    let dir = scratch();
    let server_sock = dir.join("memcached.sock");
    // A stale socket file left by a process that is gone is replaced.
    drop(std::os::unix::net::UnixListener::bind(&server_sock).expect("stale socket"));
    let sock = server_sock.to_string_lossy().into_owned();
    let mut server = start(&["server", "-s", &sock, "-a", "0660", "-t", "1"]);
    assert_eq!(server.unix_path(), Some(server_sock.as_path()));
    assert_eq!(mode(&server_sock), 0o660);
    assert_eq!(
        ask(&server_sock, b"set k 0 0 2\r\nhi\r\nget k\r\n", b"END\r\n"),
        b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
    );

    let proxy_sock = dir.join("proxy.sock");
    let conf = dir.join("nutcracker.yml");
    let yaml = format!(
        "mc:\n  listen: {} 0600\n  timeout: 400\n  servers:\n   - {}:1\n",
        proxy_sock.display(),
        server_sock.display()
    );
    std::fs::write(&conf, yaml).expect("write config");
    let conf = conf.to_string_lossy().into_owned();
    let mut proxy = start(&["proxy", "-c", &conf, "-s", "0", "-a", "127.0.0.1", "--workers", "1"]);
    assert_eq!(proxy.unix_path(), Some(proxy_sock.as_path()));
    assert_eq!(mode(&proxy_sock), 0o600);
    assert_eq!(ask(&proxy_sock, b"get k\r\n", b"END\r\n"), b"VALUE k 0 2\r\nhi\r\nEND\r\n");
    assert_eq!(ask(&proxy_sock, b"set via 0 0 1\r\nx\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(ask(&server_sock, b"get via\r\n", b"END\r\n"), b"VALUE via 0 1\r\nx\r\nEND\r\n");

    assert_eq!(proxy.stop().expect("exits after SIGTERM"), Some(0));
    assert!(!proxy_sock.exists(), "the proxy left its socket file");
    assert_eq!(server.stop().expect("exits after SIGTERM"), Some(0));
    assert!(!server_sock.exists(), "the server left its socket file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_unix_mask_exits_two() {
    for mask in ["0800", "1777", "rw"] {
        let out = Command::new(env!("CARGO_BIN_EXE_memshard"))
            .args(["server", "-s", "/nonexistent/x.sock", "-a", mask])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{mask}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
