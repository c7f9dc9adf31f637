//! The binary protocol on memshard server: each command's answer, quiet
//! variants, CAS, opaque, GETK, arithmetic with initial value and TTL, FLUSH
//! with a delay, NOOP, VERSION, STAT; the store shared with the text
//! protocol; and, when memcached is installed, the same request streams
//! answered byte for byte as memcached 1.6.18 answers them.

use memshard_net::ShutdownTrigger;
use memshard_proto::binary::{self, HEADER_LEN, Header, encode_request, opcode as op};
use memshard_server::{ServerConfig, run};
use memshard_testkit::{peer_or_skip, spawn_memcached};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn req(opcode: u8, opaque: u32, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(&mut out, &Header { opcode, opaque, cas, ..Header::default() }, extras, key, value);
    out
}

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    [&delta.to_be_bytes()[..], &initial.to_be_bytes(), &exptime.to_be_bytes()].concat()
}

/// Reads `n` responses (bounded in time).
async fn read(s: &mut TcpStream, n: usize) -> Vec<Resp> {
    let out = read_at_least(s, n).await;
    assert_eq!(out.len(), n, "more than {n} responses: {out:?}");
    out
}

/// Reads whatever complete responses the next reads bring (at least one).
async fn read_some(s: &mut TcpStream) -> Vec<Resp> {
    read_at_least(s, 1).await
}

/// Reads until `n` responses are complete and no partial one is left.
async fn read_at_least(s: &mut TcpStream, n: usize) -> Vec<Resp> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    while out.len() < n || !buf.is_empty() {
        if buf.len() >= HEADER_LEN {
            let body = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
            if buf.len() >= HEADER_LEN + body {
                assert_eq!(buf[0], binary::RESPONSE_MAGIC, "{buf:?}");
                let (klen, elen) = (usize::from(u16::from_be_bytes([buf[2], buf[3]])), usize::from(buf[4]));
                let b = &buf[HEADER_LEN..HEADER_LEN + body];
                out.push(Resp {
                    opcode: buf[1],
                    status: u16::from_be_bytes([buf[6], buf[7]]),
                    opaque: u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]),
                    cas: u64::from_be_bytes(buf[16..24].try_into().expect("8 bytes")),
                    extras: b[..elen].to_vec(),
                    key: b[elen..elen + klen].to_vec(),
                    value: b[elen + klen..].to_vec(),
                });
                buf.drain(..HEADER_LEN + body);
                continue;
            }
        }
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.expect("answer in time");
        let n = r.expect("read");
        assert!(n > 0, "closed after {} responses", out.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    out
}

