//! One pipelined connection: a writer task, a reader task and the FIFO of
//! waiters between them.
//!
//! memcached answers requests on a connection strictly in order, so matching
//! replies to requests needs no ids, only a queue. A caller encodes its request,
//! takes an in-flight permit and hands `(bytes, oneshot sender)` to the writer
//! task. The writer pushes the sender onto the FIFO *before* it writes the
//! bytes (so a reply can never arrive ahead of its waiter), coalesces whatever
//! else is queued into one `write`, and writes. The reader task decodes reply
//! units with [`Reply::decode`] and gives each run of units up to the expected
//! number of terminal units (`END`, `STORED`, …) to the waiter at the front.
//!
//! The permit travels with the request and is released when its reply is
//! delivered (or, for `noreply`, when it is written), so at most
//! `max_in_flight` requests are queued or unanswered at any time and memory
//! cannot grow without bound.
//!
//! Any I/O error, EOF, undecodable reply or request timeout *breaks* the
//! connection: the reason is recorded, every waiter gets it, both tasks are
//! aborted (dropping the socket), and later requests fail with
//! [`ClientError::Closed`]. A connection is never repaired; [`Pool`](crate::Pool)
//! replaces broken ones.

use crate::error::{ClientError, Result};
use crate::peer::Peer;
use crate::reply::OwnedReply;
use bytes::{Bytes, BytesMut};
use memshard_proto::{MetaCode, Reply, ReplyError};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;

/// The writer stops coalescing queued requests once a write is this large.
const WRITE_BATCH: usize = 64 * 1024;

/// The reader's buffer grows by this much when it runs low on spare room.
const READ_CHUNK: usize = 64 * 1024;

/// Settings of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest a request may take, from the call (including waiting for an
    /// in-flight slot) to its reply. Exceeding it breaks the connection, because
    /// a reply that is late is still owed and would misalign the FIFO if the
    /// connection were reused. [`Client::with_timeout`] overrides it per handle.
    pub timeout: Duration,
    /// Longest a connect (TCP or unix socket) may take.
    pub connect_timeout: Duration,
    /// Most requests queued or awaiting a reply on the connection; callers
    /// beyond that wait for a slot (clamped to at least 1).
    pub max_in_flight: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { timeout: Duration::from_secs(1), connect_timeout: Duration::from_secs(1), max_in_flight: 1024 }
    }
}

type Waiter = oneshot::Sender<Result<Vec<OwnedReply>>>;

/// Where the answer to a request ends.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// After this many more terminal units.
    Terminals(usize),
    /// At the `MN` unit (a batch of quiet meta commands closed by `mn`).
    Noop,
}

/// A request whose answer is still being read.
struct Pending {
    expect: Expect,
    replies: Vec<OwnedReply>,
    waiter: Waiter,
    _permit: OwnedSemaphorePermit,
}

