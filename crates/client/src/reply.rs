//! Owned replies and the typed results of the client's methods.

use bytes::Bytes;
use memshard_proto::{MetaCode, Reply, meta_flag_tokens};

/// One reply unit detached from the read buffer (see [`Reply`]).
///
/// Values are copied out of the connection's read buffer, so holding an item
/// never pins a whole buffer in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedReply {
    /// `VALUE <key> <flags> <bytes> [<cas>]` and its data block.
    Value {
        /// The key.
        key: Bytes,
        /// Client flags.
        flags: u32,
        /// CAS unique (gets/gats only).
        cas: Option<u64>,
        /// The value.
        data: Bytes,
    },
    /// `END`.
    End,
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS`.
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK`.
    Ok,
    /// `RESET`.
    Reset,
    /// The new value after incr/decr.
    Number(u64),
    /// `VERSION <text>`.
    Version(String),
    /// `STAT <name> <value>`.
    Stat {
        /// Stat name.
        name: String,
        /// Stat value text.
        value: String,
    },
    /// `ERROR`.
    Error,
    /// `CLIENT_ERROR <message>`.
    ClientError(String),
    /// `SERVER_ERROR <message>`.
    ServerError(String),
    /// An operator command's status line (`NOSPARE …`).
    Status(String),
    /// A meta reply.
    Meta {
        /// Status code.
        code: MetaCode,
        /// The flag text after the code (and after the size for `VA`).
        flags: String,
        /// The value, for `VA`.
        data: Option<Bytes>,
    },
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl OwnedReply {
    /// Copies a decoded reply unit out of the buffer it borrows.
    pub fn from_reply(r: &Reply<'_>) -> Self {
        match *r {
            Reply::Value { key, flags, cas, data } => {
                OwnedReply::Value { key: Bytes::copy_from_slice(key), flags, cas, data: Bytes::copy_from_slice(data) }
            }
            Reply::End => OwnedReply::End,
            Reply::Stored => OwnedReply::Stored,
            Reply::NotStored => OwnedReply::NotStored,
            Reply::Exists => OwnedReply::Exists,
            Reply::NotFound => OwnedReply::NotFound,
            Reply::Deleted => OwnedReply::Deleted,
            Reply::Touched => OwnedReply::Touched,
            Reply::Ok => OwnedReply::Ok,
            Reply::Reset => OwnedReply::Reset,
            Reply::Number(n) => OwnedReply::Number(n),
            Reply::Version(v) => OwnedReply::Version(text(v)),
            Reply::Stat { name, value } => OwnedReply::Stat { name: text(name), value: text(value) },
            Reply::Error => OwnedReply::Error,
            Reply::ClientError(m) => OwnedReply::ClientError(text(m)),
            Reply::ServerError(m) => OwnedReply::ServerError(text(m)),
            Reply::Status(m) => OwnedReply::Status(text(m)),
            Reply::Meta { code, flags, data } => {
                OwnedReply::Meta { code, flags: text(flags), data: data.map(Bytes::copy_from_slice) }
            }
        }
    }

    /// Like [`OwnedReply::from_reply`], but keys and values become slices of
    /// `frame` (the bytes `r` was decoded from) instead of copies.
    pub fn from_frame(frame: &Bytes, r: &Reply<'_>) -> Self {
        match *r {
            Reply::Value { key, flags, cas, data } => {
                OwnedReply::Value { key: frame.slice_ref(key), flags, cas, data: frame.slice_ref(data) }
            }
            Reply::Meta { code, flags, data } => {
                OwnedReply::Meta { code, flags: text(flags), data: data.map(|d| frame.slice_ref(d)) }
            }
            ref other => OwnedReply::from_reply(other),
        }
    }

    /// Borrows the unit back as a codec [`Reply`], e.g. to re-encode it.
    pub fn as_reply(&self) -> Reply<'_> {
        match self {
            OwnedReply::Value { key, flags, cas, data } => Reply::Value { key, flags: *flags, cas: *cas, data },
            OwnedReply::End => Reply::End,
            OwnedReply::Stored => Reply::Stored,
            OwnedReply::NotStored => Reply::NotStored,
            OwnedReply::Exists => Reply::Exists,
            OwnedReply::NotFound => Reply::NotFound,
            OwnedReply::Deleted => Reply::Deleted,
            OwnedReply::Touched => Reply::Touched,
            OwnedReply::Ok => Reply::Ok,
            OwnedReply::Reset => Reply::Reset,
            OwnedReply::Number(n) => Reply::Number(*n),
            OwnedReply::Version(v) => Reply::Version(v.as_bytes()),
            OwnedReply::Stat { name, value } => Reply::Stat { name: name.as_bytes(), value: value.as_bytes() },
            OwnedReply::Error => Reply::Error,
            OwnedReply::ClientError(m) => Reply::ClientError(m.as_bytes()),
            OwnedReply::ServerError(m) => Reply::ServerError(m.as_bytes()),
            OwnedReply::Status(m) => Reply::Status(m.as_bytes()),
            OwnedReply::Meta { code, flags, data } => {
                Reply::Meta { code: *code, flags: flags.as_bytes(), data: data.as_deref() }
            }
        }
    }

    /// Whether this unit ends an answer (see [`Reply::is_terminal`]).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, OwnedReply::Value { .. } | OwnedReply::Stat { .. })
    }

    /// The whole error line for `ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`.
    pub fn error_line(&self) -> Option<String> {
        match self {
            OwnedReply::Error => Some("ERROR".to_owned()),
            OwnedReply::ClientError(m) => Some(format!("CLIENT_ERROR {m}")),
            OwnedReply::ServerError(m) => Some(format!("SERVER_ERROR {m}")),
            _ => None,
        }
    }
}

/// A cache item as returned by the retrieval commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The value.
    pub value: Bytes,
    /// Client flags stored with the value.
    pub flags: u32,
    /// CAS unique: `Some` for `gets`, `None` for `get`.
    pub cas: Option<u64>,
}

/// Outcome of a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreStatus {
    /// `STORED`.
    Stored,
    /// `NOT_STORED`: the add/replace/append/prepend condition failed.
    NotStored,
    /// `EXISTS`: a cas whose unique no longer matches.
    Exists,
    /// `NOT_FOUND`: a cas on a missing key.
    NotFound,
}

/// The reply to a meta command (`mg`, `ms`, `md`, `ma`, `mn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaReply {
    /// Status code (`HD`, `VA`, `EN`, `NS`, `EX`, `NF`, `MN`).
    pub code: MetaCode,
    /// Returned flags as sent by the server, space separated (`t-1 f0 c12`).
    pub flags: String,
    /// The value, when the code is `VA`.
    pub value: Option<Bytes>,
}

impl MetaReply {
    /// The argument of the returned flag `letter` (`"12"` for `c12`), `""` for a
    /// flag without argument, `None` when the flag is absent.
    pub fn flag(&self, letter: u8) -> Option<&str> {
        meta_flag_tokens(self.flags.as_bytes())
            .find(|t| t.first() == Some(&letter))
            .and_then(|t| std::str::from_utf8(&t[1..]).ok())
    }

    /// `true` for `HD` and `VA`, the success codes.
    pub fn is_success(&self) -> bool {
        matches!(self.code, MetaCode::Hd | MetaCode::Va)
    }
}
