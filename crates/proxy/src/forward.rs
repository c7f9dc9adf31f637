//! Routing one client request: local answers, single-server forwarding,
//! multi-get split and ordered merge, fan-out of keyless commands.
//!
//! [`route`] takes requests in the client's order. It only awaits to obtain a
//! backend connection; the request itself is handed to a spawned task, and
//! tasks of one worker start in spawn order, so requests reach each backend
//! connection in the order the client sent them.

use crate::backend;
use crate::pool::Pool;
use crate::stats;
use base64::Engine;
use bytes::Bytes;
use memshard_client::{ClientError, OwnedReply};
use memshard_proto::{Get, MetaCode, MetaFlags, Reply, Request};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The version the proxy answers itself.
pub(crate) const VERSION: &str = concat!("1.6.18 memshard-proxy-", env!("CARGO_PKG_VERSION"));

/// The eventual reply bytes of one request, in client order.
pub(crate) enum Work {
    /// Known now (local answers, refusals, noreply).
    Ready(Vec<u8>),
    /// Coming from backends, already encoded (multi-get merges, fan-outs).
    Pending(JoinHandle<Vec<u8>>),
    /// One backend request in flight: its units are encoded when the
    /// frontend reaches it, without a second task hop.
    Backend(BackendReply),
}

/// One in-flight backend request and how to turn its reply into client bytes.
pub(crate) struct BackendReply {
    handle: InFlight,
    pool: Arc<Pool>,
    /// `Some(cmd)` for a quiet meta command: drop what memcached would not send.
    quiet: Option<&'static [u8]>,
    /// noreply: nothing goes back, even on failure.
    silent: bool,
}

impl BackendReply {
    /// Waits for the reply and appends the client's bytes to `out`.
    pub(crate) async fn finish(self, out: &mut Vec<u8>) {
        match self.handle.wait().await {
            Ok(units) => {
                for u in &units {
                    if self.quiet.is_some_and(|cmd| suppressed(cmd, u)) {
                        continue;
                    }
                    u.as_reply().encode(out);
                }
            }
            Err(e) => {
                if !self.silent {
                    out.extend_from_slice(&server_error(&self.pool, &e));
                }
            }
        }
    }
}

/// What the frontend needs to route: the pool and its index.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) pool_id: usize,
    pub(crate) pool: Arc<Pool>,
}

fn line(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    v.extend_from_slice(s.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

/// twemproxy-style `SERVER_ERROR <reason>` for a backend failure (counted as
/// the pool's `forward_error`).
fn server_error(pool: &Pool, e: &ClientError) -> Vec<u8> {
    stats::add(&pool.stats.forward_error, 1);
    let reason = match e {
        ClientError::Timeout => "Connection timed out".to_string(),
        ClientError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "Connection refused".to_string(),
            std::io::ErrorKind::ConnectionReset => "Connection reset by peer".to_string(),
            _ => os_reason(io),
        },
        ClientError::Closed => "Connection closed by server".to_string(),
        ClientError::Protocol(_) => "Invalid reply from server".to_string(),
        other => other.to_string(),
    };
    line(&format!("SERVER_ERROR {reason}"))
}

/// An I/O error's reason as twemproxy words it (strerror: `No such file or
/// directory` for a unix socket that is gone), without std's ` (os error N)`.
fn os_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}

/// Does this failure count against the server's health?
fn is_server_fault(e: &ClientError) -> bool {
    matches!(e, ClientError::Timeout | ClientError::Io(_) | ClientError::Closed | ClientError::Protocol(_))
}

/// Bytes a reply unit takes on the wire, for `response_bytes`.
fn encoded_len(u: &OwnedReply) -> u64 {
    let digits = |n: u64| n.checked_ilog10().map_or(1, |d| d as u64 + 1);
    match u {
        OwnedReply::Value { key, flags, cas, data } => {
            6 + key.len() as u64
                + 1
                + digits(u64::from(*flags))
                + 1
                + digits(data.len() as u64)
                + cas.map_or(0, |c| 1 + digits(c))
                + 2
                + data.len() as u64
                + 2
        }
        other => {
            let mut v = Vec::new();
            other.as_reply().encode(&mut v);
            v.len() as u64
        }
    }
}

fn encode_units(units: &[OwnedReply], out: &mut Vec<u8>) {
    for u in units {
        u.as_reply().encode(out);
    }
}

