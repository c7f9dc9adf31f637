//! memcached's binary protocol, as memcached 1.6.18 speaks it
//! (`proto_bin.c`): 24-byte headers, the opcodes of `protocol_binary.h`, and
//! the same checks, statuses and error texts. Deprecated upstream, but
//! clients still use it (pylibmc with `binary=True`, SASL-era Java clients).
//!
//! [`decode`] reads one request: `Ok(None)` until the request is buffered,
//! or a [`BinError`] that says which status to answer, how many bytes the
//! request used, what to discard after it and whether to close — the same
//! shape as the text decoder's. [`Response`] writes an answer. A connection
//! is binary when its first byte is [`REQUEST_MAGIC`]; from then on every
//! request must be.

use crate::request::{MAX_KEY_LEN, item_size_ok};
use bytes::BufMut;

/// The first byte of every request.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The first byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Header length.
pub const HEADER_LEN: usize = 24;

/// Opcodes (`protocol_binary_command`).
#[allow(missing_docs)]
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response statuses, with memcached's texts for the error ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0x00.
    Success,
    /// 0x01 "Not found".
    KeyNotFound,
    /// 0x02 "Data exists for key.".
    KeyExists,
    /// 0x03 "Too large.".
    TooLarge,
    /// 0x04 "Invalid arguments".
    InvalidArguments,
    /// 0x05 "Not stored.".
    NotStored,
    /// 0x06 "Non-numeric server-side value for incr or decr".
    NonNumeric,
    /// 0x81 "Unknown command".
    UnknownCommand,
    /// 0x82 "Out of memory".
    OutOfMemory,
}

impl Status {
    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            Status::Success => 0x00,
            Status::KeyNotFound => 0x01,
            Status::KeyExists => 0x02,
            Status::TooLarge => 0x03,
            Status::InvalidArguments => 0x04,
            Status::NotStored => 0x05,
            Status::NonNumeric => 0x06,
            Status::UnknownCommand => 0x81,
            Status::OutOfMemory => 0x82,
        }
    }

    /// memcached's body for an error with this status (`write_bin_error`).
    pub fn message(self) -> &'static str {
        match self {
            Status::Success => "",
            Status::KeyNotFound => "Not found",
            Status::KeyExists => "Data exists for key.",
            Status::TooLarge => "Too large.",
            Status::InvalidArguments => "Invalid arguments",
            Status::NotStored => "Not stored.",
            Status::NonNumeric => "Non-numeric server-side value for incr or decr",
            Status::UnknownCommand => "Unknown command",
            Status::OutOfMemory => "Out of memory",
        }
    }
}

/// A request header, in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The opcode as sent (quiet variants included).
    pub opcode: u8,
    /// Key length.
    pub key_len: u16,
    /// Extras length.
    pub extras_len: u8,
    /// Total body length (extras + key + value).
    pub body_len: u32,
    /// Echoed in the response.
    pub opaque: u32,
    /// Compare-and-swap value (0: none).
    pub cas: u64,
}

/// What a storage command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// SET.
    Set,
    /// ADD.
    Add,
    /// REPLACE.
    Replace,
    /// APPEND.
    Append,
    /// PREPEND.
    Prepend,
}

/// One decoded binary request. Quiet variants set `quiet`; the header's CAS
/// and opaque are in [`Request::header`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// GET, GETQ, GETK, GETKQ.
    Get {
        /// Key.
        key: &'a [u8],
        /// Echo the key (GETK).
        with_key: bool,
    },
    /// TOUCH.
    Touch {
        /// Key.
        key: &'a [u8],
        /// New expiry (memcached's exptime rules).
        exptime: u32,
    },
    /// GAT, GATQ, GATK, GATKQ.
    GetAndTouch {
        /// Key.
        key: &'a [u8],
        /// New expiry.
        exptime: u32,
        /// Echo the key.
        with_key: bool,
    },
    /// SET, ADD, REPLACE (with extras) and APPEND, PREPEND (without).
    Store {
        /// What to do.
        op: StoreOp,
        /// Key.
        key: &'a [u8],
        /// Client flags (0 for APPEND/PREPEND).
        flags: u32,
        /// Expiry (0 for APPEND/PREPEND).
        exptime: u32,
        /// The value.
        value: &'a [u8],
    },
    /// DELETE.
    Delete {
        /// Key.
        key: &'a [u8],
    },
    /// INCREMENT, DECREMENT.
    Arith {
        /// INCREMENT (else DECREMENT).
        incr: bool,
        /// Key.
        key: &'a [u8],
        /// Amount.
        delta: u64,
        /// Value to create a missing item with.
        initial: u64,
        /// Expiry of a created item; 0xffffffff: do not create.
        exptime: u32,
    },
    /// QUIT.
    Quit,
    /// FLUSH, with an optional delay.
    Flush {
        /// Delay in seconds (memcached's exptime rules), 0 for now.
        delay: u32,
    },
    /// NOOP.
    Noop,
    /// VERSION.
    Version,
    /// STAT with an optional group in the key.
    Stat {
        /// The group (`""`, `settings`, `items`, `detail dump`, …).
        group: &'a [u8],
    },
}

