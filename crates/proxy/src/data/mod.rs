//! The data path: a request from the client's socket to a backend and its
//! answer back. `client` reads and routes each request, `slots` keeps each
//! client's answers in its request order (merging multi-server answers),
//! `backend` holds each worker's backend connections, their request queues,
//! their socket I/O and the answers cut out of their byte streams;
//! `replica` runs the requests of a pool with several owners per key in
//! steps over those connections. It reads
//! the control plane's state (the pool's ring, addresses, health) and never
//! changes it except by reporting a server's successes and failures (and, in
//! a replicated pool, an owner that missed a write).

pub(crate) mod backend;
pub(crate) mod client;
pub(crate) mod replica;
pub(crate) mod slots;
