//! `incr`/`decr` and meta `ma`, following memcached 1.6.18's `do_add_delta`.
//!
//! The value must parse as memcached's `safe_strtoull` would parse it (see
//! [`parse_counter`]). The result is written back as decimal text: in place,
//! padded with trailing spaces, when it is not longer than the old value
//! (`decr` of `"100"` by 1 leaves `"99 "`), otherwise as a new, exactly sized
//! value. `incr` wraps at 2^64, `decr` stops at 0.

use std::sync::Arc;

use crate::compat::{SLAB_CHUNK_SIZE_MAX, memcached_item_size};
use crate::item::{encode, layout};
use crate::meta::MetaItem;
use crate::store::Store;

/// Auto-create settings for meta `ma` (`N<ttl>` with `J<initial>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vivify {
    /// Value stored on a miss (the delta is not applied to it).
    pub initial: u64,
    /// Client exptime for the created item (see [`MetaGetOptions::vivify`](crate::MetaGetOptions::vivify)
    /// for when it is applied).
    pub exptime: i64,
}

/// An arithmetic command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArithRequest {
    /// `true` for incr, `false` for decr.
    pub incr: bool,
    /// Amount to add or subtract.
    pub delta: u64,
    /// CAS to compare, 0 for none (memcached ignores `C0` here).
    pub cas: u64,
    /// Create the item on a miss.
    pub vivify: Option<Vivify>,
    /// `E<cas>`: give the result this CAS (not in 1.6.18; later releases).
    pub new_cas: Option<u64>,
    /// Mark a vivified item's key as binary.
    pub key_binary: bool,
}

impl ArithRequest {
    /// Plain `incr key delta`.
    pub fn incr(delta: u64) -> Self {
        Self { incr: true, delta, cas: 0, vivify: None, new_cas: None, key_binary: false }
    }

    /// Plain `decr key delta`.
    pub fn decr(delta: u64) -> Self {
        Self { incr: false, ..Self::incr(delta) }
    }
}

/// Protocol outcome of an arithmetic command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value (or the initial value when `created`) and its CAS.
    Value {
        /// Numeric result.
        value: u64,
        /// CAS of the updated item.
        cas: u64,
        /// The item did not exist and was vivified.
        created: bool,
    },
    /// `NOT_FOUND` / `NF`.
    NotFound,
    /// `CLIENT_ERROR cannot increment or decrement non-numeric value`.
    NonNumeric,
    /// `EX`: CAS mismatch.
    Exists,
    /// `SERVER_ERROR out of memory`.
    NoMemory,
}

/// Parses a stored value exactly like memcached's `safe_strtoull` applied
/// to the item data (which is followed by `"\r\n"` in memcached's memory).
///
/// Leading C-locale whitespace is skipped, an optional sign accepted,
/// decimal digits read; overflow fails. The next byte must be whitespace,
/// NUL, or the end of the value. A `-` sign negates modulo 2^64 (C
/// `strtoull`), and results with the top bit set are refused if the value
/// contains a `-` before any NUL, so `"-1"` is non-numeric but `"-0"` is 0.
pub fn parse_counter(value: &[u8]) -> Option<u64> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut i = 0;
    while i < value.len() && is_space(value[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&sign @ (b'+' | b'-')) = value.get(i) {
        negative = sign == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut acc: u64 = 0;
    let mut overflow = false;
    while let Some(&d) = value.get(i).filter(|d| d.is_ascii_digit()) {
        match acc.checked_mul(10).and_then(|a| a.checked_add(u64::from(d - b'0'))) {
            Some(a) => acc = a,
            None => overflow = true,
        }
        i += 1;
    }
    if i == digits_start || overflow {
        return None;
    }
    if let Some(&next) = value.get(i) {
        if !(is_space(next) || next == 0) {
            return None;
        }
    }
    let result = if negative { acc.wrapping_neg() } else { acc };
    if result > i64::MAX as u64 {
        let until_nul = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        if value[..until_nul].contains(&b'-') {
            return None;
        }
    }
    Some(result)
}

/// Formats `n` in decimal into `buf`, returning the used tail.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    let mut n = n;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[pos..]
}

impl Store {
    /// Text `incr key delta`.
    pub fn incr(&self, key: &[u8], delta: u64) -> ArithOutcome {
        self.arith(key, &ArithRequest::incr(delta))
    }

    /// Text `decr key delta`.
    pub fn decr(&self, key: &[u8], delta: u64) -> ArithOutcome {
        self.arith(key, &ArithRequest::decr(delta))
    }

    /// An arithmetic command with meta options; a vivified item gets its
    /// TTL immediately.
    pub fn arith(&self, key: &[u8], req: &ArithRequest) -> ArithOutcome {
        self.arith_meta(key, req, |_| ()).0
    }

