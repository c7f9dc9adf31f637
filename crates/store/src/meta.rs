//! Meta-protocol (`mg`, `ma`) item access: a closure runs against the item
//! under the shard lock so the server can read and change item state in the
//! exact order the request's flags appear, as memcached 1.6.18's
//! `process_mget_command` does.

use crate::compat::memcached_item_size;
use crate::exptime::{absolute_exptime, remaining_ttl};
use crate::item::{ItemView, data_footprint, encode, key_of, layout};
use crate::slab::{Bit, Header};
use crate::store::Store;

/// Options for [`Store::meta_get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaGetOptions {
    /// Refresh LRU position / fetched flag / access time after the closure
    /// ran (memcached's delayed bump). `false` for the `u` flag.
    pub bump: bool,
    /// `N<ttl>`: on a miss, create an empty item (flags 0) and report it as
    /// [`MetaItem::created`]. Like memcached, the item starts with no expiry
    /// and `ttl` is applied when the server reaches the `N` flag
    /// ([`MetaItem::apply_vivify_ttl`]); if it never does, it is applied after
    /// the closure returns.
    pub vivify: Option<i64>,
    /// Mark a vivified item's key as binary (`b` flag).
    pub key_binary: bool,
    /// `E<cas>`: the CAS to give an item this request creates (vivify), as
    /// later memcached releases do; `None` draws the next CAS.
    pub new_cas: Option<u64>,
}

impl Default for MetaGetOptions {
    fn default() -> Self {
        Self { bump: true, vivify: None, key_binary: false, new_cas: None }
    }
}

/// Flags to append after an `mg` response, from [`MetaItem::settle_token`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenFlags {
    /// `W`: this client won the right to recache the item.
    pub win: bool,
    /// `Z`: a win token was already handed to another client.
    pub already_sent: bool,
    /// `X`: the item is stale.
    pub stale: bool,
}

/// An item under the shard lock, handed to a meta closure.
///
/// Do not call back into the [`Store`] from the closure: the shard lock is
/// held and is not re-entrant.
#[derive(Debug)]
pub struct MetaItem<'a> {
    hdr: &'a mut Header,
    now: u32,
    created: bool,
    pending_ttl: Option<u32>,
}

impl<'a> MetaItem<'a> {
    pub(crate) fn new(hdr: &'a mut Header, now: u32, created: bool, pending_ttl: Option<u32>) -> Self {
        Self { hdr, now, created, pending_ttl }
    }

    /// The vivify TTL not yet applied, for the store to apply afterwards.
    pub(crate) fn take_pending_ttl(&mut self) -> Option<u32> {
        self.pending_ttl.take()
    }

    /// The key (`k`).
    pub fn key(&self) -> &[u8] {
        key_of(self.hdr.data())
    }

    /// A cheap shared view of key, value, flags and current CAS (`v`).
    pub fn view(&self) -> ItemView {
        let data = self.hdr.shared().unwrap_or_else(|| std::sync::Arc::from(&[][..]));
        ItemView::new(data, self.hdr.cas)
    }

    /// Value length (`s`).
    pub fn value_len(&self) -> usize {
        let d = self.hdr.data();
        d.len() - layout(d).value_start
    }

    /// Client flags (`f`).
    pub fn flags(&self) -> u32 {
        layout(self.hdr.data()).flags
    }

    /// CAS unique (`c`).
    pub fn cas(&self) -> u64 {
        self.hdr.cas
    }

    /// Whether the key is stored in binary form (`b` on the storing command).
    pub fn key_binary(&self) -> bool {
        layout(self.hdr.data()).key_binary
    }

    /// Absolute unix expiry time, 0 for never.
    pub fn exptime(&self) -> u64 {
        u64::from(self.hdr.exptime)
    }

    /// Remaining TTL in seconds, `-1` for never (`t`). memcached prints it
    /// as an unsigned 32-bit number, so a negative value (only possible
    /// after `set_exptime` with a past time in the same request) should be
    /// formatted as `value as u32` to match it byte for byte.
    pub fn ttl(&self) -> i64 {
        remaining_ttl(self.hdr.exptime, self.now)
    }

