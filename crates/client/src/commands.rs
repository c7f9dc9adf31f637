//! The typed classic text commands: retrieval, storage, delete, arithmetic,
//! touch and the admin commands.
//!
//! Each method validates its key, encodes with `memshard-proto`, sends one
//! request and maps the reply. Error lines become [`ClientError::Server`],
//! replies that do not fit the command become [`ClientError::Unexpected`];
//! neither breaks the connection.

use crate::connection::Client;
use crate::error::{ClientError, Result};
use crate::reply::{Item, OwnedReply, StoreStatus};
use bytes::{Bytes, BytesMut};
use memshard_proto::{Arith, Delete, FlushAll, Get, GetCmd, Keys, MAX_KEY_LEN, Request, Stats, Store, StoreCmd, Touch};

/// Checks a text-protocol key: 1 to 250 bytes, no spaces or control bytes.
/// Anything else would be split or cut by the server and misalign replies.
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ClientError::InvalidArgument(format!("key length {} not in 1..={MAX_KEY_LEN}", key.len())));
    }
    if key.iter().any(|&b| b <= b' ' || b == 0x7f) {
        let shown = String::from_utf8_lossy(key);
        return Err(ClientError::InvalidArgument(format!("key {shown:?} contains a space or control byte")));
    }
    Ok(())
}

pub(crate) fn encode(req: &Request<'_>) -> Bytes {
    let mut buf = BytesMut::new();
    req.encode(&mut buf);
    buf.freeze()
}

/// The single reply unit of a one-unit answer, or the error it carries.
pub(crate) fn single(command: &'static str, mut replies: Vec<OwnedReply>) -> Result<OwnedReply> {
    match replies.pop() {
        Some(r) if replies.is_empty() => server_error(r),
        Some(r) => Err(unexpected(command, &r)),
        None => Err(ClientError::Unexpected { command, reply: "nothing".to_owned() }),
    }
}

/// Turns error lines into [`ClientError::Server`], passes anything else.
pub(crate) fn server_error(r: OwnedReply) -> Result<OwnedReply> {
    match r.error_line() {
        Some(line) => Err(ClientError::Server(line)),
        None => Ok(r),
    }
}

pub(crate) fn unexpected(command: &'static str, r: &OwnedReply) -> ClientError {
    ClientError::Unexpected { command, reply: format!("{:?}", r.as_reply()) }
}

