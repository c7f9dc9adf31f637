//! `memshard server --admin ADDR` as a user runs it: the admin port's
//! `listening on` line (role `server-admin`), a Prometheus scrape in the
//! `memcached_exporter`'s names that follows the server's counters, exit 0 on
//! SIGTERM, and exit 2 with a clear message for an address that is not
//! HOST:PORT.

use memshard_testkit::http::get;
use memshard_testkit::peer::ChildGuard;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_memshard"))
}

/// The address of a `listening on ADDR` log line, and whether it is the
/// admin port's (role `server-admin`).
fn listening_on(line: &str) -> Option<(SocketAddr, bool)> {
    let addr = line.split("listening on ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some((addr, line.contains("server-admin")))
}

/// Starts `memshard server -l 127.0.0.1 -p 0 --admin 127.0.0.1:0 -t 1` and
/// returns it with its memcached address and its admin address, told apart
/// by the role of their `listening on` lines.
fn start() -> (ChildGuard, SocketAddr, SocketAddr) {
    let mut child = Command::new(bin())
        .args(["server", "-l", "127.0.0.1", "-p", "0", "--admin", "127.0.0.1:0", "-t", "1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn memshard server");
    let stderr = child.stderr.take().expect("stderr pipe");
    let child = ChildGuard::new(child);
    let (tx, rx) = mpsc::channel();
    // Keeps draining stderr so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(found) = listening_on(&line) {
                let _ = tx.send(found);
            }
        }
    });
    let (mut server, mut admin) = (None, None);
    while server.is_none() || admin.is_none() {
        let (addr, is_admin) = rx.recv_timeout(Duration::from_secs(20)).expect("two `listening on` lines within 20 s");
        if is_admin { admin = Some(addr) } else { server = Some(addr) }
    }
    (child, server.expect("server address"), admin.expect("admin address"))
}

/// Sends `req` and reads until the reply ends with `until`.
fn ask(addr: SocketAddr, req: &[u8], until: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
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

/// The value of an unlabelled sample (printed with or without `{}`), or of
/// `name{labels}`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let rest = if series.ends_with('}') { rest } else { rest.strip_prefix("{}").unwrap_or(rest) };
        rest.strip_prefix(' ')?.parse().ok()
    })
}

fn scrape(admin: SocketAddr) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let r = rt.block_on(get(admin, "/metrics")).expect("GET /metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn stop(mut child: ChildGuard) -> Option<i32> {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.child_mut().try_wait().expect("wait") {
            return s.code();
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_admin_port_serves_the_exporters_metrics() {
    let (child, server, admin) = start();
    assert_ne!(server, admin);
    let text = scrape(admin);
    assert_eq!(value(&text, "memcached_up"), Some(1.0), "{text}");
    assert_eq!(value(&text, "memcached_current_items"), Some(0.0), "{text}");
    assert_eq!(value(&text, "memcached_max_connections"), Some(1024.0), "{text}");
    assert!(text.contains("# TYPE memcached_commands counter"), "{text}");

    let reply = ask(server, b"set k 0 0 2\r\nhi\r\nget k\r\n", b"END\r\n");
    assert_eq!(reply, b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
    let text = scrape(admin);
    assert_eq!(value(&text, "memcached_current_items"), Some(1.0), "{text}");
    assert_eq!(value(&text, "memcached_commands_total{command=\"get\",status=\"hit\"}"), Some(1.0), "{text}");
    assert_eq!(value(&text, "memcached_commands_total{command=\"set\",status=\"hit\"}"), Some(1.0), "{text}");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    assert_eq!(stop(child), Some(0));
}

#[test]
fn an_admin_address_that_is_not_host_and_port_exits_2() {
    for bad in ["9100", "127.0.0.1", "127.0.0.1:99999", "::1:9100"] {
        let out = Command::new(bin())
            .args(["server", "-l", "127.0.0.1", "-p", "0", "--admin", bad])
            .output()
            .expect("run memshard server");
        assert_eq!(out.status.code(), Some(2), "--admin {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--admin") && err.contains("is not HOST:PORT"), "--admin {bad}: {err}");
    }
}
