//! Routing one client request: local answers, single-server forwarding,
//! multi-get split and ordered merge, fan-out of keyless commands.
//!
//! [`route`] takes a client's requests in order and never waits: each one
//! takes the client's next answer slot and is queued on its backend
//! connection (or answered) before the next is looked at, so requests reach
//! every backend connection in the order the client sent them. Requests are
//! forwarded as the client wrote them — the decoder has checked them, and
//! memcached reads them as it would have directly — except where the proxy
//! must change them: a multi-get's fragments, quiet meta commands (asked
//! without `q`, see `answer`), and single-key gets, written in the one form
//! that lets the next get join their line (see `upstream`).

use crate::control::servers::ServerSet;
use crate::control::stats;
use crate::data::backend::answer::Sink;
use crate::data::backend::conns::Conns;
use crate::data::backend::quiet;
use crate::data::backend::upstream::Upstream;
use crate::data::replica;
use crate::data::slots::merge::{Kind, Merge};
use crate::data::slots::order::{ClientQueue, Queue};
use memshard_proto::{Admin, AdminCmd, Get, MetaFlags, Request};
use memshard_ring::Ring;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use tokio::time::Instant;

/// One client's view of its pool: this worker's backend connections and the
/// client's answer queue.
pub(crate) struct Client {
    pub(crate) conns: Rc<Conns>,
    pub(crate) queue: Queue,
    /// The client's last noreply request on each backend connection, until
    /// the server is known to have executed it (see [`Client::settled`]).
    noreply: RefCell<Vec<(Rc<Upstream>, u64)>>,
    /// Its single-key reads of a replicated pool, made on first use.
    reads: RefCell<Option<Rc<replica::Reads>>>,
}

impl Client {
    pub(crate) fn new(conns: Rc<Conns>) -> Client {
        Client { conns, queue: ClientQueue::new(), noreply: RefCell::default(), reads: RefCell::default() }
    }

    /// The client's single-key reads of a replicated pool, made on first use.
    pub(crate) fn reads(&self, set: &Arc<ServerSet>) -> Rc<replica::Reads> {
        self.reads
            .borrow_mut()
            .get_or_insert_with(|| replica::Reads::new(self.conns.clone(), self.queue.clone(), set.clone()))
            .clone()
    }

    /// Whether every request this client sent has been executed by its
    /// server: answers say so for the others, and a noreply request is
    /// executed once a later request on its connection is answered. Only a
    /// settled client may move to another worker, whose connections to the
    /// same servers could otherwise overtake its noreply writes.
    pub(crate) fn settled(&self) -> bool {
        let mut nr = self.noreply.borrow_mut();
        nr.retain(|(up, seq)| !up.has_executed(*seq));
        nr.is_empty()
    }

    /// Remembers a noreply request, number `seq` on `up`.
    fn sent_noreply(&self, up: &Rc<Upstream>, seq: u64) {
        let mut nr = self.noreply.borrow_mut();
        match nr.iter_mut().find(|(u, _)| Rc::ptr_eq(u, up)) {
            Some(entry) => entry.1 = seq,
            None => nr.push((up.clone(), seq)),
        }
    }
}

/// Routes one decoded request to a server of `set` (by `ring`, the set's
/// ring as the batch found it; `None` while a pool that discovers its
/// servers has found none); `raw` is its bytes as the client sent them,
/// `now` the time the batch it came in was read.
///
/// `replicated` is set when the pool has several owners per key: keyed
/// requests then go through `replica`.
pub(crate) fn route(
    c: &Client,
    set: &ServerSet,
    ring: Option<&Ring>,
    replicated: Option<&replica::Batch<'_>>,
    req: &Request<'_>,
    raw: &[u8],
    now: Instant,
) {
    if answer_here(&c.queue, req) {
        return;
    }
    let Some(ring) = ring else {
        c.queue.ready(b"SERVER_ERROR no servers: the pool's discovery has found none yet\r\n");
        return;
    };
    if let Some(batch) = replicated {
        if replica::route(batch, ring, req, raw, now) {
            return;
        }
    }
    match req {
        Request::Get(g) => get(c, set, ring, g, raw, now),
        Request::Store(s) => forward(c, set, ring.server_for(s.key), raw, !s.noreply, now),
        Request::Delete(d) => forward(c, set, ring.server_for(d.key), raw, !d.noreply, now),
        Request::Arith(a) => forward(c, set, ring.server_for(a.key), raw, !a.noreply, now),
        Request::Touch(t) => forward(c, set, ring.server_for(t.key), raw, !t.noreply, now),
        Request::MetaGet(m) => meta(c, set, ring.server_for(&m.key), b"mg", &m.key, None, &m.flags, raw, now),
        Request::MetaSet(m) => {
            meta(c, set, ring.server_for(&m.key), b"ms", &m.key, Some(m.value), &m.flags, raw, now);
        }
        Request::MetaDelete(m) => meta(c, set, ring.server_for(&m.key), b"md", &m.key, None, &m.flags, raw, now),
        Request::MetaArith(m) => meta(c, set, ring.server_for(&m.key), b"ma", &m.key, None, &m.flags, raw, now),
        Request::FlushAll(f) => fan_out(c, set, raw, !f.noreply, now),
        Request::Verbosity(v) => fan_out(c, set, raw, !v.noreply, now),
        // `me` reads one item: it goes where the key lives.
        Request::Admin(AdminCmd { op: Admin::MetaDebug { key }, .. }) => {
            forward(c, set, ring.server_for(key), raw, true, now);
        }
        // Answered above.
        _ => {}
    }
}

