//! Normalizations for reply fields that legitimately differ between
//! memcached and memshard (CAS uniques, clocks, version strings, stats).
//!
//! Every rule rewrites whole reply lines, is idempotent, and is applied to
//! both the expected and the actual reply before comparing, so a rule can
//! only hide the *value* of a field, never its presence or its framing.

/// A named normalization rule; the name is what table files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `cas`: `VALUE <key> <flags> <bytes> <cas>` → `... <cas>`.
    Cas,
    /// `meta-cas`: `c<digits>` tokens on meta status lines → `c<n>`.
    MetaCas,
    /// `meta-ttl`: `t<digits>` tokens on meta status lines → `t<n>`
    /// (`t-1`, "never expires", is kept: it is not clock-dependent).
    MetaTtl,
    /// `meta-la`: `l<digits>` (seconds since last access) → `l<n>`.
    MetaLastAccess,
    /// `version`: `VERSION <anything>` → `VERSION <version>`.
    Version,
    /// `stats`: a run of well-formed `STAT <name> <value...>` lines → one
    /// `STAT <name> <value>` line; checks framing, not content.
    Stats,
    /// `me`: `ME <key> <anything>` → `ME <key> <debug>`.
    MetaDebug,
}

impl Rule {
    /// Every rule, in documentation order.
    pub const ALL: [Rule; 7] =
        [Rule::Cas, Rule::MetaCas, Rule::MetaTtl, Rule::MetaLastAccess, Rule::Version, Rule::Stats, Rule::MetaDebug];

    /// The names accepted by [`Rule::from_name`], for error messages.
    pub const NAMES: &'static str = "cas meta-cas meta-ttl meta-la version stats me";

    /// The name used in table files.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Cas => "cas",
            Rule::MetaCas => "meta-cas",
            Rule::MetaTtl => "meta-ttl",
            Rule::MetaLastAccess => "meta-la",
            Rule::Version => "version",
            Rule::Stats => "stats",
            Rule::MetaDebug => "me",
        }
    }

    /// Looks a rule up by its table-file name.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Applies `rules` to `reply`, returning the normalized bytes.
pub fn normalize(rules: &[Rule], reply: &[u8]) -> Vec<u8> {
    if rules.is_empty() {
        return reply.to_vec();
    }
    let mut out = Vec::with_capacity(reply.len());
    let mut in_stats_run = false;
    for line in reply.split_inclusive(|&b| b == b'\n') {
        let (body, ending) = split_ending(line);
        if rules.contains(&Rule::Stats) && is_stat_line(body, ending) {
            if !in_stats_run {
                out.extend_from_slice(b"STAT <name> <value>\r\n");
            }
            in_stats_run = true;
            continue;
        }
        in_stats_run = false;
        out.extend_from_slice(&normalize_line(rules, body));
        out.extend_from_slice(ending);
    }
    out
}

/// Splits a line into its body and its `\r\n` / `\n` / empty terminator.
fn split_ending(line: &[u8]) -> (&[u8], &[u8]) {
    if line.ends_with(b"\r\n") {
        line.split_at(line.len() - 2)
    } else if line.ends_with(b"\n") {
        line.split_at(line.len() - 1)
    } else {
        (line, &[])
    }
}

fn is_stat_line(body: &[u8], ending: &[u8]) -> bool {
    ending == b"\r\n" && body.starts_with(b"STAT ") && body.split(|&b| b == b' ').filter(|t| !t.is_empty()).count() >= 3
}

fn normalize_line(rules: &[Rule], body: &[u8]) -> Vec<u8> {
    let tokens: Vec<&[u8]> = body.split(|&b| b == b' ').collect();
    let first = tokens.first().copied().unwrap_or_default();
    if rules.contains(&Rule::Version) && first == b"VERSION" && tokens.len() > 1 {
        return b"VERSION <version>".to_vec();
    }
    if rules.contains(&Rule::MetaDebug) && first == b"ME" && tokens.len() > 2 {
        let mut out = b"ME ".to_vec();
        out.extend_from_slice(tokens[1]);
        out.extend_from_slice(b" <debug>");
        return out;
    }
    if rules.contains(&Rule::Cas) && first == b"VALUE" && tokens.len() == 5 {
        let mut out = tokens[..4].join(&b' ');
        out.extend_from_slice(b" <cas>");
        return out;
    }
    if is_meta_status(first) {
        let rewritten: Vec<Vec<u8>> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if i == 0 {
                    return t.to_vec();
                }
                meta_token(rules, t).unwrap_or_else(|| t.to_vec())
            })
            .collect();
        return rewritten.join(&b' ');
    }
    body.to_vec()
}

