//! Handshakes between the two sides on loopback, with certificates made
//! here: mutual TLS refuses what it must, a reload serves the new
//! certificate to new connections while old ones go on, and a failed
//! reload keeps the old configuration.

use memshard_tls::pki::{Pki, Usage};
use memshard_tls::{ClientAuth, ClientTls, ClientTlsFiles, MinVersion, ServerTls, ServerTlsFiles, TlsStats};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    ca: Pki,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let ca = Pki::new("test CA").expect("ca");
    ca.write_ca(&path.join("ca.crt")).expect("write ca");
    ca.issue(&["localhost", "127.0.0.1"], Usage::Server).expect("server").write(&path, "server").expect("write");
    ca.issue(&["client"], Usage::Client).expect("client").write(&path, "client").expect("write");
    Setup { _dir: dir, dir: path, ca }
}

fn server_files(dir: &Path, auth: ClientAuth) -> ServerTlsFiles {
    ServerTlsFiles {
        cert: dir.join("server.crt"),
        key: Some(dir.join("server.key")),
        client_ca: Some(dir.join("ca.crt")),
        client_auth: auth,
        min_version: MinVersion::Tls12,
    }
}

fn client(dir: &Path, cert: Option<&str>) -> ClientTls {
    let files = ClientTlsFiles {
        ca: dir.join("ca.crt"),
        cert: cert.map(|c| dir.join(format!("{c}.crt"))),
        key: cert.map(|c| dir.join(format!("{c}.key"))),
        min_version: MinVersion::Tls12,
    };
    ClientTls::new(files, "test client").expect("client config")
}

/// An echo server over TLS: answers each line with itself.
async fn echo(tls: Arc<ServerTls>) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let Some(mut s) = tls.accept(s, || "test peer".into()).await else { return };
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() || s.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Connects, says hello, returns the echo and the serial of the server's certificate.
async fn hello(c: &ClientTls, addr: std::net::SocketAddr) -> std::io::Result<(String, Vec<u8>)> {
    let tcp = TcpStream::connect(addr).await?;
    let mut s = tokio::time::timeout(Duration::from_secs(5), c.connect("localhost", tcp)).await??;
    s.write_all(b"hello\r\n").await?;
    s.flush().await?;
    let mut buf = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await??;
    let cert =
        s.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec()).unwrap_or_default();
    Ok((String::from_utf8_lossy(&buf).into_owned(), cert))
}

#[tokio::test]
async fn mutual_tls_admits_the_ca_s_clients_only() {
    let s = setup();
    let tls = Arc::new(ServerTls::new(server_files(&s.dir, ClientAuth::Required), "test").expect("server config"));
    let addr = echo(tls.clone()).await;

    // Control: a client with a certificate from the CA gets its echo.
    let (echoed, _) = hello(&client(&s.dir, Some("client")), addr).await.expect("a client of the CA");
    assert_eq!(echoed, "hello\r\n");

    // No certificate: refused.
    assert!(hello(&client(&s.dir, None), addr).await.is_err(), "a client without a certificate got in");

    // A certificate from another CA: refused.
    let other = Pki::new("other CA").expect("other ca");
    other.issue(&["client"], Usage::Client).expect("issue").write(&s.dir, "stranger").expect("write");
    assert!(hello(&client(&s.dir, Some("stranger")), addr).await.is_err(), "another CA's client got in");

    // An expired certificate from the right CA: refused.
    s.ca.issue_expired(&["client"], Usage::Client).expect("issue").write(&s.dir, "expired").expect("write");
    assert!(hello(&client(&s.dir, Some("expired")), addr).await.is_err(), "an expired certificate got in");

    // The server saw one good handshake and three refused ones (the client's
    // side of the refusal can finish first: wait for the count).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while TlsStats::get(&tls.stats().handshake_errors) < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(TlsStats::get(&tls.stats().handshakes), 1);
    assert_eq!(TlsStats::get(&tls.stats().handshake_errors), 3);
}

#[tokio::test]
async fn optional_client_auth_admits_clients_without_a_certificate_but_not_bad_ones() {
    let s = setup();
    let tls = Arc::new(ServerTls::new(server_files(&s.dir, ClientAuth::Optional), "test").expect("server config"));
    let addr = echo(tls).await;
    assert!(hello(&client(&s.dir, None), addr).await.is_ok(), "no certificate is fine when only requested");
    let other = Pki::new("other CA").expect("other ca");
    other.issue(&["client"], Usage::Client).expect("issue").write(&s.dir, "stranger").expect("write");
    assert!(hello(&client(&s.dir, Some("stranger")), addr).await.is_err(), "a bad certificate is still refused");
}

