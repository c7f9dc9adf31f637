//! The typed meta commands: `mg`, `ms`, `md`, `ma`, `mn`.
//!
//! Flags are given as memcached writes them (`"v t c"`, `"T30 F5"`, `"MD D3"`)
//! and validated with the server's own parser ([`MetaFlags::parse`]) before
//! sending, so a typo fails locally instead of costing a round trip.
//!
//! The quiet flag `q` is refused: a quiet command answers nothing on success,
//! so the reply FIFO (one answer per request) would hand the *next* request's
//! reply to it. Pipeline quiet commands with [`Client::quiet_batch`], which
//! closes the batch with `mn` and collects everything up to the `MN` marker.

use crate::commands::{check_key, encode, single, unexpected};
use crate::connection::Client;
use crate::error::{ClientError, Result};
use crate::reply::{MetaReply, OwnedReply};
use memshard_proto::{MetaArith, MetaArithMode, MetaDelete, MetaFlags, MetaGet, MetaSet, MetaSetMode, Request};

/// Splits and checks a flag string; returns the tokens.
fn tokens(flags: &str) -> Result<Vec<&[u8]>> {
    let toks: Vec<&[u8]> = flags.split(' ').filter(|t| !t.is_empty()).map(str::as_bytes).collect();
    for t in &toks {
        // Only printable, non-space ASCII: a CR or LF would end the line early
        // and smuggle in a second request.
        if !t.iter().all(|b| b.is_ascii_graphic()) {
            return Err(ClientError::InvalidArgument(format!("meta flags {flags:?} contain a control byte")));
        }
        if t.first() == Some(&b'q') {
            return Err(ClientError::InvalidArgument(
                "quiet meta flag q is not supported by the typed methods; use Client::quiet_batch".to_owned(),
            ));
        }
    }
    Ok(toks)
}

/// Parses flags like the server would, mapping its error text.
fn parse<'a>(toks: &[&'a [u8]], key: &'a [u8]) -> Result<(MetaFlags<'a>, std::borrow::Cow<'a, [u8]>)> {
    // The wire key (base64 text with `b`) must be a valid text key either way.
    check_key(key)?;
    MetaFlags::parse(toks, key).map_err(|e| ClientError::InvalidArgument(e.to_owned()))
}

fn meta_reply(command: &'static str, replies: Vec<OwnedReply>) -> Result<MetaReply> {
    match single(command, replies)? {
        OwnedReply::Meta { code, flags, data } => Ok(MetaReply { code, flags, value: data }),
        other => Err(unexpected(command, &other)),
    }
}

impl Client {
    /// `mg <key> <flags>`: e.g. `mg(key, "v f c t")` returns `VA` with the value
    /// and the requested flags, `EN` on a miss (`HD` without `v`).
    pub async fn mg(&self, key: impl AsRef<[u8]>, flags: &str) -> Result<MetaReply> {
        let toks = tokens(flags)?;
        let (flags, key) = parse(&toks, key.as_ref())?;
        let req = Request::MetaGet(MetaGet { key, flags });
        meta_reply("mg", self.call(encode(&req), 1).await?)
    }

    /// `ms <key> <len> <flags>` and the value: `HD` when stored, `NS`/`EX`/`NF`
    /// otherwise (mode `M`, compare `C`, TTL `T`, client flags `F`, …).
    pub async fn ms(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, flags: &str) -> Result<MetaReply> {
        let toks = tokens(flags)?;
        let (flags, key) = parse(&toks, key.as_ref())?;
        // The encoder writes the flag tokens verbatim; the mode field only
        // matters to servers, so the default is fine here.
        let req = Request::MetaSet(MetaSet { key, flags, mode: MetaSetMode::Set, value: value.as_ref() });
        meta_reply("ms", self.call(encode(&req), 1).await?)
    }

    /// `md <key> <flags>`: `HD` when deleted, `NF` when missing.
    pub async fn md(&self, key: impl AsRef<[u8]>, flags: &str) -> Result<MetaReply> {
        let toks = tokens(flags)?;
        let (flags, key) = parse(&toks, key.as_ref())?;
        let req = Request::MetaDelete(MetaDelete { key, flags });
        meta_reply("md", self.call(encode(&req), 1).await?)
    }

    /// `ma <key> <flags>`: `HD` (or `VA` with the number when `v` is given),
    /// `NF` when missing (unless `N` auto-vivifies).
    pub async fn ma(&self, key: impl AsRef<[u8]>, flags: &str) -> Result<MetaReply> {
        let toks = tokens(flags)?;
        let (flags, key) = parse(&toks, key.as_ref())?;
        let req = Request::MetaArith(MetaArith { key, flags, mode: MetaArithMode::Incr });
        meta_reply("ma", self.call(encode(&req), 1).await?)
    }

    /// `mn`: answers `MN`; a cheap round trip (e.g. a health check).
    pub async fn mn(&self) -> Result<MetaReply> {
        meta_reply("mn", self.call(encode(&Request::MetaNoop), 1).await?)
    }
}