/// Meta replies start with a two-letter upper-case status code.
fn is_meta_status(token: &[u8]) -> bool {
    token.len() == 2 && token.iter().all(u8::is_ascii_uppercase)
}

fn meta_token(rules: &[Rule], token: &[u8]) -> Option<Vec<u8>> {
    let (&flag, value) = token.split_first()?;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rule = match flag {
        b'c' => Rule::MetaCas,
        b't' => Rule::MetaTtl,
        b'l' => Rule::MetaLastAccess,
        _ => return None,
    };
    rules.contains(&rule).then(|| [&[flag][..], b"<n>"].concat())
}

/// The most recent CAS unique in `received`: the fifth token of a
/// `VALUE k f n cas` line or a `c<digits>` token on a meta status line.
pub fn last_cas(received: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    for line in received.split_inclusive(|&b| b == b'\n') {
        let (body, ending) = split_ending(line);
        if ending.is_empty() {
            break; // incomplete line: its CAS may still be arriving
        }
        let tokens: Vec<&[u8]> = body.split(|&b| b == b' ').collect();
        let first = tokens.first().copied().unwrap_or_default();
        if first == b"VALUE" && tokens.len() == 5 && tokens[4].iter().all(u8::is_ascii_digit) {
            found = Some(tokens[4].to_vec());
        } else if is_meta_status(first) {
            for t in &tokens[1..] {
                if let Some(digits) = t.strip_prefix(b"c") {
                    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                        found = Some(digits.to_vec());
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(rules: &[Rule], s: &str) -> String {
        String::from_utf8(normalize(rules, s.as_bytes())).unwrap()
    }

    #[test]
    fn cas_in_value_lines() {
        assert_eq!(
            norm(&[Rule::Cas], "VALUE k 0 1 42\r\nx\r\nVALUE j 0 1\r\ny\r\nEND\r\n"),
            "VALUE k 0 1 <cas>\r\nx\r\nVALUE j 0 1\r\ny\r\nEND\r\n"
        );
    }

    #[test]
    fn meta_tokens() {
        let all = [Rule::MetaCas, Rule::MetaTtl, Rule::MetaLastAccess];
        assert_eq!(
            norm(&all, "VA 1 c99 t30 t-1 l2 kfoo Oc1\r\nx\r\nHD c7\r\n"),
            "VA 1 c<n> t<n> t-1 l<n> kfoo Oc1\r\nx\r\nHD c<n>\r\n"
        );
        assert_eq!(norm(&[Rule::MetaCas], "HD t5 c1\r\n"), "HD t5 c<n>\r\n");
    }

    #[test]
    fn version_stats_and_me() {
        assert_eq!(norm(&[Rule::Version], "VERSION 1.6.18\r\n"), "VERSION <version>\r\n");
        assert_eq!(norm(&[Rule::Stats], "STAT pid 1\r\nSTAT version 1.6\r\nEND\r\n"), "STAT <name> <value>\r\nEND\r\n");
        assert_eq!(norm(&[Rule::Stats], "STAT broken\r\nEND\r\n"), "STAT broken\r\nEND\r\n");
        assert_eq!(norm(&[Rule::MetaDebug], "ME k exp=-1 la=0 cas=3\r\n"), "ME k <debug>\r\n");
    }

    #[test]
    fn rules_are_idempotent() {
        let text = "VALUE k 0 1 42\r\nx\r\nVA 1 c9 t3 l1\r\nSTAT a b\r\nEND\r\nVERSION 1\r\nME k a\r\n";
        let once = normalize(&Rule::ALL, text.as_bytes());
        assert_eq!(normalize(&Rule::ALL, &once), once);
    }

    #[test]
    fn finds_last_cas() {
        assert_eq!(last_cas(b"VALUE k 0 1 42\r\nx\r\nEND\r\n"), Some(b"42".to_vec()));
        assert_eq!(last_cas(b"HD c7\r\nVA 1 c8 f0\r\nx\r\n"), Some(b"8".to_vec()));
        assert_eq!(last_cas(b"STORED\r\n"), None);
        assert_eq!(last_cas(b"HD c12"), None);
    }
}