#[tokio::test]
async fn a_client_refuses_a_server_of_another_ca_or_another_name() {
    let s = setup();
    let tls = Arc::new(ServerTls::new(server_files(&s.dir, ClientAuth::None), "test").expect("server config"));
    let addr = echo(tls).await;
    let c = client(&s.dir, None);
    assert!(hello(&c, addr).await.is_ok(), "control: the right CA and name");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    assert!(c.connect("elsewhere.example", tcp).await.is_err(), "a certificate for another name was accepted");
    let other = Pki::new("other CA").expect("other ca");
    other.write_ca(&s.dir.join("other-ca.crt")).expect("write");
    let stranger = ClientTls::new(
        ClientTlsFiles { ca: s.dir.join("other-ca.crt"), cert: None, key: None, min_version: MinVersion::Tls12 },
        "test",
    )
    .expect("config");
    assert!(hello(&stranger, addr).await.is_err(), "a server of another CA was trusted");
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_and_old_ones_go_on() {
    let s = setup();
    let tls = Arc::new(ServerTls::new(server_files(&s.dir, ClientAuth::None), "test").expect("server config"));
    let addr = echo(tls.clone()).await;
    let c = client(&s.dir, None);

    // An established connection, and the certificate it saw.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut old = c.connect("localhost", tcp).await.expect("handshake");
    let before = old.get_ref().1.peer_certificates().expect("certs")[0].as_ref().to_vec();

    s.ca.issue(&["localhost", "127.0.0.1"], Usage::Server).expect("issue").write(&s.dir, "server").expect("rotate");
    assert!(tls.changed(), "the watcher's check sees the new files");
    tls.reload().expect("reload");
    assert!(!tls.changed());

    let (_, after) = hello(&c, addr).await.expect("a new connection");
    assert_ne!(before, after, "a new connection still got the old certificate");
    // The established connection goes on.
    old.write_all(b"still\r\n").await.expect("write");
    old.flush().await.expect("flush");
    let mut buf = [0u8; 7];
    old.read_exact(&mut buf).await.expect("the old connection still answers");
    assert_eq!(&buf, b"still\r\n");

    // A broken file is refused and the certificate in use stays.
    std::fs::write(s.dir.join("server.key"), b"not a key").expect("break");
    let e = tls.reload().expect_err("a broken key must not load");
    assert!(e.to_string().contains("server.key"), "{e}");
    let (_, still) = hello(&c, addr).await.expect("still serving");
    assert_eq!(still, after);
    assert_eq!(TlsStats::get(&tls.stats().reloads), 1);
    assert_eq!(TlsStats::get(&tls.stats().reload_errors), 1);
}

// The waits below block their thread: the watcher runs on the other one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_on_change_and_retries_a_failed_change_only_when_the_files_change_again() {
    let s = setup();
    let tls = Arc::new(ServerTls::new(server_files(&s.dir, ClientAuth::None), "test").expect("server config"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let items: Vec<Arc<dyn memshard_tls::watch::Reload>> = vec![tls.clone()];
    let watcher = tokio::spawn(memshard_tls::watch::run(items, Duration::from_millis(20), async move {
        let _ = stop_rx.await;
    }));
    let wait_for = |what: &'static str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    std::fs::write(s.dir.join("server.key"), b"half written").expect("break");
    wait_for("a failed reload", &|| TlsStats::get(&tls.stats().reload_errors) == 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(TlsStats::get(&tls.stats().reload_errors), 1, "an unchanged broken file is tried once");
    s.ca.issue(&["localhost"], Usage::Server).expect("issue").write(&s.dir, "server").expect("fix");
    wait_for("the reload", &|| TlsStats::get(&tls.stats().reloads) == 1);
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), watcher).await.expect("the watcher stops").expect("join");
}

#[tokio::test]
async fn both_sides_agree_on_x25519_without_a_retry() {
    let s = setup();
    let tls = Arc::new(ServerTls::new(server_files(&s.dir, ClientAuth::None), "test").expect("server config"));
    let addr = echo(tls).await;
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let c = client(&s.dir, None).connect("localhost", tcp).await.expect("handshake");
    let group = c.get_ref().1.negotiated_key_exchange_group().map(|g| g.name());
    assert_eq!(group, Some(rustls::NamedGroup::X25519), "P-384 costs ten times as much per connection");
}