/// A request: the header, whether it is quiet, and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header (opcode as sent).
    pub header: Header,
    /// A quiet variant: success is not answered (but GETQ/GETKQ hits are).
    pub quiet: bool,
    /// The command.
    pub command: Command<'a>,
}

/// A request that gets an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinError {
    /// The request's header, for the answer's opcode and opaque.
    pub header: Header,
    /// The status to answer; `None`: close without a word (a bad magic).
    pub status: Option<Status>,
    /// Bytes of the buffer this request used.
    pub consumed: usize,
    /// Bytes of its body still to discard as they arrive.
    pub swallow: u64,
    /// Close after answering.
    pub close: bool,
    /// A SET refused as too large: the old item under this key must go, so
    /// it is never read in place of the value the client meant to write.
    pub unlink: Option<Vec<u8>>,
}

/// What [`decode`] returns.
pub type DecodeResult<'a> = Result<Option<(Request<'a>, usize)>, BinError>;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads the header of `buf`, which holds at least [`HEADER_LEN`] bytes.
pub fn header(buf: &[u8]) -> Header {
    Header {
        opcode: buf[1],
        key_len: be16(&buf[2..4]),
        extras_len: buf[4],
        body_len: be32(&buf[8..12]),
        opaque: be32(&buf[12..16]),
        cas: be64(&buf[16..24]),
    }
}

/// The opcode a quiet one stands for, and whether it was quiet.
fn unquiet(op: u8) -> (u8, bool) {
    use opcode::*;
    match op {
        SETQ => (SET, true),
        ADDQ => (ADD, true),
        REPLACEQ => (REPLACE, true),
        DELETEQ => (DELETE, true),
        INCREMENTQ => (INCREMENT, true),
        DECREMENTQ => (DECREMENT, true),
        QUITQ => (QUIT, true),
        FLUSHQ => (FLUSH, true),
        APPENDQ => (APPEND, true),
        PREPENDQ => (PREPEND, true),
        GETQ => (GET, true),
        GETKQ => (GETK, true),
        GATQ => (GAT, true),
        GATKQ => (GATK, true),
        other => (other, false),
    }
}

