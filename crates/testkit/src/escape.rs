//! Readable escaping of raw protocol bytes.
//!
//! Conformance data is mostly ASCII with `\r\n` terminators and the odd
//! control byte; mismatch reports and table files must show every byte
//! unambiguously without becoming unreadable. The escape language is a small
//! subset of Rust's string escapes so that it needs no documentation beyond
//! "like Rust": `\r \n \t \0 \\ \"` and `\xNN` for everything else outside
//! printable ASCII.

use thiserror::Error;

/// Why an escaped string could not be turned back into bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnescapeError {
    /// A backslash was the last character of the input.
    #[error("dangling backslash at end of string")]
    Dangling,
    /// A backslash was followed by a character that is not a known escape.
    #[error("unknown escape \\{0}")]
    Unknown(char),
    /// `\x` was not followed by two hex digits.
    #[error("\\x must be followed by two hex digits")]
    BadHex,
    /// A character outside printable ASCII appeared unescaped.
    #[error("character {0:?} must be written as an escape")]
    Unescaped(char),
}

/// Escapes `bytes` so that the result is printable ASCII and round-trips
/// through [`unescape`].
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\0' => out.push_str("\\0"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Escapes `bytes` like [`escape`] but shortens long runs of one byte to
/// `…<byte>×N…` markers, for human-facing reports of multi-megabyte replies.
pub fn escape_abbrev(bytes: &[u8]) -> String {
    const RUN: usize = 32;
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let run = bytes[i..].iter().take_while(|&&x| x == b).count();
        if run >= RUN {
            out.push_str(&format!("<{}×{run}>", escape(&[b])));
        } else {
            out.push_str(&escape(&bytes[i..i + run]));
        }
        i += run;
    }
    out
}

/// Reverses [`escape`]: turns an escaped string (without surrounding quotes)
/// back into bytes.
pub fn unescape(text: &str) -> Result<Vec<u8>, UnescapeError> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if !(' '..='~').contains(&c) {
                return Err(UnescapeError::Unescaped(c));
            }
            // Printable ASCII: the cast cannot truncate.
            out.push(c as u8);
            continue;
        }
        match chars.next() {
            None => return Err(UnescapeError::Dangling),
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(b'\0'),
            Some('\\') => out.push(b'\\'),
            Some('"') => out.push(b'"'),
            Some('x') => {
                let hi = chars.next().and_then(|c| c.to_digit(16));
                let lo = chars.next().and_then(|c| c.to_digit(16));
                match (hi, lo) {
                    // Two hex digits are at most 0xff.
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(UnescapeError::BadHex),
                }
            }
            Some(other) => return Err(UnescapeError::Unknown(other)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
    }

    #[test]
    fn escapes_protocol_bytes_readably() {
        assert_eq!(escape(b"get k\r\n"), "get k\\r\\n");
        assert_eq!(escape(b"a\x01\"\\"), "a\\x01\\\"\\\\");
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(unescape("\\q"), Err(UnescapeError::Unknown('q')));
        assert_eq!(unescape("\\x4"), Err(UnescapeError::BadHex));
        assert_eq!(unescape("\\"), Err(UnescapeError::Dangling));
        assert_eq!(unescape("é"), Err(UnescapeError::Unescaped('é')));
    }

    #[test]
    fn abbreviates_runs() {
        let mut v = b"set k 0 0 40\r\n".to_vec();
        v.extend(std::iter::repeat_n(b'a', 40));
        assert_eq!(escape_abbrev(&v), "set k 0 0 40\\r\\n<a×40>");
    }
}
