//! The backend side, per worker thread: the table of connections to each
//! server (`conns`), each connection's request queue (`upstream`), the task
//! that connects it and moves its bytes (`link`), the answers cut out of
//! what a server sends back (`answer`), and how a quiet meta command is
//! asked and answered (`quiet`).

pub(crate) mod answer;
pub(crate) mod conns;
pub(crate) mod link;
pub(crate) mod quiet;
pub(crate) mod upstream;
