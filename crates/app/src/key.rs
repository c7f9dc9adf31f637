//! The `lookup` query parameter: percent-decoding and memcached's key rules.

use crate::error::AppError;
use percent_encoding::percent_decode;

/// memcached's longest key, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// The key of `?lookup=KEY` from a raw query string, checked: present,
/// non-empty, valid UTF-8 once decoded (the JSON answer carries it as a
/// string), at most 250 bytes, and free of spaces and control characters
/// (the text protocol would split or refuse it). The first `lookup` wins when
/// several are given, as most web frameworks read them. `+` means a space, as
/// in HTML forms, so `lookup=a+b` is refused as a key with a space.
pub fn lookup_key(query: Option<&str>) -> Result<String, AppError> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name).as_deref() == Some("lookup")).then_some(value)
        })
        .ok_or_else(|| AppError::BadKey("missing query parameter 'lookup'".to_owned()))?;
    let key =
        decode(raw).ok_or_else(|| AppError::BadKey("the key is not valid UTF-8 once percent-decoded".to_owned()))?;
    check(&key)?;
    Ok(key)
}

fn decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_decode(spaced.as_bytes()).decode_utf8().ok().map(|c| c.into_owned())
}

fn check(key: &str) -> Result<(), AppError> {
    if key.is_empty() {
        return Err(AppError::BadKey("the key is empty".to_owned()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(AppError::BadKey(format!("the key is {} bytes long; the limit is {MAX_KEY_LEN}", key.len())));
    }
    if let Some(c) = key.chars().find(|c| *c == ' ' || c.is_ascii_control()) {
        return Err(AppError::BadKey(format!(
            "the key contains {c:?}; spaces and control characters cannot be stored"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lookup_key;

    fn ok(q: &str) -> String {
        lookup_key(Some(q)).expect("a valid key")
    }

    fn refused(q: Option<&str>) -> String {
        match lookup_key(q) {
            Err(e) => e.to_string(),
            Ok(k) => panic!("{q:?} gave key {k:?}"),
        }
    }

    #[test]
    fn decodes_the_first_lookup() {
        assert_eq!(ok("lookup=cat"), "cat");
        assert_eq!(ok("x=1&lookup=caf%C3%A9&lookup=dog"), "café");
        assert_eq!(ok("look%75p=a%2Fb"), "a/b");
        assert_eq!(ok(&format!("lookup={}", "k".repeat(250))).len(), 250);
    }

    #[test]
    fn refuses_bad_keys_with_a_reason() {
        assert!(refused(None).contains("missing"));
        assert!(refused(Some("lookups=cat")).contains("missing"));
        assert!(refused(Some("lookup=")).contains("empty"));
        assert!(refused(Some("lookup")).contains("empty"));
        assert!(refused(Some(&format!("lookup={}", "k".repeat(251)))).contains("251 bytes"));
        assert!(refused(Some("lookup=a+b")).contains("space"));
        assert!(refused(Some("lookup=a%20b")).contains("space"));
        assert!(refused(Some("lookup=a%0Ab")).contains("control"));
        assert!(refused(Some("lookup=a%7Fb")).contains("control"));
        assert!(refused(Some("lookup=%FF")).contains("UTF-8"));
        // Multi-byte characters count in bytes, as memcached counts them.
        assert!(refused(Some(&format!("lookup={}", "%C3%A9".repeat(126)))).contains("252 bytes"));
    }
}
