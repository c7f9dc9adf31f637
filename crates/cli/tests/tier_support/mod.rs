//! Support for the fault-injection suite: a cache tier of real processes on
//! loopback (shards, proxy, app), faults (SIGKILL, SIGSTOP/SIGCONT, restart),
//! and a load generator whose every read is checked against the versions
//! written (see [`checker`]).
#![allow(dead_code)] // each fault suite uses a different subset

pub(crate) mod checker;
pub(crate) mod load;
pub(crate) mod run;
pub(crate) mod slow;
pub(crate) mod tier;
pub(crate) mod warm;