/// A backend request in flight.
pub(crate) struct InFlight {
    how: How,
    pool: Arc<Pool>,
    server: usize,
    len: u64,
    terminals: usize,
}

enum How {
    /// Queued on the connection already; awaited by whoever needs the reply
    /// (no task of its own).
    Started(memshard_client::Started),
    /// Waiting for an in-flight slot: a task of its own.
    Spawned(JoinHandle<Result<Vec<OwnedReply>, ClientError>>),
    /// Settled already (a queued noreply request, or a failure to queue).
    Done(Result<Vec<OwnedReply>, ClientError>),
}

impl InFlight {
    /// The reply units; the outcome is accounted against the server.
    pub(crate) async fn wait(self) -> Result<Vec<OwnedReply>, ClientError> {
        let res = match self.how {
            How::Started(s) => s.finish().await,
            How::Spawned(h) => h.await.unwrap_or(Err(ClientError::Closed)),
            How::Done(r) => r,
        };
        account(&self.pool, self.server, self.len, self.terminals, &res);
        res
    }
}

/// Lets requests nobody waits for finish in the background, so their
/// outcome is still accounted.
fn drain(handles: Vec<InFlight>) {
    if !handles.is_empty() {
        tokio::spawn(async move {
            for h in handles {
                let _ = h.wait().await;
            }
        });
    }
}

/// Stats and health bookkeeping for one finished backend request.
fn account(pool: &Pool, server: usize, len: u64, terminals: usize, res: &Result<Vec<OwnedReply>, ClientError>) {
    let st = &pool.server_stats[server];
    stats::gauge(&st.in_queue, -1);
    stats::gauge(&st.in_queue_bytes, -(len as i64));
    match res {
        Ok(units) => {
            pool.record_success(server);
            if terminals > 0 {
                stats::add(&st.responses, 1);
                stats::add(&st.response_bytes, units.iter().map(encoded_len).sum());
            }
        }
        Err(e) => {
            match e {
                ClientError::Timeout => stats::add(&st.server_timedout, 1),
                ClientError::Closed => stats::add(&st.server_eof, 1),
                ClientError::Io(_) | ClientError::Protocol(_) => stats::add(&st.server_err, 1),
                _ => {}
            }
            if is_server_fault(e) {
                pool.record_failure(server);
            }
        }
    }
}

/// Sends `bytes` to `server` expecting `terminals` terminal reply units
/// (0 = noreply). The request is queued on the backend connection before this
/// returns whenever a slot is free, so requests keep the client's order.
async fn send(r: &Route, server: usize, bytes: Bytes, terminals: usize) -> Result<InFlight, ClientError> {
    let client = match backend::client(r.pool_id, &r.pool, server).await {
        Ok(c) => c,
        Err(e) => {
            let st = &r.pool.server_stats[server];
            stats::add(&st.requests, 1);
            stats::add(&st.request_bytes, bytes.len() as u64);
            match e {
                ClientError::Timeout => stats::add(&st.server_timedout, 1),
                _ => stats::add(&st.server_err, 1),
            }
            if is_server_fault(&e) {
                r.pool.record_failure(server);
            }
            return Err(e);
        }
    };
    let st = &r.pool.server_stats[server];
    let len = bytes.len() as u64;
    stats::add(&st.requests, 1);
    stats::add(&st.request_bytes, len);
    stats::gauge(&st.in_queue, 1);
    stats::gauge(&st.in_queue_bytes, len as i64);
    let how = if terminals == 0 {
        match client.try_send_noreply(bytes.clone()) {
            Some(r) => How::Done(r.map(|()| Vec::new())),
            None => How::Spawned(tokio::spawn(async move { client.request(bytes, 0).await })),
        }
    } else {
        match client.try_start(bytes.clone(), terminals) {
            Some(Ok(s)) => How::Started(s),
            Some(Err(e)) => How::Done(Err(e)),
            None => How::Spawned(tokio::spawn(async move { client.request(bytes, terminals).await })),
        }
    };
    Ok(InFlight { how, pool: r.pool.clone(), server, len, terminals })
}