/// A request on its way to the writer task.
struct Outgoing {
    bytes: Bytes,
    /// Where the answer ends and who waits for it; `None` for noreply requests.
    reply: Option<(Expect, Waiter)>,
    permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct State {
    fifo: VecDeque<Pending>,
    broken: Option<ClientError>,
    tasks: Vec<AbortHandle>,
}

/// State shared by the handles and the two tasks. The lock is only held for
/// queue operations, never across an `.await`.
struct Shared {
    state: Mutex<State>,
    /// Mirrors `state.broken.is_some()` for a lock-free fast path.
    broken: AtomicBool,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Shared {
    /// Breaks the connection (first reason wins): fails every waiter, wakes
    /// callers waiting for a permit, aborts both tasks.
    fn fail(&self, err: ClientError) {
        let (fifo, tasks) = {
            let mut st = self.state.lock();
            if st.broken.is_some() {
                return;
            }
            st.broken = Some(err.clone());
            (std::mem::take(&mut st.fifo), std::mem::take(&mut st.tasks))
        };
        self.broken.store(true, Ordering::Release);
        self.permits.close();
        tracing::debug!(error = %err, waiters = fifo.len(), "memcached connection broken");
        for p in fifo {
            let _ = p.waiter.send(Err(err.clone()));
        }
        for t in tasks {
            t.abort();
        }
    }

    /// Why the connection broke (`Closed` if it has not, which only happens
    /// when a task vanished without reporting).
    fn reason(&self) -> ClientError {
        self.state.lock().broken.clone().unwrap_or(ClientError::Closed)
    }

    /// Queues a waiter; refused once the connection is broken.
    fn push(&self, p: Pending) -> Result<(), Pending> {
        let mut st = self.state.lock();
        if st.broken.is_some() {
            return Err(p);
        }
        st.fifo.push_back(p);
        Ok(())
    }

    fn pop(&self) -> Option<Pending> {
        self.state.lock().fifo.pop_front()
    }

    fn register_tasks(&self, handles: [AbortHandle; 2]) {
        let mut st = self.state.lock();
        if st.broken.is_some() {
            // Broke before we got here (e.g. instant EOF): nothing to keep alive.
            handles.iter().for_each(AbortHandle::abort);
        } else {
            st.tasks.extend(handles);
        }
    }
}

/// Owned by the handles only; when the last handle goes, the sender drops and
/// the writer task finishes queued writes, then closes the connection.
struct Conn {
    tx: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    peer: Peer,
}

/// A handle to one pipelined memcached connection.
///
/// Cloning is cheap (an `Arc`), and clones may be used from many tasks at once:
/// their requests are pipelined on the same connection and each gets its
/// own reply. Dropping a request future after it was queued does not
/// desynchronise the connection: the request is still sent and its reply is
/// read and discarded.
#[derive(Clone)]
pub struct Client {
    conn: Arc<Conn>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.conn.peer)
            .field("timeout", &self.timeout)
            .field("broken", &self.is_broken())
            .finish()
    }
}

