//! Runs the external-suite scripts against real memcached, proving that the
//! scripts themselves work (and fail) as documented before they are pointed
//! at memshard.

use memshard_testkit::{peer_or_skip, spawn_memcached};
use std::path::PathBuf;
use std::process::Command;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

fn run(name: &str, port: u16) -> (bool, String) {
    let out =
        Command::new("bash").arg(script(name)).args(["127.0.0.1", &port.to_string()]).output().expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn memccapable_passes_on_real_memcached() {
    if peer_or_skip("memcached").is_none() || peer_or_skip("memccapable").is_none() {
        return;
    }
    let server = spawn_memcached(&["-t", "1", "-m", "64"]).unwrap();
    let (ok, text) = run("memccapable.sh", server.port());
    assert!(ok, "{text}");
    assert!(text.contains("memccapable -a: 27 passed, 0 failed"), "{text}");
    assert!(text.contains("memccapable -b: 27 passed, 0 failed"), "{text}");
}

#[test]
fn memccapable_fails_without_a_server() {
    if peer_or_skip("memccapable").is_none() {
        return;
    }
    // A port nobody listens on: memccapable itself would exit 0 here.
    let port = memshard_testkit::free_port().unwrap();
    let (ok, text) = run("memccapable.sh", port);
    assert!(!ok, "{text}");
}

/// Needs PyPI access on first run to build the cached virtualenv.
#[test]
#[ignore = "installs pymemcache from PyPI into a cached virtualenv; run with --ignored"]
fn pymemcache_passes_on_real_memcached() {
    if peer_or_skip("memcached").is_none() || peer_or_skip("python3").is_none() {
        return;
    }
    let server = spawn_memcached(&["-t", "1", "-m", "64"]).unwrap();
    let (ok, text) = run("pymemcache.sh", server.port());
    assert!(ok, "{text}");
    assert!(text.contains(" passed"), "{text}");
}

/// Needs PyPI access on first run (and libmemcached-dev) to build the cached
/// virtualenv.
#[test]
#[ignore = "builds pylibmc from its sdist into a cached virtualenv; run with --ignored"]
fn pylibmc_passes_on_real_memcached() {
    if peer_or_skip("memcached").is_none() || peer_or_skip("python3").is_none() {
        return;
    }
    let server = spawn_memcached(&["-t", "1", "-m", "64"]).unwrap();
    let (ok, text) = run("pylibmc.sh", server.port());
    assert!(ok, "{text}");
    assert!(text.contains(" passed"), "{text}");
}
