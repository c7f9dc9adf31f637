//! Connections over unix sockets (memcached's `-s PATH`): connect, pipelined
//! requests, the peer's path, a wrapped stream, and a path nobody listens on.

use memshard_client::{Client, ClientConfig, ClientError, Peer};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Answers every `version\r\n` in whatever it reads.
async fn answer_versions(mut s: UnixStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        while let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..at + 2).collect();
            out.extend_from_slice(if line == b"version\r\n" { b"VERSION 9.9\r\n" } else { b"ERROR\r\n" });
        }
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("memshard-client-{}-{name}.sock", std::process::id()))
}

#[tokio::test]
async fn requests_are_pipelined_over_a_unix_socket() {
    let path = socket_path("pipelined");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).expect("bind");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(answer_versions(s));
        }
    });
    let c = Client::connect_unix_with(&path, ClientConfig::default()).await.expect("connect");
    assert_eq!(c.peer(), &Peer::Unix(path.clone()));
    assert_eq!(c.peer_addr(), None);
    // Many tasks share the one connection: their requests are pipelined.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let c = c.clone();
        calls.spawn(async move { c.version().await });
    }
    while let Some(v) = calls.join_next().await {
        assert_eq!(v.expect("task").expect("version"), "9.9");
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_connected_unix_stream_can_be_wrapped() {
    let (ours, theirs) = UnixStream::pair().expect("pair");
    tokio::spawn(answer_versions(theirs));
    let c = Client::from_unix_stream(ours, ClientConfig::default()).expect("wrap");
    assert_eq!(c.version().await.expect("version"), "9.9");
}

#[tokio::test]
async fn a_path_nobody_listens_on_fails_with_the_os_error() {
    let path = socket_path("nobody");
    let _ = std::fs::remove_file(&path);
    match Client::connect_unix(&path).await {
        Err(ClientError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
        other => panic!("expected an i/o error, got {other:?}"),
    }
}
