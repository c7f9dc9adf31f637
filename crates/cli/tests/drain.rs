//! SIGTERM on each role, as Kubernetes sends it: the process stops accepting,
//! finishes the request in flight, and exits 0 well inside the manifests'
//! 30 s grace period (each role drains for at most 10 s).

use memshard_testkit::{RoleProcess, spawn_role};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The manifests' grace period is 30 s, minus a 5 s preStop sleep.
const EXIT_BOUND: Duration = Duration::from_secs(25);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_memshard"))
}

fn sigterm(p: &RoleProcess) {
    let ok = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().expect("kill").success();
    assert!(ok, "kill -TERM");
}

/// Waits for the process to exit; its exit code and how long it took.
fn wait_exit(p: &mut RoleProcess) -> (Option<i32>, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = p.child.child_mut().try_wait().expect("wait") {
            return (status.code(), start.elapsed());
        }
        assert!(start.elapsed() < EXIT_BOUND, "no exit within {EXIT_BOUND:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends half a `set`, SIGTERMs `p`, sends the rest: the request in flight
/// is finished (`STORED`), new connections are refused, the process exits 0.
async fn drains_a_set_in_flight(mut p: RoleProcess) {
    let addr = p.addr();
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"mn\r\n").await.expect("write");
    let mut mn = [0u8; 4];
    c.read_exact(&mut mn).await.expect("read");
    c.write_all(b"set drained 0 0 10\r\nabcde").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    sigterm(&p);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after SIGTERM");
    c.write_all(b"fghij\r\n").await.expect("write the rest");
    let mut reply = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut reply)).await.expect("answered").expect("read");
    assert_eq!(&reply, b"STORED\r\n");
    drop(c);
    let (code, took) = tokio::task::spawn_blocking(move || wait_exit(&mut p)).await.expect("wait");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(11), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_drains_on_sigterm() {
    let s = spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "1"], 1).expect("server");
    drains_a_set_in_flight(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_drains_on_sigterm() {
    let s = spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "1"], 1).expect("server");
    let dir = std::env::temp_dir().join(format!("memshard-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let conf = dir.join("pool.yml");
    let yaml = format!("p:\n  listen: 127.0.0.1:0\n  timeout: 400\n  servers:\n   - {}:1\n", s.addr());
    std::fs::write(&conf, yaml).expect("config");
    let conf = conf.to_str().expect("utf-8").to_owned();
    let p = spawn_role(bin(), &["proxy", "-c", &conf, "-a", "127.0.0.1", "-s", "0"], 2).expect("proxy");
    drains_a_set_in_flight(p).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_drains_on_sigterm() {
    let s = spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "1"], 1).expect("cache");
    let cache = s.addr().to_string();
    let mut app = spawn_role(bin(), &["app", "--listen", "127.0.0.1:0", "--cache", &cache], 1).expect("app");
    let addr = app.addr();
    // A request whose head is only half sent when SIGTERM arrives.
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"GET /memcache?lookup=drain HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    sigterm(&app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after SIGTERM");
    c.write_all(b"Connection: close\r\n\r\n").await.expect("write the rest");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut reply)).await.expect("answered").expect("read");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("\"key\":\"drain\""), "{text}");
    let (code, took) = tokio::task::spawn_blocking(move || wait_exit(&mut app)).await.expect("wait");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(11), "took {took:?}");
}