/// Forward to one server; its reply units are re-encoded by the frontend.
async fn single(r: &Route, server: usize, bytes: Vec<u8>, terminals: usize) -> Work {
    match send(r, server, bytes.into(), terminals).await {
        Err(e) => Work::Ready(if terminals == 0 { Vec::new() } else { server_error(&r.pool, &e) }),
        Ok(handle) => Work::Backend(BackendReply { handle, pool: r.pool.clone(), quiet: None, silent: terminals == 0 }),
    }
}

/// Routes one decoded request.
pub(crate) async fn route(r: &Route, req: Request<'_>) -> Work {
    let ring = r.pool.ring();
    match req {
        Request::Get(g) => get(r, &ring, &g).await,
        Request::Store(ref s) => {
            let server = ring.server_for(s.key);
            single(r, server, encoded(&req), usize::from(!s.noreply)).await
        }
        Request::Delete(ref d) => single(r, ring.server_for(d.key), encoded(&req), usize::from(!d.noreply)).await,
        Request::Arith(ref a) => single(r, ring.server_for(a.key), encoded(&req), usize::from(!a.noreply)).await,
        Request::Touch(ref t) => single(r, ring.server_for(t.key), encoded(&req), usize::from(!t.noreply)).await,
        Request::MetaGet(ref m) => meta(r, ring.server_for(&m.key), b"mg", &m.key, None, &m.flags, None).await,
        Request::MetaSet(ref m) => {
            meta(r, ring.server_for(&m.key), b"ms", &m.key, Some(m.value.len()), &m.flags, Some(m.value)).await
        }
        Request::MetaDelete(ref m) => meta(r, ring.server_for(&m.key), b"md", &m.key, None, &m.flags, None).await,
        Request::MetaArith(ref m) => meta(r, ring.server_for(&m.key), b"ma", &m.key, None, &m.flags, None).await,
        Request::MetaNoop => Work::Ready(line("MN")),
        Request::Version => Work::Ready(line(&format!("VERSION {VERSION}"))),
        Request::FlushAll(f) => fan_out(r, encoded(&req), !f.noreply).await,
        Request::Verbosity(v) => fan_out(r, encoded(&req), !v.noreply).await,
        Request::Stats(_) => Work::Ready(line(
            "CLIENT_ERROR stats are not forwarded by the proxy; read the proxy's stats port or each server",
        )),
        Request::CacheMemlimit(_) => {
            Work::Ready(line("CLIENT_ERROR cache_memlimit is not forwarded by the proxy; send it to each server"))
        }
        // The frontend closes the connection on quit before routing.
        Request::Quit => Work::Ready(Vec::new()),
    }
}

fn encoded(req: &Request<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    req.encode(&mut v);
    v
}

/// get/gets/gat/gats: one request per server holding its keys, sent in
/// parallel, replies merged back into the client's key order.
async fn get(r: &Route, ring: &memshard_ring::Ring, g: &Get<'_>) -> Work {
    let mut per_server: Vec<(usize, Vec<&[u8]>)> = Vec::new();
    let mut order: Vec<&[u8]> = Vec::new();
    for key in g.keys.iter() {
        let s = ring.server_for(key);
        match per_server.iter_mut().find(|(srv, _)| *srv == s) {
            Some((_, ks)) => ks.push(key),
            None => per_server.push((s, vec![key])),
        }
        order.push(key);
    }
    if per_server.len() <= 1 {
        let Some((server, _)) = per_server.first() else { return Work::Ready(line("END")) };
        let mut bytes = Vec::new();
        g.encode(&mut bytes);
        return single(r, *server, bytes, 1).await;
    }
    let pool = r.pool.clone();
    stats::add(&pool.stats.fragments, per_server.len() as u64);
    let mut handles = Vec::with_capacity(per_server.len());
    for (server, keys) in &per_server {
        let joined = keys.join(&b' ');
        let part = Get { cmd: g.cmd, exptime: g.exptime, keys: memshard_proto::Keys::from_raw(&joined) };
        let mut bytes = Vec::new();
        part.encode(&mut bytes);
        match send(r, *server, bytes.into(), 1).await {
            Ok(h) => handles.push(h),
            // Any fragment failing fails the whole get, as in twemproxy, but the
            // connection stays usable. Fragments already sent still finish (and
            // are accounted) in the background.
            Err(e) => {
                drain(handles);
                return Work::Ready(server_error(&pool, &e));
            }
        }
    }
    let order: Vec<Vec<u8>> = order.into_iter().map(<[u8]>::to_vec).collect();
    Work::Pending(tokio::spawn(async move {
        let mut values: HashMap<Vec<u8>, VecDeque<OwnedReply>> = HashMap::new();
        for h in handles {
            match h.wait().await {
                Ok(units) => {
                    for u in units {
                        match &u {
                            OwnedReply::Value { key, .. } => values.entry(key.to_vec()).or_default().push_back(u),
                            OwnedReply::End => {}
                            other => {
                                let mut out = Vec::new();
                                other.as_reply().encode(&mut out);
                                return out;
                            }
                        }
                    }
                }
                Err(e) => return server_error(&pool, &e),
            }
        }
        let mut out = Vec::new();
        for key in &order {
            if let Some(u) = values.get_mut(key).and_then(VecDeque::pop_front) {
                u.as_reply().encode(&mut out);
            }
        }
        Reply::End.encode(&mut out);
        out
    }))
}

