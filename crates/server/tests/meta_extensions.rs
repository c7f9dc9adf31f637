//! Meta flags memshard implements beyond memcached 1.6.18 (from later
//! releases' protocol.txt): `E` (explicit CAS), ms `S`/`s`, md `x`.

use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `req` and reads until the reply ends with `until`.
async fn ask(s: &mut TcpStream, req: &[u8], until: &[u8]) -> String {
    s.write_all(req).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(until) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).expect("utf8")
}

#[tokio::test]
async fn explicit_cas_size_and_clear_value() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let server = tokio::spawn(run(listener, ServerConfig::default(), shutdown));
    let mut s = TcpStream::connect(addr).await.expect("connect");

    // ms E sets the stored item's CAS; c returns it; s returns the size.
    assert_eq!(ask(&mut s, b"ms a 3 E12345 c s\r\nabc\r\n", b"\r\n").await, "HD c12345 s3\r\n");
    assert_eq!(ask(&mut s, b"mg a c v\r\n", b"abc\r\n").await, "VA 3 c12345\r\nabc\r\n");
    // Append reports the new total size.
    assert_eq!(ask(&mut s, b"ms a 2 MA s\r\nde\r\n", b"\r\n").await, "HD s5\r\n");
    // S must agree with the data length.
    assert_eq!(
        ask(&mut s, b"ms a 2 S3\r\nxy\r\nmn\r\n", b"MN\r\n").await,
        "CLIENT_ERROR bad command line format\r\nMN\r\n"
    );
    // mg vivify with E: the created item carries the given CAS.
    assert_eq!(ask(&mut s, b"mg v N30 E777 c\r\n", b"\r\n").await, "HD c777 W\r\n");
    // ma E: the result carries the given CAS.
    assert_eq!(ask(&mut s, b"ma n N0 J10 E4242 c v\r\n", b"\r\n10\r\n").await, "VA 2 c4242\r\n10\r\n");
    // md x clears the value but keeps the item (and its key).
    assert_eq!(ask(&mut s, b"md a x\r\n", b"\r\n").await, "HD\r\n");
    assert_eq!(ask(&mut s, b"mg a s v\r\n", b"\r\n\r\n").await, "VA 0 s0\r\n\r\n");
    // md E with I: the invalidated item gets the given CAS and is stale.
    assert_eq!(ask(&mut s, b"md v I E900\r\n", b"\r\n").await, "HD\r\n");
    assert_eq!(ask(&mut s, b"mg v c\r\n", b"\r\n").await, "HD c900 X W\r\n");

    trigger.trigger();
    drop(s);
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
}