/// Decodes the first binary request in `buf` with memcached's checks.
/// `max_item_size` is `-I`.
pub fn decode(buf: &[u8], max_item_size: usize) -> DecodeResult<'_> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = header(buf);
    let err = |status, consumed, swallow: u64, close| BinError {
        header: h,
        status: Some(status),
        consumed,
        swallow,
        close,
        unlink: None,
    };
    if buf[0] != REQUEST_MAGIC {
        return Err(BinError { status: None, consumed: buf.len(), close: true, ..err(Status::Success, 0, 0, true) });
    }
    let (ext, klen, body) = (usize::from(h.extras_len), usize::from(h.key_len), h.body_len as usize);
    let head = HEADER_LEN + ext + klen;
    if buf.len() < head {
        return Ok(None);
    }
    if klen > body || klen + ext > body {
        return Err(err(Status::UnknownCommand, head, 0, true));
    }
    // binprot allows 16-bit keys; memcached stores 250 bytes at most.
    if klen > MAX_KEY_LEN {
        return Err(err(Status::InvalidArguments, head, 0, true));
    }
    let extras = &buf[HEADER_LEN..HEADER_LEN + ext];
    let key = &buf[HEADER_LEN + ext..head];
    let (op, quiet) = unquiet(h.opcode);
    let value_len = body - klen - ext;
    let invalid = || err(Status::InvalidArguments, head, 0, true);
    use opcode::*;
    let command = match op {
        VERSION if ext == 0 && klen == 0 && body == 0 => Command::Version,
        FLUSH if klen == 0 && body == ext && (ext == 0 || ext == 4) => {
            Command::Flush { delay: if ext == 4 { be32(extras) } else { 0 } }
        }
        NOOP if ext == 0 && klen == 0 && body == 0 => Command::Noop,
        QUIT if ext == 0 && klen == 0 && body == 0 => Command::Quit,
        GET | GETK if ext == 0 && body == klen && klen > 0 => Command::Get { key, with_key: op == GETK },
        DELETE if klen > 0 && ext == 0 && body == klen => Command::Delete { key },
        INCREMENT | DECREMENT if klen > 0 && ext == 20 && body == klen + ext => Command::Arith {
            incr: op == INCREMENT,
            key,
            delta: be64(&extras[0..8]),
            initial: be64(&extras[8..16]),
            exptime: be32(&extras[16..20]),
        },
        STAT if ext == 0 => Command::Stat { group: key },
        TOUCH if ext == 4 && klen != 0 => Command::Touch { key, exptime: be32(extras) },
        GAT | GATK if ext == 4 && klen != 0 => {
            Command::GetAndTouch { key, exptime: be32(extras), with_key: op == GATK }
        }
        SET | ADD | REPLACE | APPEND | PREPEND => {
            let with_extras = matches!(op, SET | ADD | REPLACE);
            let shape_ok = if with_extras { ext == 8 && klen != 0 } else { klen > 0 && ext == 0 };
            if !shape_ok {
                return Err(invalid());
            }
            let (flags, exptime) = if with_extras { (be32(&extras[0..4]), be32(&extras[4..8])) } else { (0, 0) };
            // Refused before the value arrives, which is then discarded.
            if !item_size_ok(max_item_size, klen, flags, value_len) {
                let mut e = err(Status::TooLarge, head, value_len as u64, false);
                if op == SET {
                    e.unlink = Some(key.to_vec());
                }
                return Err(e);
            }
            if buf.len() < head + value_len {
                return Ok(None);
            }
            let op = match op {
                SET => StoreOp::Set,
                ADD => StoreOp::Add,
                REPLACE => StoreOp::Replace,
                APPEND => StoreOp::Append,
                _ => StoreOp::Prepend,
            };
            let value = &buf[head..head + value_len];
            let cmd = Command::Store { op, key, flags, exptime, value };
            return Ok(Some((Request { header: h, quiet, command: cmd }, head + value_len)));
        }
        VERSION | FLUSH | NOOP | QUIT | GET | GETK | DELETE | INCREMENT | DECREMENT | STAT | TOUCH | GAT | GATK => {
            return Err(invalid());
        }
        // SASL is not enabled; memcached then answers these as unknown.
        SASL_LIST_MECHS | SASL_AUTH | SASL_STEP => {
            return Err(err(Status::UnknownCommand, head, (body - klen - ext) as u64, false));
        }
        _ => return Err(err(Status::UnknownCommand, head, (body - klen - ext) as u64, false)),
    };
    Ok(Some((Request { header: h, quiet, command }, head)))
}

/// One response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's opcode, as sent.
    pub opcode: u8,
    /// The status.
    pub status: Status,
    /// The request's opaque.
    pub opaque: u32,
    /// A CAS value (0: none).
    pub cas: u64,
    /// Extras (flags of a GET: 4 bytes).
    pub extras: &'a [u8],
    /// Key (GETK, STAT).
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
}

impl<'a> Response<'a> {
    /// A bodiless answer to `h`.
    pub fn ok(h: &Header) -> Response<'a> {
        Response {
            opcode: h.opcode,
            status: Status::Success,
            opaque: h.opaque,
            cas: 0,
            extras: &[],
            key: &[],
            value: &[],
        }
    }

    /// An error answer to `h` with memcached's text for `status`.
    pub fn error(h: &Header, status: Status) -> Response<'static> {
        Response {
            opcode: h.opcode,
            status,
            opaque: h.opaque,
            cas: 0,
            extras: &[],
            key: &[],
            value: status.message().as_bytes(),
        }
    }

    /// Writes header and body.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_u8(RESPONSE_MAGIC);
        out.put_u8(self.opcode);
        out.put_u16(u16::try_from(self.key.len()).unwrap_or(u16::MAX));
        out.put_u8(u8::try_from(self.extras.len()).unwrap_or(u8::MAX));
        out.put_u8(0);
        out.put_u16(self.status.code());
        let body = self.extras.len() + self.key.len() + self.value.len();
        out.put_u32(u32::try_from(body).unwrap_or(u32::MAX));
        out.put_u32(self.opaque);
        out.put_u64(self.cas);
        out.put_slice(self.extras);
        out.put_slice(self.key);
        out.put_slice(self.value);
    }
}

