//! Idle connections parked off the runtime.
//!
//! A client connection served by a task costs that task (its future, the
//! handler's queues) and a reactor registration: over a kilobyte, for every
//! connection, whether it sends anything or not. A proxy in front of many
//! app pods holds thousands of connections that are mostly idle. So a
//! connection that has been idle for a while hands its stream back
//! ([`Seat::park`](crate::Seat::park)); the worker keeps it here, in an
//! epoll set of its own (mio), as a bare socket with its connection permit
//! — a few dozen bytes — and gives it a new handler task the moment the
//! client sends again. The parking lot's epoll descriptor is itself watched
//! by the worker's reactor, so parked connections add nothing to a busy
//! worker's loop.

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// A worker's parked connections. Its epoll descriptor is what the worker's
/// reactor watches (through `AsyncFd`, which owns the lot, so the descriptor
/// lives exactly as long as the watch).
pub(crate) struct ParkingLot<T> {
    fd: RawFd,
    inner: RefCell<Inner<T>>,
}

struct Inner<T> {
    poll: Poll,
    events: Events,
    /// Parked entries by token; `None` slots are free (their indices in `free`).
    parked: Vec<Option<(RawFd, T)>>,
    free: Vec<usize>,
}

impl<T> AsRawFd for ParkingLot<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl<T> ParkingLot<T> {
    pub(crate) fn new() -> io::Result<ParkingLot<T>> {
        let poll = Poll::new()?;
        let fd = poll.as_raw_fd();
        let inner = Inner { poll, events: Events::with_capacity(256), parked: Vec::new(), free: Vec::new() };
        Ok(ParkingLot { fd, inner: RefCell::new(inner) })
    }

    /// Connections parked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let i = self.inner.borrow();
        i.parked.len() - i.free.len()
    }

    /// Parks `entry`, whose socket is `fd`, until it is readable (data, or
    /// the peer closing). A socket that cannot be watched is given back.
    pub(crate) fn park(&self, fd: RawFd, entry: T) -> Result<(), T> {
        let mut i = self.inner.borrow_mut();
        let key = match i.free.pop() {
            Some(k) => k,
            None => {
                i.parked.push(None);
                i.parked.len() - 1
            }
        };
        // Edge-triggered: data that arrived before this call is reported too.
        if i.poll.registry().register(&mut SourceFd(&fd), Token(key), Interest::READABLE).is_err() {
            i.free.push(key);
            return Err(entry);
        }
        i.parked[key] = Some((fd, entry));
        Ok(())
    }

    /// Takes out every parked connection that became readable.
    pub(crate) fn ready(&self) -> Vec<T> {
        let mut guard = self.inner.borrow_mut();
        let i = &mut *guard;
        let mut out = Vec::new();
        loop {
            i.events.clear();
            if i.poll.poll(&mut i.events, Some(std::time::Duration::ZERO)).is_err() {
                break;
            }
            let keys: Vec<usize> = i.events.iter().map(|e| e.token().0).collect();
            for &key in &keys {
                if let Some((fd, entry)) = i.parked.get_mut(key).and_then(Option::take) {
                    let _ = i.poll.registry().deregister(&mut SourceFd(&fd));
                    i.free.push(key);
                    out.push(entry);
                }
            }
            // A full batch of events may have left more behind.
            if keys.len() < i.events.capacity() {
                break;
            }
        }
        // Give the slot table back once it is empty.
        if i.parked.len() == i.free.len() && i.parked.capacity() > 1024 {
            i.parked = Vec::new();
            i.free = Vec::new();
        }
        out
    }

    /// Takes out every parked connection (shutdown).
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut guard = self.inner.borrow_mut();
        let i = &mut *guard;
        let mut out = Vec::new();
        for slot in &mut i.parked {
            if let Some((fd, entry)) = slot.take() {
                let _ = i.poll.registry().deregister(&mut SourceFd(&fd));
                out.push(entry);
            }
        }
        i.parked.clear();
        i.free.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_parked_socket_comes_back_when_its_peer_writes() {
        let lot = ParkingLot::new().expect("epoll");
        let (a, mut a_peer) = UnixStream::pair().expect("pair");
        let (b, _b_peer) = UnixStream::pair().expect("pair");
        lot.park(a.as_raw_fd(), "a").expect("parked");
        lot.park(b.as_raw_fd(), "b").expect("parked");
        assert_eq!(lot.len(), 2);
        assert!(lot.ready().is_empty(), "nobody wrote yet");
        a_peer.write_all(b"get k\r\n").expect("write");
        assert_eq!(lot.ready(), vec!["a"]);
        assert_eq!(lot.len(), 1);
        // A peer that closes wakes its socket too.
        drop(_b_peer);
        assert_eq!(lot.ready(), vec!["b"]);
        assert_eq!(lot.len(), 0);
        drop((a, b));
    }

    #[test]
    fn data_that_arrived_before_parking_is_seen() {
        let lot = ParkingLot::new().expect("epoll");
        let (a, mut a_peer) = UnixStream::pair().expect("pair");
        a_peer.write_all(b"x").expect("write");
        lot.park(a.as_raw_fd(), 1).expect("parked");
        assert_eq!(lot.ready(), vec![1]);
    }
}