/// Meta commands: forwarded by key. Quiet mode is handled here: the backend
/// is asked without `q` (so every request has exactly one reply to match),
/// and the proxy drops the replies memcached would have suppressed.
async fn meta(
    r: &Route,
    server: usize,
    cmd: &'static [u8],
    key: &[u8],
    len: Option<usize>,
    flags: &MetaFlags<'_>,
    data: Option<&[u8]>,
) -> Work {
    let mut bytes = Vec::with_capacity(64 + data.map_or(0, <[u8]>::len));
    bytes.extend_from_slice(cmd);
    bytes.push(b' ');
    if flags.base64 {
        bytes.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(key).as_bytes());
    } else {
        bytes.extend_from_slice(key);
    }
    if let Some(n) = len {
        bytes.push(b' ');
        memshard_proto::put_u64(&mut bytes, n as u64);
    }
    for t in flags.tokens() {
        if t.first() != Some(&b'q') {
            bytes.push(b' ');
            bytes.extend_from_slice(t);
        }
    }
    bytes.extend_from_slice(b"\r\n");
    if let Some(d) = data {
        bytes.extend_from_slice(d);
        bytes.extend_from_slice(b"\r\n");
    }
    match send(r, server, bytes.into(), 1).await {
        Err(e) => Work::Ready(server_error(&r.pool, &e)),
        Ok(handle) => Work::Backend(BackendReply {
            handle,
            pool: r.pool.clone(),
            quiet: flags.quiet.then_some(cmd),
            silent: false,
        }),
    }
}

/// memcached 1.6's quiet-mode rules: mg hides `EN`, ms and md hide `HD`, ma
/// hides `HD` and `VA`.
fn suppressed(cmd: &[u8], u: &OwnedReply) -> bool {
    let OwnedReply::Meta { code, .. } = u else { return false };
    matches!((cmd, code), (b"mg", MetaCode::En) | (b"ms" | b"md", MetaCode::Hd) | (b"ma", MetaCode::Hd | MetaCode::Va))
}

/// flush_all / verbosity: sent to every server of the pool (ejected ones
/// included: a flush must not miss a server that comes back). `OK` when every
/// server said so, otherwise the first failure.
async fn fan_out(r: &Route, bytes: Vec<u8>, want_reply: bool) -> Work {
    let pool = r.pool.clone();
    let bytes = Bytes::from(bytes);
    let mut handles = Vec::new();
    let mut first_err = None;
    for server in 0..r.pool.addrs.len() {
        match send(r, server, bytes.clone(), usize::from(want_reply)).await {
            Ok(h) => handles.push(h),
            Err(e) => {
                first_err.get_or_insert_with(|| server_error(&pool, &e));
            }
        }
    }
    if !want_reply {
        drain(handles);
        return Work::Ready(Vec::new());
    }
    Work::Pending(tokio::spawn(async move {
        let mut err = first_err;
        for h in handles {
            match h.wait().await {
                Ok(units) => {
                    if !matches!(units.first(), Some(OwnedReply::Ok)) && err.is_none() {
                        let mut out = Vec::new();
                        encode_units(&units, &mut out);
                        err = Some(out);
                    }
                }
                Err(e) => {
                    err.get_or_insert_with(|| server_error(&pool, &e));
                }
            }
        }
        err.unwrap_or_else(|| line("OK"))
    }))
}
