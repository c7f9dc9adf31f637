//! twemproxy's number rule (`nc_atoi`, nc_util.c): one or more ASCII
//! digits, nothing else: no sign, no blanks, no `0x`, no exponent.

/// The largest value twemproxy can hold: its fields are C `int`s.
pub(crate) const MAX: u32 = i32::MAX as u32;

/// Parses a non-negative decimal the way `nc_atoi` does.
///
/// `nc_atoi` overflows silently (`4294967297` wraps to 1 and is accepted);
/// this refuses anything above `i32::MAX` instead, so a typo cannot turn
/// into a small number.
pub(crate) fn parse(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, b| acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))).filter(|&n| n <= MAX)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn digits_only() {
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("0400"), Some(400));
        assert_eq!(parse("2147483647"), Some(2_147_483_647));
        for bad in ["", "-1", "+1", " 1", "1 ", "1.5", "1e3", "0x10", "2147483648", "4294967297", "٣"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
