//! TLS at every hop, as a user runs it: `memshard server -Z` with
//! memcached's flags, `memshard proxy` with TLS towards its clients and its
//! shards (memshard's and real `memcached -Z`), with certificates made here,
//! on loopback. Each refusal has its control: the same port, asked the
//! right way, answers.

use memshard_testkit::{ChildGuard, RoleProcess, free_port, peer_or_skip, spawn_role};
use memshard_tls::pki::{Pki, Usage};
use memshard_tls::{ClientStream, ClientTls, ClientTlsFiles, MinVersion};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_memshard"))
}

/// A CA and every certificate the tests use, in a folder removed at the end.
struct Certs {
    dir: tempfile::TempDir,
    ca: Pki,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Pki::new("test CA").expect("ca");
        ca.write_ca(&dir.path().join("ca.crt")).expect("ca.crt");
        let names = ["localhost", "127.0.0.1"];
        ca.issue(&names, Usage::Server).expect("issue").write(dir.path(), "server").expect("server");
        ca.issue(&names, Usage::Server).expect("issue").write(dir.path(), "proxy").expect("proxy");
        ca.issue(&["client"], Usage::Client).expect("issue").write(dir.path(), "client").expect("client");
        ca.issue_expired(&["client"], Usage::Client).expect("issue").write(dir.path(), "expired").expect("expired");
        let other = Pki::new("another CA").expect("other");
        other.issue(&["client"], Usage::Client).expect("issue").write(dir.path(), "stranger").expect("stranger");
        Certs { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A client trusting the CA, presenting `cert` (a stem: `client`,
    /// `stranger`, `expired`) or nothing.
    fn client(&self, cert: Option<&str>) -> ClientTls {
        let files = ClientTlsFiles {
            ca: self.path("ca.crt"),
            cert: cert.map(|c| self.path(&format!("{c}.crt"))),
            key: cert.map(|c| self.path(&format!("{c}.key"))),
            min_version: MinVersion::Tls12,
        };
        ClientTls::new(files, "test").expect("client config")
    }

    /// Makes `stem`'s certificate anew (a rotation): a new key and serial.
    fn rotate(&self, stem: &str) {
        let issued = self.ca.issue(&["localhost", "127.0.0.1"], Usage::Server).expect("issue");
        issued.write(self.dir.path(), stem).expect("rotate");
    }
}

/// `memshard server -Z` requiring client certificates from the CA.
fn tls_server(c: &Certs, extra: &[&str]) -> RoleProcess {
    let opts = format!(
        "ssl_chain_cert={},ssl_key={},ssl_ca_cert={},ssl_verify_mode=2",
        c.arg("server.crt"),
        c.arg("server.key"),
        c.arg("ca.crt")
    );
    let mut args = vec!["server", "-l", "127.0.0.1", "-p", "0", "-t", "2", "-Z", "-o", &opts];
    args.extend_from_slice(extra);
    spawn_role(bin(), &args, 1).expect("memshard server -Z starts")
}

/// A TLS connection, handshake done (bounded).
async fn tls(addr: SocketAddr, client: &ClientTls) -> std::io::Result<ClientStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio::time::timeout(Duration::from_secs(5), client.connect("localhost", tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timed out"))?
}

/// Sends `request` and reads until the reply ends with `end`.
async fn ask<S>(s: &mut S, request: &[u8], end: &[u8]) -> std::io::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    s.write_all(request).await?;
    s.flush().await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.ends_with(end) {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no complete reply"))??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Whether a mutual-TLS connection is refused: the handshake fails, or the
/// first request does (with TLS 1.3 the server checks the client's
/// certificate after the client considers the handshake done).
async fn refused(addr: SocketAddr, client: &ClientTls) -> bool {
    match tls(addr, client).await {
        Err(_) => true,
        Ok(mut s) => ask(&mut s, b"version\r\n", b"\r\n").await.is_err(),
    }
}

/// What a plaintext client sending a memcached command reads before the
/// connection ends (bounded).
async fn plaintext_reply(addr: SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"get foo\r\n").await.expect("write");
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "a plaintext client was neither answered nor closed within 5 s");
    got
}

/// The first certificate the server presented.
fn served_cert(s: &ClientStream<TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec()).unwrap_or_default()
}

fn stat(stats: &str, name: &str) -> u64 {
    let prefix = format!("STAT {name} ");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in stats"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_z_serves_its_ca_s_clients_and_refuses_every_other() {
    let c = Certs::new();
    let srv = tls_server(&c, &[]);
    let addr = srv.addr();

    // Control: a client of the CA stores and reads.
    let mut good = tls(addr, &c.client(Some("client"))).await.expect("a client of the CA connects");
    assert_eq!(ask(&mut good, b"set k 0 0 2\r\nhi\r\n", b"\r\n").await.expect("set"), "STORED\r\n");
    assert_eq!(ask(&mut good, b"get k\r\n", b"END\r\n").await.expect("get"), "VALUE k 0 2\r\nhi\r\nEND\r\n");

    // A plaintext memcached command gets a close, never an answer; the
    // same command over TLS (above) is answered.
    assert_eq!(plaintext_reply(addr).await, b"", "a plaintext client read bytes");
    assert!(refused(addr, &c.client(None)).await, "a client without a certificate got in");
    assert!(refused(addr, &c.client(Some("stranger"))).await, "another CA's client got in");
    assert!(refused(addr, &c.client(Some("expired"))).await, "an expired certificate got in");

    // Every failed handshake is counted, memcached's way.
    let stats = ask(&mut good, b"stats\r\n", b"END\r\n").await.expect("stats");
    assert!(stat(&stats, "ssl_handshake_errors") >= 4, "{stats}");
    let settings = ask(&mut good, b"stats settings\r\n", b"END\r\n").await.expect("stats settings");
    assert!(settings.contains("STAT ssl_enabled yes\r\n"), "{settings}");
    assert!(settings.contains("STAT ssl_verify_mode 2\r\n"), "{settings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_certs_and_sighup_serve_a_rotated_certificate_to_new_connections_only() {
    let c = Certs::new();
    let srv = tls_server(&c, &[]);
    let addr = srv.addr();
    let client = c.client(Some("client"));
    let mut old = tls(addr, &client).await.expect("connect");
    let first = served_cert(&old);

    // refresh_certs: new connections get the new certificate.
    c.rotate("server");
    assert_eq!(ask(&mut old, b"refresh_certs\r\n", b"\r\n").await.expect("refresh"), "OK\r\n");
    let second = served_cert(&tls(addr, &client).await.expect("connect after refresh"));
    assert_ne!(first, second, "refresh_certs did not take");
    // The established connection goes on.
    assert_eq!(ask(&mut old, b"version\r\n", b"\r\n").await.expect("still served").split(' ').next(), Some("VERSION"));

    // A broken key is refused with its reason, and the certificate in use stays.
    std::fs::write(c.path("server.key"), "not a key").expect("break the key");
    let reply = ask(&mut old, b"refresh_certs\r\n", b"\r\n").await.expect("refresh");
    assert!(reply.starts_with("Error loading the certificates: ") && reply.contains("server.key"), "{reply}");
    assert_eq!(served_cert(&tls(addr, &client).await.expect("connect")), second);

    // SIGHUP reloads too.
    c.rotate("server");
    let hup = std::process::Command::new("kill").args(["-HUP", &srv.child.id().to_string()]).status().expect("kill");
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = served_cert(&tls(addr, &client).await.expect("connect after SIGHUP"));
        if now != second {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload the certificates");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ask(&mut old, b"version\r\n", b"\r\n").await.is_ok(), "SIGHUP broke an established connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_watch_serves_a_renewed_certificate_without_a_signal() {
    let c = Certs::new();
    let client = c.client(Some("client"));
    // Control: without --tls-watch a changed file is not picked up by itself.
    let plain = tls_server(&c, &[]);
    let watching = tls_server(&c, &["--tls-watch"]);
    let before = served_cert(&tls(watching.addr(), &client).await.expect("connect"));
    c.rotate("server");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if served_cert(&tls(watching.addr(), &client).await.expect("connect")) != before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "--tls-watch never served the renewed certificate");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        served_cert(&tls(plain.addr(), &client).await.expect("connect")),
        before,
        "reloaded without being asked"
    );
}

#[test]
fn bad_tls_flags_exit_two_and_say_why() {
    let c = Certs::new();
    for (args, says) in [
        (vec!["-Z"], "ssl_chain_cert"),
        (vec!["-o", "ssl_chain_cert=/nonexistent.crt"], "need -Z"),
        (vec!["-Z", "-o", "ssl_chain_cert=/nonexistent.crt"], "/nonexistent.crt"),
        (vec!["-Z", "-o", "ssl_verify_mode=7"], "valid values"),
    ] {
        let out = std::process::Command::new(bin())
            .args(["server", "-l", "127.0.0.1", "-p", "0"])
            .args(&args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Control: the same files, right, start a server.
    let ok = tls_server(&c, &[]);
    assert!(ok.addrs.len() == 1);
}

/// A proxy pool file with TLS on both ends: mutual towards clients, and
/// towards `shards`, presenting its own certificate.
fn tls_pool(c: &Certs, shards: &[SocketAddr], server_tls: bool) -> String {
    let mut yaml = format!(
        "p:\n  listen: 127.0.0.1:0\n  timeout: 1000\n  tls_cert_file: {}\n  tls_key_file: {}\n  tls_client_ca_file: {}\n",
        c.arg("proxy.crt"),
        c.arg("proxy.key"),
        c.arg("ca.crt")
    );
    if server_tls {
        yaml.push_str(&format!(
            "  server_tls: true\n  server_tls_ca_file: {}\n  server_tls_cert_file: {}\n  server_tls_key_file: {}\n",
            c.arg("ca.crt"),
            c.arg("proxy.crt"),
            c.arg("proxy.key")
        ));
    }
    yaml.push_str("  servers:\n");
    for s in shards {
        yaml.push_str(&format!("   - {s}:1\n"));
    }
    yaml
}

/// The proxy on `yaml`, with its admin port (plain HTTP, as probes use it).
fn start_proxy(c: &Certs, yaml: &str) -> RoleProcess {
    let conf = c.path("pool.yml");
    std::fs::write(&conf, yaml).expect("pool file");
    let conf = conf.display().to_string();
    let args = ["proxy", "-c", &conf, "-a", "127.0.0.1", "-s", "0", "--workers", "2", "--admin", "127.0.0.1:0"];
    spawn_role(bin(), &args, 3).expect("proxy starts")
}

/// The proxy's `/metrics` (the admin port is the one of its addresses
/// answering `/healthz`).
async fn metrics(proxy: &RoleProcess) -> String {
    for a in &proxy.addrs[1..] {
        if memshard_testkit::http::get(*a, "/healthz").await.is_ok_and(|r| r.body.contains("\"ok\"")) {
            return memshard_testkit::http::get(*a, "/metrics").await.expect("metrics").body;
        }
    }
    panic!("no admin port among {:?}", proxy.addrs)
}

/// A sample's value in an exposition.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Sets and reads back `n` keys through `s`, each answer checked. The keys
/// are pseudo-random: twemproxy's fnv1a_64 puts keys that differ only in a
/// short counter on one or two servers.
async fn set_get<S>(s: &mut S, tag: &str, n: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for i in 0..n as u64 {
        let mixed = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        let (k, v) = (format!("{tag}-{mixed:016x}"), format!("v{i}"));
        let set = format!("set {k} 0 0 {}\r\n{v}\r\n", v.len());
        assert_eq!(ask(s, set.as_bytes(), b"\r\n").await.expect("set"), "STORED\r\n", "{k}");
        let want = format!("VALUE {k} 0 {}\r\n{v}\r\nEND\r\n", v.len());
        assert_eq!(ask(s, format!("get {k}\r\n").as_bytes(), b"END\r\n").await.expect("get"), want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_speaks_mutual_tls_at_both_ends_and_rotates_its_certificate_from_the_file() {
    let c = Certs::new();
    let shards = [tls_server(&c, &[]), tls_server(&c, &[])];
    let addrs: Vec<SocketAddr> = shards.iter().map(RoleProcess::addr).collect();
    let proxy = start_proxy(&c, &tls_pool(&c, &addrs, true));
    let addr = proxy.addr();
    let client = c.client(Some("client"));

    // Every hop encrypted: the shards take only mutual-TLS clients, and the
    // client's keys reach both of them through the proxy.
    let mut old = tls(addr, &client).await.expect("a client of the CA connects");
    set_get(&mut old, "both-ends", 40).await;
    for shard in &shards {
        let mut direct = tls(shard.addr(), &client).await.expect("shard");
        let stats = ask(&mut direct, b"stats\r\n", b"END\r\n").await.expect("stats");
        assert!(stat(&stats, "curr_items") > 0, "a shard got no key: {stats}");
        assert_eq!(plaintext_reply(shard.addr()).await, b"", "a shard answered plaintext");
    }

    // The proxy's own port: plaintext closed, no certificate or another CA refused.
    assert_eq!(plaintext_reply(addr).await, b"");
    assert!(refused(addr, &c.client(None)).await, "a client without a certificate got in");
    assert!(refused(addr, &c.client(Some("stranger"))).await, "another CA's client got in");
    assert!(refused(addr, &c.client(Some("expired"))).await, "an expired certificate got in");

    // The file changes (as a Secret's does): new connections get the new
    // certificate within a few polls, the old connection goes on.
    let before = served_cert(&old);
    c.rotate("proxy");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = tls(addr, &client).await.expect("connect during the rotation");
        if served_cert(&s) != before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the rotated certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    set_get(&mut old, "after-rotation", 5).await;

    // Operators see it: handshakes and refusals per side, the reload.
    let m = metrics(&proxy).await;
    assert!(sample(&m, "memshard_proxy_tls_handshake_errors_total{pool=\"p\",side=\"clients\"}") >= 4.0, "{m}");
    assert!(sample(&m, "memshard_proxy_tls_handshakes_total{pool=\"p\",side=\"servers\"}") >= 2.0, "{m}");
    assert_eq!(sample(&m, "memshard_proxy_tls_reloads_total{pool=\"p\",side=\"clients\",outcome=\"ok\"}"), 1.0, "{m}");

    // SIGHUP reads every file again, changed or not (the watch reloads only
    // changed ones, so a count that moves with no change is the signal's).
    let hup = std::process::Command::new("kill").args(["-HUP", &proxy.child.id().to_string()]).status().expect("kill");
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(&proxy).await;
        let reloads = |side: &str| {
            sample(&m, &format!("memshard_proxy_tls_reloads_total{{pool=\"p\",side=\"{side}\",outcome=\"ok\"}}"))
        };
        // (The proxy's certificate is also what it presents to the shards:
        // the rotation above reloaded both sides once.)
        if reloads("clients") == 2.0 && reloads("servers") == 2.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload the certificates:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set_get(&mut old, "after-sighup", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_handshakes_never_block_other_clients_nor_grow_memory() {
    let c = Certs::new();
    let srv = tls_server(&c, &[]);
    let proxy = start_proxy(&c, &tls_pool(&c, &[srv.addr()], true));
    let client = c.client(Some("client"));
    for (what, target, pid) in [("server", srv.addr(), srv.child.id()), ("proxy", proxy.addr(), proxy.child.id())] {
        let mut good = tls(target, &client).await.expect("connect");
        set_get(&mut good, &format!("warm-{what}"), 20).await;
        let rss = || memshard_testkit::rss_bytes(pid).expect("rss");
        let baseline = rss();

        // Held open while a good client works: stalled before a byte, stalled
        // mid-hello (a record header and a few bytes), and garbage.
        let mut hostile = Vec::new();
        for i in 0..150 {
            let mut s = TcpStream::connect(target).await.expect("connect");
            match i % 3 {
                0 => {}
                1 => s.write_all(&[22, 3, 1, 0x02, 0x00, 1, 0, 1]).await.expect("partial hello"),
                _ => s.write_all(b"\x00\xffGARBAGE\r\n\x16\x03").await.expect("garbage"),
            }
            hostile.push(s);
        }
        // The good client, and a new one, are served meanwhile.
        set_get(&mut good, &format!("during-{what}"), 50).await;
        let mut fresh = tls(target, &client).await.expect("a new client connects among the hostile ones");
        set_get(&mut fresh, &format!("fresh-{what}"), 10).await;
        // Control: the stalled handshakes are really held (not closed at once).
        let mut open = 0;
        for s in hostile.iter().step_by(3) {
            let mut b = [0u8; 1];
            if tokio::time::timeout(Duration::from_millis(20), s.peek(&mut b)).await.is_err() {
                open += 1;
            }
        }
        assert!(open >= 40, "only {open} of 50 stalled handshakes were still open");

        // Waves of refused handshakes (plaintext commands, garbage, bad
        // certificates) leave memory where it was: whatever the first waves
        // leave in the allocator's pools, the later ones add nothing to.
        let mut warm = 0;
        for wave in 0..20 {
            if wave == 5 {
                warm = rss();
            }
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..50 {
                let stranger = (i % 5 == 0).then(|| c.client(Some("stranger")));
                tasks.spawn(async move {
                    match stranger {
                        Some(bad) => {
                            let _ = refused(target, &bad).await;
                        }
                        None => {
                            if let Ok(mut s) = TcpStream::connect(target).await {
                                // A plaintext command, or a handshake record holding no valid message.
                                let bytes: &[u8] =
                                    if i % 2 == 0 { b"get foo\r\n" } else { &[22, 3, 1, 0, 4, 0xff, 0xff, 0xff, 0xff] };
                                let _ = s.write_all(bytes).await;
                                let mut sink = Vec::new();
                                let _ = tokio::time::timeout(Duration::from_secs(12), s.read_to_end(&mut sink)).await;
                            }
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            assert!(ask(&mut good, b"version\r\n", b"\r\n").await.is_ok(), "wave {wave} cut the good client off");
        }
        drop(hostile);
        let now = rss();
        let (grown, late) = (now.saturating_sub(baseline), now.saturating_sub(warm));
        assert!(grown < 16 << 20, "{what}: RSS grew by {} KiB over 1 000 refused handshakes", grown >> 10);
        assert!(late < 4 << 20, "{what}: RSS grew by {} KiB over the last 750 refused handshakes", late >> 10);
    }
    // Control for the memory check: the same reading sees 12 MiB of items
    // arrive on the server.
    let before = memshard_testkit::rss_bytes(srv.child.id()).expect("rss");
    let mut good = tls(srv.addr(), &client).await.expect("connect");
    let value = vec![b'x'; 1000 << 10];
    for i in 0..12 {
        let cmd =
            [format!("set big{i} 0 0 {}\r\n", value.len()).into_bytes(), value.clone(), b"\r\n".to_vec()].concat();
        assert_eq!(ask(&mut good, &cmd, b"\r\n").await.expect("set"), "STORED\r\n");
    }
    let after = memshard_testkit::rss_bytes(srv.child.id()).expect("rss");
    assert!(after > before + (8 << 20), "the RSS reading did not see 12 MiB of items arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_closed_after_its_deadline() {
    let c = Certs::new();
    let srv = tls_server(&c, &[]);
    let mut stalled = TcpStream::connect(srv.addr()).await.expect("connect");
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "a connection that never said hello was held for 20 s");
    // Control: it was held for a while, not dropped at once.
    assert!(started.elapsed() >= Duration::from_secs(5), "closed after {:?}", started.elapsed());
    assert!(sink.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_speaks_tls_to_real_memcached_z_shards() {
    let Some(memcached) = peer_or_skip("memcached") else { return };
    let c = Certs::new();
    let opts = format!(
        "ssl_chain_cert={},ssl_key={},ssl_ca_cert={},ssl_verify_mode=2",
        c.arg("server.crt"),
        c.arg("server.key"),
        c.arg("ca.crt")
    );
    let port = free_port().expect("port");
    let mc_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = std::process::Command::new(memcached)
        .args(["-u", "root", "-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-t", "1", "-Z", "-o", &opts])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("memcached -Z");
    let _mc = ChildGuard::new(child);
    let client = c.client(Some("client"));
    // memcached's own TLS, checked by our client: the peer really is TLS.
    let mut direct = None;
    for _ in 0..100 {
        if let Ok(s) = tls(mc_addr, &client).await {
            direct = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut direct = direct.expect("memcached -Z takes our client");
    assert!(ask(&mut direct, b"version\r\n", b"\r\n").await.expect("version").starts_with("VERSION "));

    let proxy = start_proxy(&c, &tls_pool(&c, &[mc_addr], true));
    let mut s = tls(proxy.addr(), &client).await.expect("connect to the proxy");
    set_get(&mut s, "via-memcached", 20).await;
    let stats = ask(&mut direct, b"stats\r\n", b"END\r\n").await.expect("stats");
    assert!(stat(&stats, "curr_items") >= 20, "{stats}");

    // Control: without `server_tls` the same shard refuses the proxy.
    drop(proxy);
    let plain = start_proxy(&c, &tls_pool(&c, &[mc_addr], false));
    let mut s = tls(plain.addr(), &client).await.expect("connect");
    let reply = ask(&mut s, b"get via-memcached\r\n", b"\r\n").await.expect("an answer");
    assert!(reply.starts_with("SERVER_ERROR"), "a plaintext proxy got through to memcached -Z: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_tls_on_for_new_clients_and_a_missing_file_keeps_the_running_config() {
    let c = Certs::new();
    let shard = spawn_role(bin(), &["server", "-l", "127.0.0.1", "-p", "0", "-t", "1"], 1).expect("shard");
    let plain = format!("p:\n  listen: 127.0.0.1:0\n  timeout: 1000\n  servers:\n   - {}:1\n", shard.addr());
    let proxy = start_proxy(&c, &plain);
    let addr = proxy.addr();
    let mut old = TcpStream::connect(addr).await.expect("plaintext client");
    set_get(&mut old, "plain", 5).await;

    // The pool file asks for TLS with a certificate that is not there: the
    // reload is refused, the proxy goes on in plaintext.
    // The same `listen` text: the listener (and its clients) stay.
    let listen = "listen: 127.0.0.1:0";
    let broken = format!(
        "p:\n  {listen}\n  timeout: 1000\n  tls_cert_file: {}\n  servers:\n   - {}:1\n",
        c.arg("missing.crt"),
        shard.addr()
    );
    std::fs::write(c.path("pool.yml"), &broken).expect("write");
    let hup = |p: &RoleProcess| {
        let ok = std::process::Command::new("kill").args(["-HUP", &p.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
    };
    hup(&proxy);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if metrics(&proxy).await.contains("memshard_proxy_config_reloads_total{outcome=\"failure\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the broken reload was never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut still = TcpStream::connect(addr).await.expect("connect");
    set_get(&mut still, "still-plain", 3).await;

    // The right file: new clients must speak TLS, the old one goes on.
    let good = format!(
        "p:\n  {listen}\n  timeout: 1000\n  tls_cert_file: {}\n  tls_key_file: {}\n  servers:\n   - {}:1\n",
        c.arg("proxy.crt"),
        c.arg("proxy.key"),
        shard.addr()
    );
    std::fs::write(c.path("pool.yml"), &good).expect("write");
    hup(&proxy);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        if let Ok(s) = tls(addr, &c.client(None)).await {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "TLS never came on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    set_get(&mut s, "now-tls", 5).await;
    assert_eq!(plaintext_reply(addr).await, b"", "a new plaintext client was answered");
    set_get(&mut old, "old-plain", 5).await;
}

#[test]
fn proxy_t_loads_the_tls_files_a_start_would() {
    let c = Certs::new();
    let check = |yaml: &str| {
        let conf = c.path("check.yml");
        std::fs::write(&conf, yaml).expect("write");
        let out = std::process::Command::new(bin()).args(["proxy", "-t", "-c"]).arg(&conf).output().expect("run");
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let good = tls_pool(&c, &["127.0.0.1:11211".parse().expect("addr")], true);
    let (code, text) = check(&good);
    assert_eq!(code, Some(0), "{text}");
    let broken = good.replace(&c.arg("proxy.key"), &c.arg("nonexistent.key"));
    let (code, text) = check(&broken);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("nonexistent.key"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_speaks_mutual_tls_to_the_proxy_when_told() {
    let c = Certs::new();
    let shard = tls_server(&c, &[]);
    let proxy = start_proxy(&c, &tls_pool(&c, &[shard.addr()], true));
    let cache = proxy.addr().to_string();
    let (ca, cert, key) = (c.arg("ca.crt"), c.arg("client.crt"), c.arg("client.key"));
    let app = |extra: &[&str]| {
        let mut args = vec!["app", "--listen", "127.0.0.1:0", "--cache", &cache, "--request-timeout", "1000"];
        args.extend_from_slice(extra);
        spawn_role(bin(), &args, 1).expect("app starts")
    };
    let with_cert = app(&["--cache-tls-ca", &ca, "--cache-tls-cert", &cert, "--cache-tls-key", &key]);
    let first = memshard_testkit::http::get(with_cert.addr(), "/memcache?lookup=tls-key").await.expect("lookup");
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.body.contains("\"hit\":false"), "{first:?}");
    let second = memshard_testkit::http::get(with_cert.addr(), "/memcache?lookup=tls-key").await.expect("lookup");
    assert!(second.body.contains("\"hit\":true"), "{second:?}");

    // Controls: without its certificate, or in plaintext, the app cannot
    // reach the cache, and says so.
    for extra in [&["--cache-tls-ca", ca.as_str()][..], &[]] {
        let refused = app(extra);
        let r = memshard_testkit::http::get(refused.addr(), "/memcache?lookup=tls-key").await.expect("lookup");
        assert_eq!(r.status, 503, "{extra:?}: {r:?}");
    }

    // A file that does not load stops the start with its name.
    let out = std::process::Command::new(bin())
        .args(["app", "--listen", "127.0.0.1:0", "--cache", &cache, "--cache-tls-ca"])
        .arg(c.path("nonexistent-ca.crt"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent-ca.crt"));
}
