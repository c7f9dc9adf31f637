//! Storage commands (`set`/`add`/`replace`/`append`/`prepend`/`cas`, meta
//! `ms`) and deletion (`delete`, meta `md`), following memcached 1.6.18's
//! `do_store_item` and `process_mdelete_command`.

use crate::compat::memcached_item_size;
use crate::exptime::absolute_exptime;
use crate::item::{encode, layout};
use crate::shard::{Env, Shard};
use crate::slab::Bit;
use crate::store::Store;

/// Which storage command is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent (an existing item is bumped in the LRU).
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the data after the existing value, keeping its flags and exptime.
    Append,
    /// Add the data before the existing value, keeping its flags and exptime.
    Prepend,
    /// Store only if the supplied CAS unique matches the item's.
    Cas,
}

/// Protocol outcome of a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// `STORED` / `HD`.
    Stored,
    /// `NOT_STORED` / `NS`: the mode's precondition failed.
    NotStored,
    /// `EXISTS` / `EX`: CAS mismatch.
    Exists,
    /// `NOT_FOUND` / `NF`: `cas` on a missing key.
    NotFound,
    /// `SERVER_ERROR object too large for cache`: larger than
    /// `max_item_size` by memcached's formula, or a key over 250 bytes.
    TooLarge,
    /// `SERVER_ERROR out of memory storing object`: nothing could be freed
    /// (evictions disabled, or the item exceeds a shard's memory share).
    NoMemory,
}

/// Outcome plus the CAS unique of the stored item (0 when not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreResult {
    /// What happened.
    pub outcome: StoreOutcome,
    /// CAS of the newly stored item, for `ms ... c`; 0 unless `Stored`.
    pub cas: u64,
}

impl StoreResult {
    fn not(outcome: StoreOutcome) -> Self {
        Self { outcome, cas: 0 }
    }
}

/// Full form of a storage command, covering the meta `ms` options.
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    /// The command.
    pub mode: StoreMode,
    /// Key, at most 250 bytes.
    pub key: &'a [u8],
    /// Data block.
    pub value: &'a [u8],
    /// Client flags (ignored by append/prepend, which keep the old ones).
    pub flags: u32,
    /// Client exptime (see the crate docs; ignored by append/prepend).
    pub exptime: i64,
    /// CAS to compare, 0 for none. Only `Cas`, `Append` and `Prepend` look
    /// at it, as in memcached; `ms` with `C` on set/replace must use `Cas`.
    pub cas: u64,
    /// `ms ... I`: with mode `Cas`, a CAS *older* than the item's still
    /// stores, but the new value keeps the old exptime and is marked stale
    /// (and keeps "win token sent").
    pub invalidate: bool,
    /// `ms ... E<cas>`: give the stored item this CAS instead of a new one.
    pub new_cas: Option<u64>,
    /// `ms ... b`: the key was base64-decoded; remembered for echoing `k`.
    pub key_binary: bool,
    /// On `TooLarge`/`NoMemory`, delete any existing item under the key so
    /// stale data cannot outlive a failed update. memcached does this for
    /// text `set` and for every `ms` mode; [`StoreRequest::new`] enables it
    /// for `Set` only.
    pub purge_on_failure: bool,
}

impl<'a> StoreRequest<'a> {
    /// A request with text-protocol defaults: no flags, no expiry, no CAS.
    pub fn new(mode: StoreMode, key: &'a [u8], value: &'a [u8]) -> Self {
        Self {
            mode,
            key,
            value,
            flags: 0,
            exptime: 0,
            cas: 0,
            invalidate: false,
            new_cas: None,
            key_binary: false,
            purge_on_failure: mode == StoreMode::Set,
        }
    }
}

/// How memcached classifies the supplied CAS against the item's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CasCheck {
    None,
    Match,
    Stale,
    BadVal,
}