/// Writes a request (for tests and clients): header, extras, key, value.
pub fn encode_request<B: BufMut>(out: &mut B, h: &Header, extras: &[u8], key: &[u8], value: &[u8]) {
    out.put_u8(REQUEST_MAGIC);
    out.put_u8(h.opcode);
    out.put_u16(u16::try_from(key.len()).unwrap_or(u16::MAX));
    out.put_u8(u8::try_from(extras.len()).unwrap_or(u8::MAX));
    out.put_u8(0);
    out.put_u16(0);
    out.put_u32(u32::try_from(extras.len() + key.len() + value.len()).unwrap_or(u32::MAX));
    out.put_u32(h.opaque);
    out.put_u64(h.cas);
    out.put_slice(extras);
    out.put_slice(key);
    out.put_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::DEFAULT_MAX_ITEM_SIZE as MAX;

    fn req(op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(&mut out, &Header { opcode: op, opaque: 7, cas, ..Header::default() }, extras, key, value);
        out
    }

    #[test]
    fn decodes_each_shape_and_waits_for_the_whole_request() {
        let mut extras = 5u32.to_be_bytes().to_vec();
        extras.extend_from_slice(&100u32.to_be_bytes());
        let set = req(opcode::SETQ, &extras, b"k", b"value", 9);
        for cut in 0..set.len() {
            assert_eq!(decode(&set[..cut], MAX), Ok(None), "{cut} bytes");
        }
        let (r, used) = decode(&set, MAX).expect("ok").expect("complete");
        assert_eq!(used, set.len());
        assert!(r.quiet);
        assert_eq!((r.header.cas, r.header.opaque), (9, 7));
        assert_eq!(r.command, Command::Store { op: StoreOp::Set, key: b"k", flags: 5, exptime: 100, value: b"value" });
        let get = req(opcode::GETK, &[], b"abc", &[], 0);
        assert_eq!(
            decode(&get, MAX).expect("ok").expect("req").0.command,
            Command::Get { key: b"abc", with_key: true }
        );
        let mut incr = 3u64.to_be_bytes().to_vec();
        incr.extend_from_slice(&10u64.to_be_bytes());
        incr.extend_from_slice(&u32::MAX.to_be_bytes());
        let decr = req(opcode::DECREMENT, &incr, b"n", &[], 0);
        let r = decode(&decr, MAX).expect("ok").expect("req");
        assert_eq!(r.0.command, Command::Arith { incr: false, key: b"n", delta: 3, initial: 10, exptime: u32::MAX });
    }

    #[test]
    fn refuses_as_memcached_does() {
        let e = |b: &[u8]| decode(b, MAX).expect_err("refused");
        // A GET with extras: invalid arguments, then close.
        let bad = e(&req(opcode::GET, &[0; 4], b"k", &[], 0));
        assert_eq!((bad.status, bad.close), (Some(Status::InvalidArguments), true));
        // A key over 250 bytes.
        assert_eq!(e(&req(opcode::GET, &[], &[b'k'; 251], &[], 0)).status, Some(Status::InvalidArguments));
        // An unknown opcode: answered, the body discarded, the connection kept.
        let u = e(&req(0x55, &[], b"", b"xyz", 0));
        assert_eq!((u.status, u.swallow, u.close), (Some(Status::UnknownCommand), 3, false));
        // SASL is off.
        assert_eq!(e(&req(opcode::SASL_LIST_MECHS, &[], b"", &[], 0)).status, Some(Status::UnknownCommand));
        // A value too large: refused at the header, the value swallowed, a SET unlinks.
        let mut big = req(opcode::SET, &[0; 8], b"k", &[], 0);
        big[8..12].copy_from_slice(&(9 + 2_000_000u32).to_be_bytes());
        let t = e(&big);
        assert_eq!((t.status, t.swallow, t.close), (Some(Status::TooLarge), 2_000_000, false));
        assert_eq!(t.unlink.as_deref(), Some(&b"k"[..]));
        // A text command after binary ones: the magic is wrong, close silently.
        let m = e(b"get k\r\n0123456789012345678901234");
        assert_eq!((m.status, m.close), (None, true));
    }

    #[test]
    fn responses_carry_memcacheds_error_texts() {
        let h = Header { opcode: opcode::GET, opaque: 0xdead_beef, ..Header::default() };
        let mut out = Vec::new();
        Response::error(&h, Status::KeyNotFound).encode(&mut out);
        assert_eq!(out.len(), HEADER_LEN + 9);
        assert_eq!(&out[..2], &[RESPONSE_MAGIC, opcode::GET]);
        assert_eq!(&out[6..8], &[0, 1]);
        assert_eq!(&out[8..12], &9u32.to_be_bytes());
        assert_eq!(&out[12..16], &0xdead_beefu32.to_be_bytes());
        assert_eq!(&out[24..], b"Not found");
    }
}