impl Client {
    /// Starts the reader and writer tasks on the two halves of a connected
    /// stream. Generic so that each kind of stream gets its own monomorphic
    /// loops: nothing is dispatched per read or write.
    pub(crate) fn start<R, W>(rd: R, wr: W, peer: Peer, config: ClientConfig) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let max_in_flight = config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            broken: AtomicBool::new(false),
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(wr, rx, Arc::clone(&shared)));
        let reader = tokio::spawn(read_loop(rd, Arc::clone(&shared)));
        shared.register_tasks([writer.abort_handle(), reader.abort_handle()]);
        Client { conn: Arc::new(Conn { tx, shared, peer }), timeout: config.timeout }
    }

    /// A handle to the same connection whose requests use `timeout` instead.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { conn: Arc::clone(&self.conn), timeout }
    }

    /// This handle's request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The server's TCP address; `None` for a unix-socket connection.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.conn.peer {
            Peer::Tcp(a) => Some(*a),
            Peer::Unix(_) => None,
        }
    }

    /// Where the connection goes: a TCP address or a unix socket path.
    pub fn peer(&self) -> &Peer {
        &self.conn.peer
    }

    /// Whether the connection has failed; a broken client never recovers.
    pub fn is_broken(&self) -> bool {
        self.conn.shared.broken.load(Ordering::Acquire)
    }

    /// Requests currently queued or awaiting a reply (for least-loaded picks).
    pub fn in_flight(&self) -> usize {
        let shared = &self.conn.shared;
        shared.max_in_flight.saturating_sub(shared.permits.available_permits())
    }

    /// Sends pre-encoded request bytes and collects the reply units up to and
    /// including the `terminal_units`-th terminal unit (see
    /// [`OwnedReply::is_terminal`]). The escape hatch for tests and for
    /// commands without a typed method; `terminal_units == 0` sends without
    /// waiting, like [`Client::send_noreply`].
    ///
    /// The bytes must hold exactly the requests that produce those units: a
    /// request whose replies are miscounted misaligns every later reply.
    pub async fn request(&self, bytes: impl Into<Bytes>, terminal_units: usize) -> Result<Vec<OwnedReply>> {
        if terminal_units == 0 {
            self.send_noreply(bytes).await?;
            return Ok(Vec::new());
        }
        self.call(bytes.into(), terminal_units).await
    }

    /// Sends pre-encoded requests followed by `mn\r\n` and returns every reply
    /// unit before the `MN` marker. This is how quiet meta commands (`q` flag,
    /// which answer nothing on success) can be pipelined without knowing the
    /// number of replies in advance; the typed meta methods never set `q`.
    pub async fn quiet_batch(&self, bytes: impl AsRef<[u8]>) -> Result<Vec<OwnedReply>> {
        let bytes = bytes.as_ref();
        let mut buf = Vec::with_capacity(bytes.len() + 4);
        buf.extend_from_slice(bytes);
        buf.extend_from_slice(b"mn\r\n");
        let mut replies = self.exchange(buf.into(), Expect::Noop).await?;
        replies.pop(); // the MN marker
        Ok(replies)
    }

    /// Queues pre-encoded `noreply` request bytes and returns without waiting
    /// for the server: nothing is added to the reply FIFO. The bytes must not
    /// provoke a reply (memcached still answers some malformed noreply requests
    /// with an error line, which would be taken as the next request's reply).
    pub async fn send_noreply(&self, bytes: impl Into<Bytes>) -> Result<()> {
        let bytes = bytes.into();
        let enqueue = async {
            let permit = self.permit().await?;
            self.conn.tx.send(Outgoing { bytes, reply: None, permit }).map_err(|_| self.conn.shared.reason())
        };
        self.with_deadline(enqueue).await
    }

    /// Sends one request and waits for `units` terminal reply units.
    /// Queues a request right now, without awaiting, when an in-flight slot
    /// is free (`None` otherwise: use [`Client::request`]). Requests started
    /// one after another reach the server in that order. Await
    /// [`Started::finish`] for the reply; the connection's timeout applies.
    pub fn try_start(&self, bytes: impl Into<Bytes>, terminal_units: usize) -> Option<Result<Started>> {
        let shared = &self.conn.shared;
        if shared.broken.load(Ordering::Acquire) {
            return Some(Err(ClientError::Closed));
        }
        let permit = Arc::clone(&shared.permits).try_acquire_owned().ok()?;
        let (tx, rx) = oneshot::channel();
        let expect = Expect::Terminals(terminal_units.max(1));
        if self.conn.tx.send(Outgoing { bytes: bytes.into(), reply: Some((expect, tx)), permit }).is_err() {
            return Some(Err(shared.reason()));
        }
        Some(Ok(Started { rx, client: self.clone() }))
    }

    /// Like [`Client::send_noreply`], but queues right now without awaiting
    /// when a slot is free (`None` otherwise), keeping order with
    /// [`Client::try_start`].
    pub fn try_send_noreply(&self, bytes: impl Into<Bytes>) -> Option<Result<()>> {
        let shared = &self.conn.shared;
        if shared.broken.load(Ordering::Acquire) {
            return Some(Err(ClientError::Closed));
        }
        let permit = Arc::clone(&shared.permits).try_acquire_owned().ok()?;
        Some(self.conn.tx.send(Outgoing { bytes: bytes.into(), reply: None, permit }).map_err(|_| shared.reason()))
    }

    pub(crate) async fn call(&self, bytes: Bytes, units: usize) -> Result<Vec<OwnedReply>> {
        self.exchange(bytes, Expect::Terminals(units)).await
    }

    async fn exchange(&self, bytes: Bytes, expect: Expect) -> Result<Vec<OwnedReply>> {
        let shared = &self.conn.shared;
        let exchange = async {
            let permit = self.permit().await?;
            let (tx, rx) = oneshot::channel();
            self.conn.tx.send(Outgoing { bytes, reply: Some((expect, tx)), permit }).map_err(|_| shared.reason())?;
            // A dropped sender means a task died with the connection: report why.
            rx.await.unwrap_or_else(|_| Err(shared.reason()))
        };
        self.with_deadline(exchange).await
    }

    async fn with_deadline<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                // The late reply is still owed: reusing the connection would hand
                // it to the next waiter, so the whole connection goes.
                self.conn.shared.fail(ClientError::Timeout);
                Err(ClientError::Timeout)
            }
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit> {
        let shared = &self.conn.shared;
        if shared.broken.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        // The semaphore is closed when the connection breaks.
        Arc::clone(&shared.permits).acquire_owned().await.map_err(|_| ClientError::Closed)
    }
}

