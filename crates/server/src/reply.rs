//! What every command module answers through: `memshard_proto::Reply`
//! (memcached's reply lines, encoded in one place), the version strings the
//! server reports, and what the connection does after a command. A module
//! that executes commands depends on this one and on the store, never on
//! another command module.

use memshard_proto::Reply;

/// The version `version` and `stats` answer: the memcached release whose
/// protocol memshard implements, as one token, because clients split that
/// line (memshard's own version is `stats`' `memshard_version`).
pub(crate) const VERSION: &str = "1.6.18";

/// memshard's own version, for `stats`.
pub(crate) const MEMSHARD_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Keep reading.
    Continue,
    /// Close after flushing replies.
    Close,
}

/// Appends `reply`.
pub(crate) fn send(out: &mut Vec<u8>, reply: Reply<'_>) {
    reply.encode(out);
}

/// Appends `reply` unless the request said `noreply`.
pub(crate) fn send_unless(out: &mut Vec<u8>, noreply: bool, reply: Reply<'_>) {
    if !noreply {
        reply.encode(out);
    }
}

/// A full reply line from `memshard_proto::msg` (`CLIENT_ERROR …`), as a reply.
pub(crate) fn msg_line(line: &'static str) -> Reply<'static> {
    Reply::Status(line.as_bytes())
}

/// A value's data block after its meta `VA` line: the bytes, then `\r\n`.
pub(crate) fn data_block(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}