/// Answers what the proxy answers itself, without a server; whether `req`
/// was one of those.
fn answer_here(q: &Queue, req: &Request<'_>) -> bool {
    match req {
        Request::MetaNoop => q.ready(b"MN\r\n"),
        // The version the proxy answers itself.
        Request::Version => {
            q.ready(concat!("VERSION 1.6.18 memshard-proxy-", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes())
        }
        Request::Stats(_) => q.ready(
            b"CLIENT_ERROR stats are not forwarded by the proxy; read the proxy's stats port or each server\r\n",
        ),
        Request::CacheMemlimit(_) => {
            q.ready(b"CLIENT_ERROR cache_memlimit is not forwarded by the proxy; send it to each server\r\n");
        }
        Request::Admin(AdminCmd { op: Admin::MetaDebug { .. }, .. }) => return false,
        // Operator commands act on one server's process: they are refused
        // with the reason, as `stats` is.
        Request::Admin(a) => {
            let msg = format!("CLIENT_ERROR {} is not forwarded by the proxy; send it to each server\r\n", a.command());
            q.ready(msg.as_bytes());
        }
        // The frontend closes the connection on quit before routing.
        Request::Quit => {}
        _ => return false,
    }
    true
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Forwards `raw` to `server`; its answer (when `reply`) goes to the
/// client's next slot.
fn forward(c: &Client, set: &ServerSet, server: usize, raw: &[u8], reply: bool, now: Instant) {
    forward_on(c, set, server, raw, reply, now);
}

/// [`forward`], giving back the backend connection it went on.
fn forward_on(c: &Client, set: &ServerSet, server: usize, raw: &[u8], reply: bool, now: Instant) -> Rc<Upstream> {
    let up = c.conns.pick(set, &set.servers[server]);
    let sink = reply.then(|| Sink::Client(c.queue.clone(), c.queue.reserve()));
    let seq = up.send(&c.queue, |out| out.extend_from_slice(raw), sink, now);
    if !reply {
        c.sent_noreply(&up, seq);
    }
    up
}

/// get/gets/gat/gats: to the one server holding every key, or one fragment
/// per server holding some, merged back into the client's key order.
fn get(c: &Client, set: &ServerSet, ring: &Ring, g: &Get<'_>, raw: &[u8], now: Instant) {
    let mut keys = g.keys.iter();
    let Some(first) = keys.next() else {
        // `gat 10` with no key at all: memcached answers END.
        c.queue.ready(b"END\r\n");
        return;
    };
    let server = ring.server_for(first);
    if keys.next().is_none() {
        if g.cmd.touches() {
            forward_on(c, set, server, raw, true, now).counts_keys(1);
        } else {
            let seq = c.queue.reserve();
            let sink = Sink::Client(c.queue.clone(), seq);
            c.conns.pick(set, &set.servers[server]).get(g.cmd, first, sink, len32(raw.len()), now);
        }
        return;
    }
    let mut per_server: Vec<(usize, Vec<&[u8]>)> = Vec::new();
    for key in g.keys.iter() {
        let s = ring.server_for(key);
        match per_server.iter_mut().find(|(srv, _)| *srv == s) {
            Some((_, ks)) => ks.push(key),
            None => per_server.push((s, vec![key])),
        }
    }
    if per_server.len() == 1 {
        forward_on(c, set, server, raw, true, now).counts_keys(per_server[0].1.len());
        return;
    }
    let pool = c.conns.pool();
    stats::add(&pool.stats.fragments, per_server.len() as u64);
    let seq = c.queue.reserve();
    let merge = Merge::new(c.queue.clone(), seq, pool.clone(), Kind::Get(g.keys.raw().to_vec()), per_server.len());
    for (i, (server, keys)) in per_server.iter().enumerate() {
        let joined = keys.join(&b' ');
        let part = Get { cmd: g.cmd, exptime: g.exptime, keys: memshard_proto::Keys::from_raw(&joined) };
        let up = c.conns.pick(set, &set.servers[*server]);
        up.send(&c.queue, |out| part.encode(out), Some(Sink::Part(merge.clone(), i)), now);
        up.counts_keys(keys.len());
    }
}

/// Meta commands, routed by key. A quiet one is asked without `q`, so that
/// every request has exactly one answer to match; the proxy then drops what
/// memcached would not have sent.
#[allow(clippy::too_many_arguments)]
fn meta(
    c: &Client,
    set: &ServerSet,
    server: usize,
    cmd: &'static [u8],
    key: &[u8],
    data: Option<&[u8]>,
    flags: &MetaFlags<'_>,
    raw: &[u8],
    now: Instant,
) {
    let up = c.conns.pick(set, &set.servers[server]);
    let seq = c.queue.reserve();
    if !flags.quiet {
        up.send(&c.queue, |out| out.extend_from_slice(raw), Some(Sink::Client(c.queue.clone(), seq)), now);
        return;
    }
    let write = |out: &mut Vec<u8>| quiet::unquiet(out, cmd, key, data, flags);
    up.send(&c.queue, write, Some(Sink::Quiet(c.queue.clone(), seq, cmd)), now);
}

/// flush_all / verbosity: sent to every server of the pool (ejected ones
/// included: a flush must not miss a server that comes back). `OK` when every
/// server said so, otherwise the first failure.
fn fan_out(c: &Client, set: &ServerSet, raw: &[u8], want_reply: bool, now: Instant) {
    let pool = c.conns.pool();
    // The pool's servers (not those a reload removed, kept for its settle).
    let ring = &set.servers[..set.ring_len];
    let merge = want_reply.then(|| Merge::new(c.queue.clone(), c.queue.reserve(), pool.clone(), Kind::All, ring.len()));
    for (i, server) in ring.iter().enumerate() {
        let sink = merge.as_ref().map(|m| Sink::Part(m.clone(), i));
        let up = c.conns.pick(set, server);
        let seq = up.send(&c.queue, |out| out.extend_from_slice(raw), sink, now);
        if !want_reply {
            c.sent_noreply(&up, seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::pool::Pool;
    use crate::control::resolve::Resolver;
    use memshard_config::Config;
    use memshard_proto::Decoder;
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Reads from `s` until `want` has arrived.
    async fn read_until(s: &mut tokio::net::TcpStream, want: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        while !got.windows(want.len()).any(|w| w == want) {
            let mut b = [0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await.expect("in time").expect("read");
            assert!(n > 0, "proxy closed");
            got.extend_from_slice(&b[..n]);
        }
        got
    }

    /// A client whose noreply write has not been followed by an answer on
    /// its connection is not settled: moving it now could let its next
    /// request, over another worker's connection, overtake the write.
    #[tokio::test]
    async fn a_noreply_write_keeps_the_client_until_a_later_answer_shows_it_executed() {
        let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let yaml = format!(
            "mc:\n  listen: 127.0.0.1:0\n  timeout: 5000\n  servers:\n   - {}:1\n",
            backend.local_addr().expect("addr")
        );
        let config = Config::from_yaml(&yaml).expect("config");
        let (name, cfg) = &config.pools[0];
        let pool = Arc::new(Pool::new(name, cfg, Arc::new(Resolver::new(&[]))).expect("pool"));
        let decoder = Decoder::new(1 << 20);
        tokio::task::LocalSet::new()
            .run_until(async move {
                let c = Client::new(crate::data::backend::conns::for_pool(0, &pool));
                let set = pool.servers();
                let ring = set.ring();
                let ring = ring.as_deref();
                let send = |raw: &[u8]| {
                    let (req, used) = decoder.decode(raw).expect("valid").expect("whole");
                    assert_eq!(used, raw.len());
                    route(&c, &set, ring, None, &req, raw, Instant::now());
                };
                assert!(c.settled(), "a new client has nothing outstanding");
                send(b"set k 0 0 1 noreply\r\nx\r\n");
                let (mut server, _) = backend.accept().await.expect("proxy connects");
                read_until(&mut server, b"x\r\n").await;
                assert_eq!(c.queue.pending(), 0, "nothing to answer");
                assert!(!c.settled(), "the noreply set is not known to be executed");
                // A later request on the same connection, answered: the set
                // before it was executed.
                send(b"get k\r\n");
                read_until(&mut server, b"get k\r\n").await;
                assert!(!c.settled(), "not answered yet");
                server.write_all(b"VALUE k 0 1\r\nx\r\nEND\r\n").await.expect("answer");
                poll_fn(|cx| c.queue.poll_answered(cx)).await;
                assert!(c.settled());
            })
            .await;
    }
}