    /// Meta `ma`: like [`Store::arith`], then runs `f` on the resulting
    /// item under the lock (for `t`, `T`, `N`, `c` in flag order). `f` is
    /// only called when the outcome is [`ArithOutcome::Value`].
    pub fn arith_meta<R>(
        &self,
        key: &[u8],
        req: &ArithRequest,
        f: impl FnOnce(&mut MetaItem<'_>) -> R,
    ) -> (ArithOutcome, Option<R>) {
        if !Self::key_ok(key) {
            return (ArithOutcome::NotFound, None);
        }
        let env = self.env();
        let (hash, mut shard) = self.route(key);

        let Some(i) = shard.find_live(hash, key, &env) else {
            let Some(viv) = req.vivify else {
                return (ArithOutcome::NotFound, None);
            };
            // memcached stores the initial value with flags 0 and no expiry,
            // then applies the N ttl while walking the flags.
            let mut buf = [0; 20];
            let data = encode(key, 0, req.key_binary, [decimal(viv.initial, &mut buf), b""]);
            let cas = req.new_cas.unwrap_or_else(|| env.next_cas());
            let Ok(i) = shard.insert(hash, data, 0, cas, &env) else {
                return (ArithOutcome::NoMemory, None);
            };
            let ttl = crate::exptime::absolute_exptime(viv.exptime, env.now);
            let mut item = MetaItem::new(shard.header_mut(i), env.now, true, Some(ttl));
            let out = f(&mut item);
            if let Some(e) = item.take_pending_ttl() {
                shard.header_mut(i).exptime = e;
            }
            let outcome = ArithOutcome::Value { value: viv.initial, cas, created: true };
            return (outcome, Some(out));
        };

        let (l, value_len, old_cas, exptime) = {
            let h = shard.header(i);
            let l = layout(h.data());
            (l, h.data().len() - l.value_start, h.cas, h.exptime)
        };
        // Empty values and values memcached would store chunked (over
        // 512 KiB) are refused before anything else.
        if value_len == 0 || memcached_item_size(key.len(), value_len, l.flags) > SLAB_CHUNK_SIZE_MAX {
            return (ArithOutcome::NonNumeric, None);
        }
        if req.cas != 0 && req.cas != old_cas {
            return (ArithOutcome::Exists, None);
        }
        let Some(current) = parse_counter(&shard.header(i).data()[l.value_start..]) else {
            return (ArithOutcome::NonNumeric, None);
        };
        let value = if req.incr { current.wrapping_add(req.delta) } else { current.saturating_sub(req.delta) };
        let mut buf = [0; 20];
        let digits = decimal(value, &mut buf);
        let cas = req.new_cas.unwrap_or_else(|| env.next_cas());

        if digits.len() <= value_len {
            // In place: same length, digits then spaces, flags/exptime/state
            // kept. If a reader still holds the buffer, copy-on-write so the
            // reader's bytes never change under it.
            let h = shard.header_mut(i);
            if let Some(arc) = h.shared_mut() {
                if let Some(bytes) = Arc::get_mut(arc) {
                    let v = &mut bytes[l.value_start..];
                    v[..digits.len()].copy_from_slice(digits);
                    v[digits.len()..].fill(b' ');
                } else {
                    let mut padded = vec![b' '; value_len];
                    padded[..digits.len()].copy_from_slice(digits);
                    *arc = encode(key, l.flags, l.key_binary, [&padded, b""]);
                }
            }
            h.cas = cas;
            shard.update(i, env.now);
        } else {
            let data = encode(key, l.flags, l.key_binary, [digits, b""]);
            if shard.replace(i, data, exptime, cas, &env).is_err() {
                return (ArithOutcome::NoMemory, None);
            }
        }
        let c = shard.class_at(i);
        if req.incr {
            c.incr_hits += 1;
        } else {
            c.decr_hits += 1;
        }
        let mut item = MetaItem::new(shard.header_mut(i), env.now, false, None);
        let out = f(&mut item);
        let outcome = ArithOutcome::Value { value, cas, created: false };
        (outcome, Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_rules() {
        assert_eq!(parse_counter(b"5"), Some(5));
        assert_eq!(parse_counter(b" 5"), Some(5));
        assert_eq!(parse_counter(b"\t7"), Some(7));
        assert_eq!(parse_counter(b"\x0b9"), Some(9));
        assert_eq!(parse_counter(b"5 "), Some(5));
        assert_eq!(parse_counter(b"+5"), Some(5));
        assert_eq!(parse_counter(b"-0"), Some(0));
        assert_eq!(parse_counter(b"00012"), Some(12));
        assert_eq!(parse_counter(b"12\x0034"), Some(12));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"-9223372036854775809"), Some(9_223_372_036_854_775_807));
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b"5x"), None);
        assert_eq!(parse_counter(b"1-"), None);
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b"   "), None);
        assert_eq!(parse_counter(b"-"), None);
        assert_eq!(parse_counter(b"18446744073709551616"), None);
        assert_eq!(parse_counter(b"18446744073709551615 -"), None);
        assert_eq!(parse_counter(b"0x10"), None);
    }

    #[test]
    fn decimal_formatting() {
        let mut b = [0; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(1234, &mut b), b"1234");
        assert_eq!(decimal(u64::MAX, &mut b), b"18446744073709551615");
    }
}