    /// Seconds since the item was stored or last bumped (`l`).
    pub fn last_access(&self) -> u64 {
        u64::from(self.now.saturating_sub(self.hdr.time))
    }

    /// Whether the item had been fetched before this request (`h`).
    pub fn fetched(&self) -> bool {
        self.hdr.bit(Bit::Fetched)
    }

    /// Whether the item is marked stale (`X`).
    pub fn stale(&self) -> bool {
        self.hdr.bit(Bit::Stale)
    }

    /// Whether a win token was already handed out (`Z`).
    pub fn token_sent(&self) -> bool {
        self.hdr.bit(Bit::TokenSent)
    }

    /// Whether this request created the item (vivify on miss).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Bytes the item is charged against the memory limit.
    pub fn size(&self) -> usize {
        data_footprint(self.hdr.data().len())
    }

    /// memcached's `ITEM_ntotal` for this item (`me` command's `size=`).
    pub fn memcached_size(&self) -> usize {
        memcached_item_size(self.key().len(), self.value_len(), self.flags())
    }

    /// `T<ttl>`: set a new exptime (client form, see crate docs).
    pub fn set_exptime(&mut self, exptime: i64) {
        self.hdr.exptime = absolute_exptime(exptime, self.now);
    }

    /// `N<ttl>` reached in the flag list: apply the vivify TTL if this
    /// request created the item. Returns whether the item was created (in
    /// which case `mg` counts it as a win).
    pub fn apply_vivify_ttl(&mut self) -> bool {
        if let Some(e) = self.pending_ttl.take() {
            self.hdr.exptime = e;
        }
        self.created
    }

    /// `R<ttl>`: true when this request should win the recache token: no
    /// token sent yet, not just created, and the item expires sooner than
    /// `ttl` from now.
    pub fn recache_due(&self, ttl: i64) -> bool {
        !self.token_sent()
            && !self.created
            && self.hdr.exptime != 0
            && self.hdr.exptime < absolute_exptime(ttl, self.now)
    }

    /// Final token bookkeeping of `mg`: reports `Z` if a token was already
    /// sent, `X` if stale (a stale item with no token out always wins), and
    /// `W` if `won` (from `N`/`R`) or the stale rule; a win marks the token
    /// as sent.
    pub fn settle_token(&mut self, won: bool) -> TokenFlags {
        let already_sent = self.token_sent();
        let stale = self.stale();
        let win = won || (stale && !already_sent);
        if win {
            self.hdr.set_bit(Bit::TokenSent, true);
        }
        TokenFlags { win, already_sent, stale }
    }
}

impl Store {
    /// Meta get (`mg`, also `me`/`mn` style inspection).
    ///
    /// Looks up `key` (lazily dropping it if expired/flushed), vivifies it
    /// on a miss if asked, runs `f` on the item under the shard lock, then
    /// applies a pending vivify TTL and the delayed LRU bump. `f` gets `None`
    /// on a miss (or if vivifying failed for lack of memory).
    pub fn meta_get<R>(&self, key: &[u8], opts: &MetaGetOptions, f: impl FnOnce(Option<&mut MetaItem<'_>>) -> R) -> R {
        if !Self::key_ok(key) {
            return f(None);
        }
        let env = self.env();
        let (hash, mut shard) = self.route(key);
        let mut created = false;
        let mut pending = None;
        let mut found = shard.find_live(hash, key, &env);
        if found.is_none() {
            if let Some(ttl) = opts.vivify {
                let data = encode(key, 0, opts.key_binary, [b"", b""]);
                let cas = opts.new_cas.unwrap_or_else(|| env.next_cas());
                if let Ok(i) = shard.insert(hash, data, 0, cas, &env) {
                    found = Some(i);
                    created = true;
                    pending = Some(absolute_exptime(ttl, env.now));
                }
            }
        }
        let Some(i) = found else {
            return f(None);
        };
        if opts.bump && !created {
            shard.class_at(i).get_hits += 1;
        }
        let mut item = MetaItem::new(shard.header_mut(i), env.now, created, pending);
        let out = f(Some(&mut item));
        if let Some(e) = item.take_pending_ttl() {
            shard.header_mut(i).exptime = e;
        }
        if opts.bump {
            shard.bump(i, env.now);
        }
        out
    }
}