/// Protocol outcome of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// `DELETED` / `HD` (also for meta invalidate and clear-value).
    Deleted,
    /// `NOT_FOUND` / `NF`.
    NotFound,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NS`: a clear-value (`md x`) tombstone could not be stored.
    NoMemory,
}

/// Full form of a delete, covering the meta `md` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// `C<cas>`: only act if the item's CAS equals this (0 included).
    pub cas: Option<u64>,
    /// `I`: instead of removing, mark stale, clear "win token sent" and give
    /// the item a new CAS, so the next `mg` wins the right to recache.
    pub invalidate: bool,
    /// `T<ttl>`: with `invalidate` (or `clear_value`), the new exptime.
    pub exptime: Option<i64>,
    /// `x`: replace the value with an empty one (flags from `flags`,
    /// exptime from `exptime` or never, CAS kept) instead of removing it.
    /// Not in 1.6.18 (it answers `CLIENT_ERROR invalid flag`); semantics
    /// follow later memcached releases.
    pub clear_value: bool,
    /// `F<flags>` for the `clear_value` tombstone.
    pub flags: u32,
    /// `E<cas>`: the CAS to give an invalidated or cleared item. Not in
    /// 1.6.18; semantics follow later releases.
    pub new_cas: Option<u64>,
}

impl Store {
    /// A text-protocol storage command: `set`, `add`, `replace`, `append`,
    /// `prepend` or `cas` (with `cas` the unique to compare, 0 otherwise).
    pub fn store(&self, mode: StoreMode, key: &[u8], flags: u32, exptime: i64, value: &[u8], cas: u64) -> StoreResult {
        self.store_with(&StoreRequest { flags, exptime, cas, ..StoreRequest::new(mode, key, value) })
    }

    /// A storage command with all meta (`ms`) options; see [`StoreRequest`].
    pub fn store_with(&self, req: &StoreRequest<'_>) -> StoreResult {
        if !Self::key_ok(req.key) {
            return StoreResult::not(StoreOutcome::TooLarge);
        }
        let env = self.env();
        let (hash, mut shard) = self.route(req.key);
        // memcached sizes (and rejects) the incoming item before looking
        // at the existing one, using the flags sent with the command.
        let too_large = memcached_item_size(req.key.len(), req.value.len(), req.flags) > self.config().max_item_size;
        let result = if too_large {
            StoreResult::not(StoreOutcome::TooLarge)
        } else {
            let r = store_locked(&mut shard, hash, req, &env, self.config().max_item_size);
            let c = shard.classes.by_size(memcached_item_size(req.key.len(), req.value.len(), req.flags));
            c.cmd_set += 1;
            match (r.outcome, req.mode) {
                (StoreOutcome::NoMemory, _) => c.outofmemory += 1,
                (StoreOutcome::Stored, StoreMode::Cas) => c.cas_hits += 1,
                (StoreOutcome::Exists, StoreMode::Cas) => c.cas_badval += 1,
                _ => {}
            }
            r
        };
        if req.purge_on_failure && matches!(result.outcome, StoreOutcome::TooLarge | StoreOutcome::NoMemory) {
            if let Some(i) = shard.find(hash, req.key) {
                shard.remove(i);
            }
        }
        result
    }

    /// Text `delete`: remove the item; with `Some(cas)` only if it matches.
    pub fn delete(&self, key: &[u8], cas: Option<u64>) -> DeleteOutcome {
        self.delete_with(key, &DeleteRequest { cas, ..DeleteRequest::default() })
    }

    /// Meta `md` with invalidation / clear-value options; see [`DeleteRequest`].
    pub fn delete_with(&self, key: &[u8], req: &DeleteRequest) -> DeleteOutcome {
        if !Self::key_ok(key) {
            return DeleteOutcome::NotFound;
        }
        let env = self.env();
        let (hash, mut shard) = self.route(key);
        let Some(i) = shard.find_live(hash, key, &env) else {
            return DeleteOutcome::NotFound;
        };
        let old_cas = shard.header(i).cas;
        if req.cas.is_some_and(|c| c != old_cas) {
            return DeleteOutcome::Exists;
        }
        let size = crate::classes::ntotal_of(shard.header(i).data());
        if req.clear_value {
            let key_binary = layout(shard.header(i).data()).key_binary;
            let data = encode(key, req.flags, key_binary, [b"", b""]);
            let exptime = absolute_exptime(req.exptime.unwrap_or(0), env.now);
            let cas = req.new_cas.unwrap_or(old_cas);
            if shard.replace(i, data, exptime, cas, &env).is_err() {
                return DeleteOutcome::NoMemory;
            }
        }
        if req.invalidate {
            let cas = req.new_cas.unwrap_or_else(|| env.next_cas());
            let h = shard.header_mut(i);
            if let Some(t) = req.exptime {
                h.exptime = absolute_exptime(t, env.now);
            }
            h.set_bit(Bit::Stale, true);
            h.set_bit(Bit::TokenSent, false);
            h.cas = cas;
        } else if !req.clear_value {
            shard.remove(i);
        }
        shard.classes.by_size(size).delete_hits += 1;
        DeleteOutcome::Deleted
    }
}

/// `do_store_item` under the shard lock.
fn store_locked(
    shard: &mut Shard,
    hash: u64,
    req: &StoreRequest<'_>,
    env: &Env<'_>,
    max_item_size: usize,
) -> StoreResult {
    let Some(i) = shard.find_live_to_store(hash, req.key, env) else {
        return match req.mode {
            StoreMode::Set | StoreMode::Add => {
                let data = encode(req.key, req.flags, req.key_binary, [req.value, b""]);
                let cas = req.new_cas.unwrap_or_else(|| env.next_cas());
                let exptime = absolute_exptime(req.exptime, env.now);
                match shard.insert(hash, data, exptime, cas, env) {
                    Ok(_) => StoreResult { outcome: StoreOutcome::Stored, cas },
                    Err(_) => StoreResult::not(StoreOutcome::NoMemory),
                }
            }
            StoreMode::Cas => StoreResult::not(StoreOutcome::NotFound),
            StoreMode::Replace | StoreMode::Append | StoreMode::Prepend => StoreResult::not(StoreOutcome::NotStored),
        };
    };

    let (old_cas, old_exptime, old_token) = {
        let h = shard.header(i);
        (h.cas, h.exptime, h.bit(Bit::TokenSent))
    };
    let check = match req.cas {
        0 => CasCheck::None,
        c if c == old_cas => CasCheck::Match,
        c if req.invalidate && c < old_cas => CasCheck::Stale,
        _ => CasCheck::BadVal,
    };

    // Work out the new buffer and exptime, or the early answer.
    let (data, exptime, stale) = match req.mode {
        StoreMode::Add => {
            // add never overwrites but promotes the existing item.
            shard.update(i, env.now);
            return StoreResult::not(StoreOutcome::NotStored);
        }
        StoreMode::Cas if check == CasCheck::BadVal || check == CasCheck::None => {
            return StoreResult::not(StoreOutcome::Exists);
        }
        StoreMode::Append | StoreMode::Prepend => {
            if check != CasCheck::None && check != CasCheck::Match {
                return StoreResult::not(StoreOutcome::Exists);
            }
            let old = shard.header(i).data();
            let l = layout(old);
            let old_value = &old[l.value_start..];
            // memcached allocates the combined item with the old flags; if
            // that is too large the copy "fails" and the answer is NOT_STORED.
            let combined = old_value.len() + req.value.len();
            if memcached_item_size(req.key.len(), combined, l.flags) > max_item_size {
                return StoreResult::not(StoreOutcome::NotStored);
            }
            let parts: [&[u8]; 2] =
                if req.mode == StoreMode::Append { [old_value, req.value] } else { [req.value, old_value] };
            (encode(req.key, l.flags, l.key_binary, parts), old_exptime, false)
        }
        StoreMode::Cas if check == CasCheck::Stale => {
            let data = encode(req.key, req.flags, req.key_binary, [req.value, b""]);
            (data, old_exptime, true)
        }
        StoreMode::Set | StoreMode::Replace | StoreMode::Cas => {
            let data = encode(req.key, req.flags, req.key_binary, [req.value, b""]);
            (data, absolute_exptime(req.exptime, env.now), false)
        }
    };

    let cas = req.new_cas.unwrap_or_else(|| env.next_cas());
    if shard.replace(i, data, exptime, cas, env).is_err() {
        return StoreResult::not(StoreOutcome::NoMemory);
    }
    if stale {
        let h = shard.header_mut(i);
        h.set_bit(Bit::Stale, true);
        h.set_bit(Bit::TokenSent, old_token);
    }
    StoreResult { outcome: StoreOutcome::Stored, cas }
}
