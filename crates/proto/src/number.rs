//! Number parsing with memcached's exact acceptance rules.
//!
//! memcached parses numeric tokens with `strtol`/`strtoul` wrapped in `safe_strto*`
//! (util.c). To give byte-identical replies we reproduce their quirks rather than
//! use Rust's stricter parsers: leading C whitespace and a sign are accepted, the
//! digits may be followed by one whitespace byte, 64-bit results are *truncated*
//! (not range-checked) when stored into 32-bit fields, and unsigned parsers accept
//! `-N` unless the negated value looks negative as a signed number.

/// C `isspace` in the "C" locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses `[space]* [+-]? digits` and returns (negative, magnitude, rest).
/// `None` when there are no digits or the magnitude overflows u64 (ERANGE).
fn parse_magnitude(s: &[u8]) -> Option<(bool, u64, &[u8])> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((neg, v, &s[i..]))
}

/// What may follow the digits: nothing, or a whitespace byte.
fn tail_ok(rest: &[u8]) -> bool {
    rest.first().is_none_or(|&b| is_c_space(b))
}

/// `safe_strtoull`: an unsigned 64-bit number.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let (neg, mag, rest) = parse_magnitude(s)?;
    if !tail_ok(rest) {
        return None;
    }
    let v = if neg { mag.wrapping_neg() } else { mag };
    // memcached only rejects a '-' when the result looks negative as a signed value.
    if (v as i64) < 0 && s.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// `safe_strtoul`: parsed as an unsigned long, then truncated to 32 bits as
/// memcached does when it stores the result into a `uint32_t`.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).map(|v| v as u32)
}

/// `safe_strtoll`: a signed 64-bit number; out of range is an error.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, mag, rest) = parse_magnitude(s)?;
    if !tail_ok(rest) {
        return None;
    }
    if neg {
        if mag > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((mag as i64).wrapping_neg())
    } else {
        i64::try_from(mag).ok()
    }
}

/// `safe_strtol` into an `int32_t`: parsed as a 64-bit long, then truncated.
pub fn parse_i32(s: &[u8]) -> Option<i32> {
    parse_i64(s).map(|v| v as i32)
}

/// `safe_strtod`: a decimal floating-point number (`[space]* [+-]? digits
/// [. digits] [e [+-] digits]`), followed by nothing or one whitespace byte.
/// C's `strtod` also reads `inf`, `nan` and hex floats; memcached's few
/// float settings (ratios, factors) need none of them, and they are refused.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let start = i;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut mantissa = digits(&mut i);
    if i < s.len() && s[i] == b'.' {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return None;
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        let mut j = i + 1;
        if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    if !tail_ok(&s[i..]) {
        return None;
    }
    std::str::from_utf8(&s[start..i]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_rules() {
        assert_eq!(parse_u64(b"42"), Some(42));
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"-0"), Some(0));
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"5\r"), Some(5));
        assert_eq!(parse_u64(b"\t5"), Some(5));
    }

    #[test]
    fn floats_as_strtod() {
        assert_eq!(parse_f64(b"0.8"), Some(0.8));
        assert_eq!(parse_f64(b" -2.5e1"), Some(-25.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"3."), Some(3.0));
        assert_eq!(parse_f64(b"1e"), None); // "1" then a stray "e"
        assert_eq!(parse_f64(b"x"), None);
        assert_eq!(parse_f64(b"."), None);
        assert_eq!(parse_f64(b"2\r"), Some(2.0));
    }

    #[test]
    fn truncation_matches_c() {
        assert_eq!(parse_u32(b"4294967296"), Some(0));
        assert_eq!(parse_u32(b"4294967297"), Some(1));
        assert_eq!(parse_i32(b"4294967296"), Some(0));
        assert_eq!(parse_i32(b"2147483648"), Some(i32::MIN));
        assert_eq!(parse_i32(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }
}