async fn start() -> (SocketAddr, ShutdownTrigger) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    tokio::spawn(run(listener, ServerConfig { threads: 1, ..ServerConfig::default() }, shutdown));
    (addr, trigger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_as_memcached_documents() {
    let (addr, trigger) = start().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    // SET answers with the new CAS; GET returns flags, value and the same CAS.
    c.write_all(&req(op::SET, 1, 0, &set_extras(0xcafe, 0), b"k", b"hello")).await.expect("write");
    let set = read(&mut c, 1).await.remove(0);
    assert_eq!((set.status, set.opaque), (0, 1));
    assert_ne!(set.cas, 0);
    c.write_all(&req(op::GETK, 2, 0, &[], b"k", &[])).await.expect("write");
    let get = read(&mut c, 1).await.remove(0);
    assert_eq!(get.extras, 0xcafeu32.to_be_bytes());
    assert_eq!((get.key.as_slice(), get.value.as_slice(), get.cas, get.opaque), (&b"k"[..], &b"hello"[..], set.cas, 2));
    // The text protocol reads the same item.
    c.write_all(&req(op::NOOP, 3, 0, &[], &[], &[])).await.expect("write");
    read(&mut c, 1).await;
    let mut t = TcpStream::connect(addr).await.expect("connect");
    t.write_all(b"get k\r\n").await.expect("write");
    let mut text = [0u8; 64];
    let n = t.read(&mut text).await.expect("read");
    assert_eq!(&text[..n], b"VALUE k 51966 5\r\nhello\r\nEND\r\n");
    // CAS: a wrong one is refused, the right one stores; ADD on an existing key exists.
    c.write_all(&req(op::SET, 4, set.cas + 1000, &set_extras(0, 0), b"k", b"x")).await.expect("write");
    c.write_all(&req(op::SET, 5, set.cas, &set_extras(0, 0), b"k", b"y")).await.expect("write");
    c.write_all(&req(op::ADD, 6, 0, &set_extras(0, 0), b"k", b"z")).await.expect("write");
    c.write_all(&req(op::REPLACE, 7, 0, &set_extras(0, 0), b"none", b"z")).await.expect("write");
    let r = read(&mut c, 4).await;
    assert_eq!((r[0].status, r[0].value.as_slice()), (2, &b"Data exists for key."[..]));
    assert_eq!(r[1].status, 0);
    assert_eq!((r[2].status, r[3].status), (2, 1));
    // Quiet: successes say nothing, a miss of GETQ nothing, a failure still answers; NOOP ends the batch.
    let mut batch = req(op::SETQ, 8, 0, &set_extras(0, 0), b"q", b"1");
    batch.extend(req(op::GETQ, 9, 0, &[], b"missing", &[]));
    batch.extend(req(op::ADDQ, 10, 0, &set_extras(0, 0), b"q", b"2"));
    batch.extend(req(op::GETKQ, 11, 0, &[], b"q", &[]));
    batch.extend(req(op::NOOP, 12, 0, &[], &[], &[]));
    c.write_all(&batch).await.expect("write");
    let r = read(&mut c, 3).await;
    assert_eq!((r[0].opaque, r[0].status), (10, 2), "the failed ADDQ");
    assert_eq!((r[1].opaque, r[1].key.as_slice(), r[1].value.as_slice()), (11, &b"q"[..], &b"1"[..]));
    assert_eq!((r[2].opcode, r[2].opaque), (op::NOOP, 12));
    // Arithmetic: create with the initial value, then count; 0xffffffff does not create.
    c.write_all(&req(op::INCREMENT, 13, 0, &arith_extras(5, 100, 0), b"n", &[])).await.expect("write");
    c.write_all(&req(op::INCREMENT, 14, 0, &arith_extras(5, 100, 0), b"n", &[])).await.expect("write");
    c.write_all(&req(op::DECREMENT, 15, 0, &arith_extras(500, 0, 0), b"n", &[])).await.expect("write");
    c.write_all(&req(op::INCREMENT, 16, 0, &arith_extras(1, 0, u32::MAX), b"absent", &[])).await.expect("write");
    c.write_all(&req(op::INCREMENT, 17, 0, &arith_extras(1, 0, 0), b"k", &[])).await.expect("write");
    let r = read(&mut c, 5).await;
    let num = |r: &Resp| u64::from_be_bytes(r.value.as_slice().try_into().expect("8 bytes"));
    assert_eq!((num(&r[0]), num(&r[1]), num(&r[2])), (100, 105, 0));
    assert_eq!(r[3].status, 1);
    assert_eq!((r[4].status, r[4].value.as_slice()), (6, &b"Non-numeric server-side value for incr or decr"[..]));
    // A created counter gets its TTL.
    c.write_all(&req(op::INCREMENT, 18, 0, &arith_extras(1, 7, 100), b"ttl", &[])).await.expect("write");
    read(&mut c, 1).await;
    t.write_all(b"mg ttl t v\r\n").await.expect("write");
    let n = t.read(&mut text).await.expect("read");
    assert_eq!(&text[..n], b"VA 1 t100\r\n7\r\n");
    // APPEND, DELETE with a CAS, TOUCH, GAT, VERSION, an unknown opcode.
    c.write_all(&req(op::APPEND, 19, 0, &[], b"k", b"+")).await.expect("write");
    c.write_all(&req(op::DELETE, 20, 1, &[], b"k", &[])).await.expect("write");
    c.write_all(&req(op::TOUCH, 21, 0, &10u32.to_be_bytes(), b"k", &[])).await.expect("write");
    c.write_all(&req(op::GAT, 22, 0, &0u32.to_be_bytes(), b"k", &[])).await.expect("write");
    c.write_all(&req(op::VERSION, 23, 0, &[], &[], &[])).await.expect("write");
    c.write_all(&req(0x3f, 24, 0, &[], &[], b"abc")).await.expect("write");
    let r = read(&mut c, 6).await;
    assert_eq!(r[0].status, 0);
    assert_eq!(r[1].status, 2, "DELETE with a stale CAS");
    assert_eq!((r[2].status, r[2].value.as_slice(), r[2].extras.len()), (0, &b""[..], 4), "TOUCH: flags, no value");
    assert_eq!(r[3].value, b"y+");
    assert_eq!(r[4].value, b"1.6.18");
    assert_eq!((r[5].status, r[5].value.as_slice()), (0x81, &b"Unknown command"[..]));
    // FLUSH with a delay: nothing goes yet.
    c.write_all(&req(op::FLUSH, 25, 0, &100u32.to_be_bytes(), &[], &[])).await.expect("write");
    c.write_all(&req(op::GET, 26, 0, &[], b"k", &[])).await.expect("write");
    let r = read(&mut c, 2).await;
    assert_eq!((r[0].status, r[1].status), (0, 0));
    // STAT: one answer per statistic, then an empty one (NOOP after it
    // tells where the batch ends).
    c.write_all(&req(op::STAT, 27, 0, &[], &[], &[])).await.expect("write");
    c.write_all(&req(op::NOOP, 28, 0, &[], &[], &[])).await.expect("write");
    let mut all = Vec::new();
    while all.last().is_none_or(|r: &Resp| r.opcode != op::NOOP) {
        all.extend(read_some(&mut c).await);
    }
    assert_eq!(all[all.len() - 2].key, b"", "the empty terminator before NOOP");
    let stats: Vec<(String, String)> = all[..all.len() - 2]
        .iter()
        .map(|r| (String::from_utf8(r.key.clone()).expect("utf8"), String::from_utf8(r.value.clone()).expect("utf8")))
        .collect();
    assert!(stats.contains(&("version".into(), "1.6.18".into())), "{stats:?}");
    assert!(stats.iter().any(|(k, v)| k == "cmd_set" && v.parse::<u64>().is_ok_and(|n| n >= 5)), "{stats:?}");
    // QUIT answers, then closes.
    c.write_all(&req(op::QUIT, 29, 0, &[], &[], &[])).await.expect("write");
    assert_eq!(read(&mut c, 1).await[0].opcode, op::QUIT);
    let mut rest = [0u8; 8];
    assert_eq!(c.read(&mut rest).await.expect("eof"), 0);
    trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_answer_and_close_as_memcached_does() {
    let (addr, trigger) = start().await;
    // A GET with extras: "Invalid arguments", then the connection closes.
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(&req(op::GET, 1, 0, &[0; 4], b"k", &[])).await.expect("write");
    let r = read(&mut c, 1).await.remove(0);
    assert_eq!((r.status, r.value.as_slice()), (4, &b"Invalid arguments"[..]));
    let mut rest = [0u8; 8];
    assert_eq!(c.read(&mut rest).await.expect("eof"), 0);
    // A too large SET is refused without reading the value into memory,
    // the old value is gone, and the connection goes on.
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(&req(op::SET, 2, 0, &set_extras(0, 0), b"big", b"old")).await.expect("write");
    let mut big = req(op::SET, 3, 0, &set_extras(0, 0), b"big", &[]);
    let value = vec![b'v'; 2 << 20];
    big[8..12].copy_from_slice(&(8 + 3 + value.len() as u32).to_be_bytes());
    c.write_all(&big).await.expect("write");
    c.write_all(&value).await.expect("write");
    c.write_all(&req(op::GET, 4, 0, &[], b"big", &[])).await.expect("write");
    let r = read(&mut c, 3).await;
    assert_eq!((r[1].status, r[1].value.as_slice()), (3, &b"Too large."[..]));
    assert_eq!((r[2].status, r[2].opaque), (1, 4), "the old value was unlinked");
    trigger.trigger();
}

/// The same streams against memcached 1.6.18 and memshard: the same bytes
/// back, CAS values aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_memcached_byte_for_byte() {
    if peer_or_skip("memcached").is_none() {
        return;
    }
    let mc = spawn_memcached(&["-U", "0"]).expect("memcached starts");
    let (ours, trigger) = start().await;
    let mut streams: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut s = req(op::SET, 1, 0, &set_extras(7, 0), b"a", b"one");
    s.extend(req(op::GETK, 2, 0, &[], b"a", &[]));
    s.extend(req(op::GET, 3, 0, &[], b"nope", &[]));
    s.extend(req(op::GETK, 4, 0, &[], b"nope", &[]));
    s.extend(req(op::ADD, 5, 0, &set_extras(0, 0), b"a", b"x"));
    s.extend(req(op::REPLACE, 6, 0, &set_extras(0, 0), b"b", b"x"));
    s.extend(req(op::APPEND, 7, 0, &[], b"b", b"x"));
    s.extend(req(op::PREPEND, 8, 0, &[], b"a", b"<"));
    s.extend(req(op::DELETE, 9, 0, &[], b"b", &[]));
    s.extend(req(op::INCREMENT, 10, 0, &arith_extras(1, 5, 0), b"c", &[]));
    s.extend(req(op::DECREMENT, 11, 0, &arith_extras(9, 5, 0), b"c", &[]));
    s.extend(req(op::INCREMENT, 12, 0, &arith_extras(1, 0, u32::MAX), b"d", &[]));
    s.extend(req(op::INCREMENT, 13, 0, &arith_extras(1, 0, 0), b"a", &[]));
    s.extend(req(op::TOUCH, 14, 0, &0u32.to_be_bytes(), b"nope", &[]));
    s.extend(req(op::VERSION, 15, 0, &[], &[], &[]));
    s.extend(req(0x3f, 16, 0, &[], &[], &[]));
    s.extend(req(op::SASL_LIST_MECHS, 17, 0, &[], &[], &[]));
    s.extend(req(op::DELETEQ, 18, 0, &[], b"a", &[]));
    s.extend(req(op::GETQ, 19, 0, &[], b"a", &[]));
    s.extend(req(op::NOOP, 20, 0, &[], &[], &[]));
    streams.push((s, 18));
    streams.push((req(op::GET, 21, 0, &[], &[b'k'; 251], &[]), 1));
    streams.push((req(op::DELETE, 22, 0, &[0; 4], b"k", &[]), 1));
    for (stream, n) in &streams {
        let mut answers = Vec::new();
        for addr in [mc.addr(), ours] {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            c.write_all(stream).await.expect("write");
            let mut r = read(&mut c, *n).await;
            for resp in &mut r {
                resp.cas = u64::from(resp.cas != 0);
            }
            answers.push(r);
        }
        assert_eq!(answers[1], answers[0], "memshard (left) vs memcached (right)");
    }
    trigger.trigger();
}
