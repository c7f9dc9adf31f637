//! A minimal authoritative DNS responder for tests: on 127.0.0.1, UDP and
//! TCP on one port, answering from a [`Zone`] the test changes while it runs
//! — A records, SRV records, or an error code for every query. One question
//! per query; TTL 1; AAAA and unknown types are answered with no record;
//! unknown names NXDOMAIN. A UDP answer longer than 512 bytes is sent
//! truncated (TC set, no records), so a client must ask again over TCP, as
//! a real server makes it for a large SRV set.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// The SERVFAIL response code.
pub const SERVFAIL: u8 = 2;
/// The NXDOMAIN response code.
pub const NXDOMAIN: u8 = 3;

const TYPE_A: u16 = 1;
const TYPE_SRV: u16 = 33;
const UDP_MAX: usize = 512;

/// What the responder answers. Names are lower case, without the final dot.
#[derive(Debug, Default)]
pub struct Zone {
    /// Name → its A record.
    pub a: HashMap<String, Ipv4Addr>,
    /// Name → its SRV records, as (target, port) (priority and weight 0).
    pub srv: HashMap<String, Vec<(String, u16)>>,
    /// `Some(rcode)`: answer every query with this error instead.
    pub fail: Option<u8>,
    /// Queries answered with an error while `fail` was set.
    pub failed: u64,
    /// SRV queries answered (over either transport).
    pub srv_queries: u64,
    /// Queries that came over TCP.
    pub tcp_queries: u64,
}

/// A running responder; dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Where it listens (the same port for UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a responder for `zone` on a free port of 127.0.0.1.
pub async fn start(zone: Arc<Mutex<Zone>>) -> io::Result<DnsServer> {
    // A port free for both transports.
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        if let Ok(tcp) = TcpListener::bind(udp.local_addr()?).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr()?;
    let z = zone.clone();
    let udp_task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else { continue };
            if let Some(reply) = answer(&buf[..n], &z, Some(UDP_MAX)) {
                let _ = udp.send_to(&reply, peer).await;
            }
        }
    });
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else { continue };
            let z = zone.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let Some(reply) = answer(&q, &z, None) else { return };
                    let Ok(n) = u16::try_from(reply.len()) else { return };
                    if s.write_all(&n.to_be_bytes()).await.is_err() || s.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(DnsServer { addr, tasks: vec![udp_task, tcp_task] })
}

/// The reply to one query (`None` for anything that is not a query with
/// exactly one well-formed question); truncated past `max` bytes.
fn answer(q: &[u8], zone: &Mutex<Zone>, max: Option<usize>) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // no compression in a question
        }
        labels.push(String::from_utf8_lossy(q.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*q.get(at)?, *q.get(at + 1)?]);
    let question_end = at + 4;
    q.get(..question_end)?;
    let name = labels.join(".");
    let mut guard = zone.lock().unwrap_or_else(|e| e.into_inner());
    let zone = &mut *guard;
    if max.is_none() {
        zone.tcp_queries += 1;
    }
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    let rcode = if let Some(rcode) = zone.fail {
        zone.failed += 1;
        rcode
    } else if let Some(ip) = zone.a.get(&name) {
        if qtype == TYPE_A {
            records.push((TYPE_A, ip.octets().to_vec()));
        }
        0
    } else if let Some(srv) = zone.srv.get(&name) {
        if qtype == TYPE_SRV {
            zone.srv_queries += 1;
            for (target, port) in srv {
                let mut rdata = vec![0, 0, 0, 0];
                rdata.extend_from_slice(&port.to_be_bytes());
                for label in target.trim_end_matches('.').split('.') {
                    rdata.push(u8::try_from(label.len()).ok()?);
                    rdata.extend_from_slice(label.as_bytes());
                }
                rdata.push(0);
                records.push((TYPE_SRV, rdata));
            }
        }
        0
    } else {
        NXDOMAIN
    };
    let mut r = Vec::with_capacity(question_end + 16 * records.len());
    r.extend_from_slice(&q[..2]); // id
    r.push(0x80 | (q[2] & 0x79) | 0x04); // QR, opcode and RD echoed, AA
    r.push(0x80 | rcode); // RA
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&u16::try_from(records.len()).ok()?.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&q[12..question_end]);
    for (rtype, rdata) in &records {
        // Name as a pointer to the question, type, IN, TTL 1, the data.
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 1]);
        r.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        r.extend_from_slice(rdata);
    }
    if max.is_some_and(|m| r.len() > m) {
        // Truncated: the header and question only, TC set.
        r.truncate(question_end);
        r[2] |= 0x02;
        r[6] = 0;
        r[7] = 0;
    }
    Some(r)
}
