//! Outputs recorded from the real memcached 1.6.18, for tests that compare
//! what memshard prints with what memcached prints (see `recordings/`).

/// `stats`, `stats settings`, `stats items` and `stats slabs` of Debian's
/// memcached 1.6.18 after `set a 0 0 1`, `set bb 5 100 100` and `get a`,
/// each group after a `== stats …` line.
pub const MEMCACHED_STATS: &str = include_str!("../recordings/memcached-1.6.18-stats.txt");

/// The `STAT name value` pairs of `group` (`""` for plain `stats`) in a
/// recording made of `== stats …` sections.
pub fn stat_section<'a>(recording: &'a str, group: &str) -> Vec<(&'a str, &'a str)> {
    let header = if group.is_empty() { "== stats".to_string() } else { format!("== stats {group}") };
    recording
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with("== "))
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .collect()
}

/// The `STAT name value` pairs of one reply to `stats …`.
pub fn stat_pairs(reply: &str) -> Vec<(&str, &str)> {
    reply.lines().filter_map(|l| l.strip_prefix("STAT ")).filter_map(|l| l.split_once(' ')).collect()
}