impl Client {
    /// `get <key>`: the item, or `None` on a miss.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        self.retrieve_one(GetCmd::Get, key.as_ref()).await
    }

    /// `gets <key>`: the item with its CAS unique, or `None` on a miss.
    pub async fn gets(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        self.retrieve_one(GetCmd::Gets, key.as_ref()).await
    }

    /// `get <key>*` in one request: the hits as `(key, item)` in reply order
    /// (memcached's order is request order; misses are simply absent). An
    /// empty key list returns at once without a request.
    pub async fn get_multi<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<(Bytes, Item)>> {
        self.retrieve_multi(GetCmd::Get, keys).await
    }

    /// `gets <key>*`: like [`Client::get_multi`] with CAS uniques.
    pub async fn gets_multi<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<(Bytes, Item)>> {
        self.retrieve_multi(GetCmd::Gets, keys).await
    }

    async fn retrieve_one(&self, cmd: GetCmd, key: &[u8]) -> Result<Option<Item>> {
        Ok(self.retrieve_multi(cmd, &[key]).await?.pop().map(|(_, item)| item))
    }

    async fn retrieve_multi<K: AsRef<[u8]>>(&self, cmd: GetCmd, keys: &[K]) -> Result<Vec<(Bytes, Item)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut raw = Vec::with_capacity(keys.iter().map(|k| k.as_ref().len() + 1).sum());
        for k in keys {
            check_key(k.as_ref())?;
            if !raw.is_empty() {
                raw.push(b' ');
            }
            raw.extend_from_slice(k.as_ref());
        }
        let req = Request::Get(Get { cmd, exptime: 0, keys: Keys::from_raw(&raw) });
        let replies = self.call(encode(&req), 1).await?;
        let mut items = Vec::with_capacity(replies.len().saturating_sub(1));
        for r in replies {
            match server_error(r)? {
                OwnedReply::Value { key, flags, cas, data } => items.push((key, Item { value: data, flags, cas })),
                OwnedReply::End => {}
                other => return Err(unexpected(cmd.as_str(), &other)),
            }
        }
        Ok(items)
    }

    /// `set`: store unconditionally.
    pub async fn set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: i64,
    ) -> Result<StoreStatus> {
        self.store(StoreCmd::Set, key.as_ref(), value.as_ref(), flags, exptime, 0).await
    }

    /// `add`: store only if the key is absent.
    pub async fn add(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: i64,
    ) -> Result<StoreStatus> {
        self.store(StoreCmd::Add, key.as_ref(), value.as_ref(), flags, exptime, 0).await
    }

    /// `replace`: store only if the key is present.
    pub async fn replace(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: i64,
    ) -> Result<StoreStatus> {
        self.store(StoreCmd::Replace, key.as_ref(), value.as_ref(), flags, exptime, 0).await
    }

    /// `append`: add bytes after an existing value (flags and exptime are
    /// ignored by memcached but part of the command line).
    pub async fn append(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: i64,
    ) -> Result<StoreStatus> {
        self.store(StoreCmd::Append, key.as_ref(), value.as_ref(), flags, exptime, 0).await
    }

    /// `prepend`: add bytes before an existing value.
    pub async fn prepend(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: i64,
    ) -> Result<StoreStatus> {
        self.store(StoreCmd::Prepend, key.as_ref(), value.as_ref(), flags, exptime, 0).await
    }

    /// `cas`: store only if the item's CAS unique is still `cas_unique`
    /// (`Exists` if it changed, `NotFound` if the key is gone).
    pub async fn cas(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: i64,
        cas_unique: u64,
    ) -> Result<StoreStatus> {
        self.store(StoreCmd::Cas, key.as_ref(), value.as_ref(), flags, exptime, cas_unique).await
    }

    /// Any storage command; `cas_unique` is only sent for [`StoreCmd::Cas`].
    pub async fn store(
        &self,
        cmd: StoreCmd,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: i64,
        cas_unique: u64,
    ) -> Result<StoreStatus> {
        check_key(key)?;
        let req = Request::Store(Store { cmd, key, flags, exptime, cas: cas_unique, noreply: false, value });
        match single(cmd.as_str(), self.call(encode(&req), 1).await?)? {
            OwnedReply::Stored => Ok(StoreStatus::Stored),
            OwnedReply::NotStored => Ok(StoreStatus::NotStored),
            OwnedReply::Exists => Ok(StoreStatus::Exists),
            OwnedReply::NotFound => Ok(StoreStatus::NotFound),
            other => Err(unexpected(cmd.as_str(), &other)),
        }
    }

    /// A storage command with `noreply`: returns once queued, without waiting
    /// for (or learning) the outcome.
    pub async fn store_noreply(&self, cmd: StoreCmd, key: &[u8], value: &[u8], flags: u32, exptime: i64) -> Result<()> {
        check_key(key)?;
        if cmd == StoreCmd::Cas {
            // Without the unique there is no meaningful cas; refuse rather than guess.
            return Err(ClientError::InvalidArgument("cas needs a unique; use Client::cas".to_owned()));
        }
        let req = Request::Store(Store { cmd, key, flags, exptime, cas: 0, noreply: true, value });
        self.send_noreply(encode(&req)).await
    }

    /// `delete <key>`: `true` if the item existed.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        check_key(key)?;
        let req = Request::Delete(Delete { key, noreply: false });
        match single("delete", self.call(encode(&req), 1).await?)? {
            OwnedReply::Deleted => Ok(true),
            OwnedReply::NotFound => Ok(false),
            other => Err(unexpected("delete", &other)),
        }
    }

    /// `delete <key> noreply`: returns once queued.
    pub async fn delete_noreply(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        check_key(key)?;
        self.send_noreply(encode(&Request::Delete(Delete { key, noreply: true }))).await
    }

    /// `incr <key> <delta>`: the new value, or `None` if the key is missing.
    pub async fn incr(&self, key: impl AsRef<[u8]>, delta: u64) -> Result<Option<u64>> {
        self.arith(true, key.as_ref(), delta).await
    }

    /// `decr <key> <delta>` (memcached stops at 0): the new value, or `None`.
    pub async fn decr(&self, key: impl AsRef<[u8]>, delta: u64) -> Result<Option<u64>> {
        self.arith(false, key.as_ref(), delta).await
    }

    async fn arith(&self, incr: bool, key: &[u8], delta: u64) -> Result<Option<u64>> {
        check_key(key)?;
        let command = if incr { "incr" } else { "decr" };
        let req = Request::Arith(Arith { incr, key, delta, noreply: false });
        match single(command, self.call(encode(&req), 1).await?)? {
            OwnedReply::Number(n) => Ok(Some(n)),
            OwnedReply::NotFound => Ok(None),
            other => Err(unexpected(command, &other)),
        }
    }

    /// `touch <key> <exptime>`: `true` if the item existed.
    pub async fn touch(&self, key: impl AsRef<[u8]>, exptime: i64) -> Result<bool> {
        let key = key.as_ref();
        check_key(key)?;
        let req = Request::Touch(Touch { key, exptime, noreply: false });
        match single("touch", self.call(encode(&req), 1).await?)? {
            OwnedReply::Touched => Ok(true),
            OwnedReply::NotFound => Ok(false),
            other => Err(unexpected("touch", &other)),
        }
    }

    /// `flush_all`: invalidate every item now.
    pub async fn flush_all(&self) -> Result<()> {
        self.flush_all_delay(0).await
    }

    /// `flush_all <delay>`: invalidate every item in `delay` seconds.
    pub async fn flush_all_delay(&self, delay: i64) -> Result<()> {
        let req = Request::FlushAll(FlushAll { delay, noreply: false });
        match single("flush_all", self.call(encode(&req), 1).await?)? {
            OwnedReply::Ok => Ok(()),
            other => Err(unexpected("flush_all", &other)),
        }
    }

    /// `version`: the server's version text (`1.6.18`).
    pub async fn version(&self) -> Result<String> {
        match single("version", self.call(encode(&Request::Version), 1).await?)? {
            OwnedReply::Version(v) => Ok(v),
            other => Err(unexpected("version", &other)),
        }
    }

    /// `stats`: the general statistics as `(name, value)` pairs in reply order.
    pub async fn stats(&self) -> Result<Vec<(String, String)>> {
        self.stats_group("").await
    }

    /// `stats <group>` (`settings`, `items`, `slabs`, …; empty for general).
    /// Groups answered with something other than `STAT` lines and `END`
    /// (`reset`, `detail dump`) are better sent with [`Client::request`].
    pub async fn stats_group(&self, group: &str) -> Result<Vec<(String, String)>> {
        let mut parts = group.split(' ').filter(|p| !p.is_empty());
        let (g, arg) = (parts.next(), parts.next());
        if parts.next().is_some() || group.bytes().any(|b| b < b' ' || b == 0x7f) {
            return Err(ClientError::InvalidArgument(format!("bad stats group {group:?}")));
        }
        let req = Request::Stats(Stats { group: g.map(str::as_bytes), arg: arg.map(str::as_bytes), arg2: None });
        let replies = self.call(encode(&req), 1).await?;
        let mut stats = Vec::with_capacity(replies.len());
        for r in replies {
            match server_error(r)? {
                OwnedReply::Stat { name, value } => stats.push((name, value)),
                OwnedReply::End => {}
                other => return Err(unexpected("stats", &other)),
            }
        }
        Ok(stats)
    }
}