/// A request queued by [`Client::try_start`].
#[derive(Debug)]
pub struct Started {
    rx: oneshot::Receiver<Result<Vec<OwnedReply>>>,
    client: Client,
}

impl Started {
    /// The reply units, or the error that broke the connection (a timeout
    /// breaks it, as for every request).
    pub async fn finish(self) -> Result<Vec<OwnedReply>> {
        let shared = Arc::clone(&self.client.conn.shared);
        let rx = self.rx;
        self.client.with_deadline(async move { rx.await.unwrap_or_else(|_| Err(shared.reason())) }).await
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::UnboundedReceiver<Outgoing>, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    // Permits of noreply requests: released once their bytes are written.
    let mut written_permits = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(Outgoing { bytes, reply, permit }) = next {
            match reply {
                Some((expect, waiter)) => {
                    let pending = Pending { expect, replies: Vec::new(), waiter, _permit: permit };
                    if let Err(p) = shared.push(pending) {
                        let _ = p.waiter.send(Err(shared.reason()));
                        return;
                    }
                }
                None => written_permits.push(permit),
            }
            buf.extend_from_slice(&bytes);
            // Coalesce everything already queued into one syscall.
            next = if buf.len() < WRITE_BATCH { rx.try_recv().ok() } else { None };
        }
        // The flush pushes out what a TLS stream buffers (a no-op on a socket).
        if let Err(e) = async {
            wr.write_all(&buf).await?;
            wr.flush().await
        }
        .await
        {
            shared.fail(e.into());
            return;
        }
        buf.clear();
        written_permits.clear();
        if buf.capacity() > 4 * WRITE_BATCH {
            // One huge value should not pin its buffer for the connection's life.
            buf = Vec::with_capacity(WRITE_BATCH);
        }
    }
    // Every handle is gone: queued writes are done, so hang up. Nobody can be
    // waiting for a reply any more (waiting needs a handle).
    let _ = wr.shutdown().await;
    shared.fail(ClientError::Closed);
}

async fn read_loop<R: AsyncRead + Unpin>(mut rd: R, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut current: Option<Pending> = None;
    let err = loop {
        if let Err(e) = dispatch(&mut buf, &mut current, &shared) {
            break e;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break ClientError::Closed,
            Ok(_) => {}
            Err(e) => break e.into(),
        }
    };
    // The request being assembled is no longer in the FIFO: fail it here.
    if let Some(p) = current.take() {
        let _ = p.waiter.send(Err(err.clone()));
    }
    shared.fail(err);
}

/// Decodes every complete reply unit in `buf` and hands finished answers to
/// their waiters.
fn dispatch(buf: &mut BytesMut, current: &mut Option<Pending>, shared: &Shared) -> Result<()> {
    loop {
        let used = match Reply::decode(buf)? {
            Some((_, used)) => used,
            None => return Ok(()),
        };
        // Values are handed out as slices of the read buffer, not copies.
        let frame = buf.split_to(used).freeze();
        let reply = match Reply::decode(&frame)? {
            Some((r, _)) => OwnedReply::from_frame(&frame, &r),
            None => return Err(ClientError::Protocol(ReplyError::Malformed("reply vanished".into()))),
        };
        let pending = match current {
            Some(p) => p,
            None => match shared.pop() {
                Some(p) => current.insert(p),
                None => {
                    let what = format!("unsolicited reply {:?}", reply.as_reply());
                    return Err(ClientError::Protocol(ReplyError::Malformed(what)));
                }
            },
        };
        let done = match &mut pending.expect {
            Expect::Terminals(n) => {
                if reply.is_terminal() {
                    *n = n.saturating_sub(1);
                }
                *n == 0
            }
            Expect::Noop => matches!(reply, OwnedReply::Meta { code: MetaCode::Mn, .. }),
        };
        pending.replies.push(reply);
        if done {
            if let Some(p) = current.take() {
                // The caller may have given up (dropped its future); the reply
                // was consumed either way, so the FIFO stays aligned.
                let _ = p.waiter.send(Ok(p.replies));
            }
        }
    }
}
