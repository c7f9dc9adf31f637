//! Peer discovery and spawning.

use memshard_testkit::peer::{find_peer, peer_or_skip, require_peers, spawn_memcached};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

#[test]
fn missing_peer_skips_or_panics_by_policy() {
    let result = std::panic::catch_unwind(|| peer_or_skip("no-such-memshard-peer"));
    if require_peers() {
        assert!(result.is_err(), "MEMSHARD_REQUIRE_PEERS=1 must turn a skip into a failure");
    } else {
        assert_eq!(result.unwrap(), None);
    }
}

#[test]
fn spawned_memcached_answers_and_dies_with_its_guard() {
    if peer_or_skip("memcached").is_none() {
        return;
    }
    assert!(find_peer("memcached").is_some());
    let server = spawn_memcached(&["-t", "1"]).unwrap();
    let pid = server.pid();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.write_all(b"version\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"VERSION "), "{:?}", &buf[..n]);
    drop(server);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "memcached {pid} survived");
}

#[test]
fn two_memcacheds_get_distinct_ports() {
    if peer_or_skip("memcached").is_none() {
        return;
    }
    let a = spawn_memcached(&[]).unwrap();
    let b = spawn_memcached(&[]).unwrap();
    assert_ne!(a.port(), b.port());
}
