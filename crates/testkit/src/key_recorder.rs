//! Fake memcached backends that record which keys they are asked for: the
//! witness for "which server did this key go to?" behind a proxy. Each
//! backend answers `get`/`gets` with `END` (recording every key under its own
//! index), `version` with `VERSION 1.6.18`, and anything else with `ERROR`.
//! Used by the proxy's nutcracker differential test and by the ring's
//! golden-vector generator (both put nutcracker or memshard in front).
//!
//! Plain threads and std sockets: it needs no runtime, so a synchronous
//! harness and a tokio test use it alike.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Where a backend listens: a TCP address (port 0: any free port) or a unix
/// socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAddr {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A unix socket path (a stale file there is replaced).
    Unix(PathBuf),
}

impl BackendAddr {
    /// The address as a pool file writes it (`127.0.0.1:PORT`, `/path`).
    pub fn pool_text(&self) -> String {
        match self {
            BackendAddr::Tcp(a) => a.to_string(),
            BackendAddr::Unix(p) => p.display().to_string(),
        }
    }
}

type Log = Arc<Mutex<Vec<(Vec<u8>, usize)>>>;

/// A set of key-recording backends; dropping it stops their accept loops.
#[derive(Debug)]
pub struct KeyRecorders {
    log: Log,
    stop: Arc<AtomicBool>,
    addrs: Vec<BackendAddr>,
}

impl KeyRecorders {
    /// Binds one backend per address; backend `i` records its keys as `i`.
    pub fn start(addrs: &[BackendAddr]) -> io::Result<KeyRecorders> {
        let log: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut bound = Vec::with_capacity(addrs.len());
        for (id, addr) in addrs.iter().enumerate() {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            match addr {
                BackendAddr::Tcp(sock) => {
                    if !sock.ip().is_loopback() {
                        return Err(io::Error::other(format!("{sock}: fake backends listen on loopback only")));
                    }
                    let listener = TcpListener::bind(sock)
                        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind fake backend {sock}: {e}")))?;
                    bound.push(BackendAddr::Tcp(listener.local_addr()?));
                    thread::spawn(move || accept(listener.incoming(), id, &log, &stop));
                }
                BackendAddr::Unix(path) => {
                    let _ = std::fs::remove_file(path);
                    let listener = UnixListener::bind(path)?;
                    bound.push(addr.clone());
                    thread::spawn(move || accept(listener.incoming(), id, &log, &stop));
                }
            }
        }
        Ok(KeyRecorders { log, stop, addrs: bound })
    }

    /// The addresses bound, in order (port 0 replaced by the port taken).
    pub fn addrs(&self) -> &[BackendAddr] {
        &self.addrs
    }

    /// Takes the `(key, backend index)` records gathered so far, in arrival order.
    pub fn drain(&self) -> Vec<(Vec<u8>, usize)> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for KeyRecorders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake each accept loop so it sees the flag and returns.
        for addr in &self.addrs {
            match addr {
                BackendAddr::Tcp(sock) => drop(TcpStream::connect_timeout(sock, Duration::from_millis(200))),
                BackendAddr::Unix(path) => {
                    drop(UnixStream::connect(path));
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

fn accept<S, I>(incoming: I, id: usize, log: &Log, stop: &AtomicBool)
where
    S: io::Read + io::Write + Send + 'static,
    I: Iterator<Item = io::Result<S>>,
{
    for conn in incoming {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Ok(conn) = conn {
            let log = Arc::clone(log);
            thread::spawn(move || serve(conn, id, &log));
        }
    }
}

/// One backend connection, until the peer closes it.
fn serve<S: io::Read + Write>(conn: S, id: usize, log: &Mutex<Vec<(Vec<u8>, usize)>>) {
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request = line.strip_suffix(b"\r\n").unwrap_or(&line);
        let mut words = request.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let reply: &[u8] = match words.next() {
            Some(b"get" | b"gets") => {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.extend(words.map(|key| (key.to_vec(), id)));
                b"END\r\n"
            }
            Some(b"version") => b"VERSION 1.6.18\r\n",
            _ => b"ERROR\r\n",
        };
        if reader.get_mut().write_all(reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn records_keys_by_backend() {
        let any = "127.0.0.1:0".parse().expect("addr");
        let r = KeyRecorders::start(&[BackendAddr::Tcp(any), BackendAddr::Tcp(any)]).expect("bind");
        for (i, addr) in r.addrs().iter().enumerate() {
            let BackendAddr::Tcp(a) = addr else { panic!("tcp") };
            let mut s = TcpStream::connect(a).expect("connect");
            s.write_all(format!("get a{i} b{i}\r\nversion\r\nset x\r\n").as_bytes()).expect("write");
            let mut got = Vec::new();
            let mut chunk = [0u8; 64];
            while !got.ends_with(b"ERROR\r\n") {
                let n = s.read(&mut chunk).expect("read");
                assert!(n > 0);
                got.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(got, b"END\r\nVERSION 1.6.18\r\nERROR\r\n");
        }
        let mut seen = r.drain();
        seen.sort();
        assert_eq!(seen, [(b"a0".to_vec(), 0), (b"a1".to_vec(), 1), (b"b0".to_vec(), 0), (b"b1".to_vec(), 1)]);
        assert!(r.drain().is_empty());
    }
}
