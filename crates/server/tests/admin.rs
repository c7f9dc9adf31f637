//! memcached's operator commands against memshard server: `me`, `watch`,
//! `stats conns`/`detail`/`cachedump`, `lru_crawler metadump`, the tunables
//! that `stats settings` reports, `shutdown` and `version`.

use memshard_net::ShutdownTrigger;
use memshard_server::{ServerConfig, run};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

async fn start(cfg: ServerConfig) -> (SocketAddr, ShutdownTrigger, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let task = tokio::spawn(async move {
        run(listener, cfg, shutdown).await.expect("server runs");
    });
    (addr, trigger, task)
}

fn one_thread() -> ServerConfig {
    ServerConfig { threads: 1, ..ServerConfig::default() }
}

/// Sends `req` and reads until the reply ends with `until`.
async fn ask(s: &mut TcpStream, req: &[u8], until: &str) -> String {
    s.write_all(req).await.expect("write");
    read_until(s, until).await
}

async fn read_until(s: &mut TcpStream, until: &str) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.ends_with(until.as_bytes()) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in time; got {:?}", String::from_utf8_lossy(&buf)))
            .expect("read");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).expect("utf8")
}

fn stat<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    reply.lines().find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_as_memcached_and_version_is_one_token() {
    let (addr, trigger, _task) = start(one_thread()).await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut c, b"version\r\n", "\r\n").await, "VERSION 1.6.18\r\n");
    assert_eq!(ask(&mut c, b"me nope\r\n", "\r\n").await, "EN\r\n");
    ask(&mut c, b"set k 0 0 1\r\nx\r\nset t 3 100 10\r\n0123456789\r\n", "STORED\r\nSTORED\r\n").await;
    let cas = ask(&mut c, b"gets k\r\n", "END\r\n").await;
    let cas = cas.split_whitespace().nth(4).expect("cas");
    // 1-byte key and value: 61 bytes, class 1; `me` does not fetch.
    assert_eq!(
        ask(&mut c, b"me k\r\n", "\r\n").await,
        format!("ME k exp=-1 la=0 cas={cas} fetch=yes cls=1 size=61\r\n")
    );
    // exp is now minus the expiry: -100 for an item with 100 s to live.
    let me = ask(&mut c, b"me t\r\n", "\r\n").await;
    assert!(me.starts_with("ME t exp=-100 la=0 cas="), "{me}");
    assert!(me.ends_with(" fetch=no cls=1 size=74\r\n"), "{me}");
    // The base64 form: key "k".
    assert!(ask(&mut c, b"me aw== b\r\n", "\r\n").await.starts_with("ME k exp=-1"));
    let stats = ask(&mut c, b"stats\r\n", "END\r\n").await;
    assert_eq!(stat(&stats, "version"), Some("1.6.18"));
    assert_eq!(stat(&stats, "memshard_version"), Some(env!("CARGO_PKG_VERSION")));
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_fetches_and_stores_with_the_connections_descriptor() {
    let (addr, trigger, _task) = start(one_thread()).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let conns = ask(&mut client, b"stats conns\r\n", "END\r\n").await;
    // The asking connection is the last one listed, in conn_parse_cmd.
    let last = conns.lines().rfind(|l| l.contains(":state ")).expect("a state line");
    assert!(last.ends_with("conn_parse_cmd"), "{conns}");
    assert!(conns.contains(":state conn_listening"), "{conns}");
    let cfd: String = last.split(':').next().expect("fd").chars().filter(char::is_ascii_digit).collect();

    let mut watcher = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut watcher, b"watch fetchers mutations\r\n", "OK\r\n").await, "OK\r\n");
    // The watcher shows up as such.
    let conns = ask(&mut client, b"stats conns\r\n", "END\r\n").await;
    assert!(conns.contains(":state conn_watch"), "{conns}");
    client.write_all(b"set foo 0 0 5 noreply\r\nhello\r\nget foo\r\n").await.expect("write");
    read_until(&mut client, "END\r\n").await;
    let lines = read_until(&mut watcher, "\n").await;
    let mut lines: Vec<String> = lines.lines().map(str::to_string).collect();
    while lines.len() < 3 {
        lines.extend(read_until(&mut watcher, "\n").await.lines().map(str::to_string));
    }
    assert!(
        lines[0].contains(&format!("type=item_get key=foo status=not_found clsid=0 cfd={cfd} size=0")),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(&format!("type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd={cfd} size=5")),
        "{lines:?}"
    );
    assert!(lines[2].contains(&format!("type=item_get key=foo status=found clsid=1 cfd={cfd} size=5")), "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with("ts=")), "{lines:?}");
    // Commands pipelined before `watch` are answered first.
    let mut other = TcpStream::connect(addr).await.expect("connect");
    let r = ask(&mut other, b"mn\r\nget nope\r\nwatch\r\n", "OK\r\n").await;
    assert_eq!(r, "MN\r\nEND\r\nOK\r\n");
    let stats = ask(&mut client, b"stats\r\n", "END\r\n").await;
    assert_eq!(stat(&stats, "log_watchers"), Some("2"));
    drop(watcher);
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_stats_cachedump_and_metadump() {
    let (addr, trigger, _task) = start(one_thread()).await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut c, b"stats detail\r\n", "\r\n").await, "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
    assert_eq!(ask(&mut c, b"stats detail dump\r\n", "END\r\n").await, "END\r\n");
    ask(&mut c, b"stats detail on\r\n", "OK\r\n").await;
    ask(&mut c, b"set user:1 0 0 2\r\nab\r\nget user:1 user:2\r\ndelete user:3\r\n", "NOT_FOUND\r\n").await;
    assert_eq!(
        ask(&mut c, b"stats detail dump\r\n", "END\r\n").await,
        "PREFIX user get 2 hit 1 set 1 del 1\r\nEND\r\n"
    );
    let dump = ask(&mut c, b"stats cachedump 1 0\r\n", "END\r\n").await;
    assert!(dump.starts_with("ITEM user:1 [2 b; "), "{dump}");
    assert_eq!(ask(&mut c, b"stats cachedump 1\r\n", "\r\n").await, "CLIENT_ERROR bad command line\r\n");
    assert_eq!(ask(&mut c, b"stats cachedump 99 0\r\n", "\r\n").await, "CLIENT_ERROR Illegal slab id\r\n");
    let meta = ask(&mut c, b"lru_crawler metadump all\r\n", "END\r\n").await;
    assert!(meta.starts_with("key=user%3A1 exp=-1 la="), "{meta}");
    assert!(meta.contains(" fetch=yes cls=1 size=67\n"), "{meta}");
    assert_eq!(ask(&mut c, b"lru_crawler metadump 99\r\n", "\r\n").await, "BADCLASS invalid class id\r\n");
    // The connection goes on after a dump.
    assert_eq!(ask(&mut c, b"mn\r\n", "MN\r\n").await, "MN\r\n");
    ask(&mut c, b"stats reset\r\n", "RESET\r\n").await;
    assert_eq!(ask(&mut c, b"stats detail dump\r\n", "END\r\n").await, "END\r\n");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunables_are_kept_and_reported_and_the_crawler_frees_expired_items() {
    // The background sweep out of the way: the crawl below is what frees.
    let cfg = ServerConfig { sweep_interval: Duration::from_secs(3600), ..one_thread() };
    let (addr, trigger, _task) = start(cfg).await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    for (req, want) in [
        ("slabs automove 2\r\n", "OK\r\n"),
        ("slabs automove ratio 0.5\r\n", "OK\r\n"),
        ("lru tune 10 30 0.1 3\r\n", "OK\r\n"),
        ("lru mode flat\r\n", "OK\r\n"),
        ("lru temp_ttl 30\r\n", "OK\r\n"),
        ("lru_crawler sleep 500\r\n", "OK\r\n"),
        ("lru_crawler tocrawl 7\r\n", "OK\r\n"),
        ("slabs reassign 1 1\r\n", "SAME src and dst class are identical\r\n"),
        ("slabs reassign 1 99\r\n", "BADCLASS invalid src or dst class id\r\n"),
        ("slabs reassign 1 2\r\n", "NOSPARE source class has no spare pages\r\n"),
        ("lru_crawler crawl all\r\n", "NOTSTARTED no items to crawl\r\n"),
        ("shutdown\r\n", "ERROR: shutdown not enabled\r\n"),
    ] {
        assert_eq!(ask(&mut c, req.as_bytes(), "\r\n").await, want, "{req}");
    }
    let s = ask(&mut c, b"stats settings\r\n", "END\r\n").await;
    for (name, value) in [
        ("slab_automove", "2"),
        ("slab_automove_ratio", "0.50"),
        ("hot_lru_pct", "10"),
        ("warm_lru_pct", "30"),
        ("hot_max_factor", "0.10"),
        ("warm_max_factor", "3.00"),
        ("lru_segmented", "no"),
        ("temp_lru", "yes"),
        ("temporary_ttl", "30"),
        ("lru_crawler_sleep", "500"),
        ("lru_crawler_tocrawl", "7"),
        ("shutdown_command", "no"),
        ("tcpport", &addr.port().to_string()),
    ] {
        assert_eq!(stat(&s, name), Some(value), "{name}");
    }
    // A crawl frees expired items at once and counts them.
    ask(&mut c, b"set gone 0 1 1\r\nx\r\n", "STORED\r\n").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(ask(&mut c, b"lru_crawler crawl 1\r\n", "\r\n").await, "OK\r\n");
    let s = ask(&mut c, b"stats\r\n", "END\r\n").await;
    assert_eq!(stat(&s, "crawler_reclaimed"), Some("1"));
    assert_eq!(stat(&s, "curr_items"), Some("0"));
    // `lru_crawler disable` is reported.
    ask(&mut c, b"lru_crawler disable\r\n", "OK\r\n").await;
    assert_eq!(stat(&ask(&mut c, b"stats settings\r\n", "END\r\n").await, "lru_crawler"), Some("no"));
    assert_eq!(ask(&mut c, b"lru_crawler crawl all\r\n", "\r\n").await, "CLIENT_ERROR lru crawler disabled\r\n");
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_server_only_when_enabled() {
    let (addr, _trigger, task) = start(ServerConfig { shutdown_command: true, ..one_thread() }).await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut c, b"shutdown now\r\n", "\r\n").await, "CLIENT_ERROR invalid shutdown mode\r\n");
    c.write_all(b"shutdown\r\n").await.expect("write");
    // No reply: the connection closes and the server stops.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    tokio::time::timeout(Duration::from_secs(15), task).await.expect("the server stopped").expect("cleanly");
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
