//! The whole file: every pool, checked together (`conf_post_validate`).

use std::borrow::Cow;
use std::path::Path;

use crate::directive::PoolBuilder;
use crate::error::{ConfigError, ErrorKind, Quoted};
use crate::pool::PoolConfig;
use crate::server::twemproxy_order;
use crate::yaml;

/// A loaded configuration: at least one pool, each with its own listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `(pool name, pool)` in twemproxy's order: sorted by name, shorter
    /// names first, then bytewise (`string_compare`), so `b` comes before
    /// `aa`. nutcracker's stats list pools in this order. Names and listen
    /// addresses are unique.
    pub pools: Vec<(String, PoolConfig)>,
}

impl Config {
    /// Parses and validates configuration text.
    ///
    /// Checks run in twemproxy's order, so the error returned is the first
    /// one nutcracker would log: YAML and document count, forbidden tokens,
    /// structure, each directive in file order (all pools), each pool in
    /// file order, then duplicate listen addresses and duplicate pool names.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let text = yaml::normalize(text);
        parse(&text).map_err(|e| e.clamp_line(last_line(&text)))
    }

    /// Reads and parses the file at `path` (UTF-8, or UTF-16 with a byte
    /// order mark, as libyaml reads); errors name the file as given
    /// (`nutcracker.yml:7: directive "timeout" is a duplicate`).
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigError::new(ErrorKind::Io, 0, format!("failed to open configuration: {e}")).with_file(path)
        })?;
        Config::from_bytes(&bytes, path)
    }

    /// Parses the bytes of the file at `path` as [`load`](Config::load)
    /// does (same checks, errors naming `path`), for a caller that has read
    /// them already: a proxy reloading its file hashes the very bytes it
    /// checks.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = decode(bytes).map_err(|e| e.with_file(path))?;
        Config::from_yaml(&text).map_err(|e| e.with_file(path))
    }

    /// The pool named `name`, if any.
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

/// The file's text. libyaml reads UTF-8, and UTF-16 when the file starts
/// with a byte order mark; so does this.
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ConfigError> {
    let (units, what): (Vec<u16>, _) = match bytes {
        [0xff, 0xfe, rest @ ..] => (rest.chunks(2).map(|c| u16::from_le_bytes(pad(c))).collect(), "UTF-16LE"),
        [0xfe, 0xff, rest @ ..] => (rest.chunks(2).map(|c| u16::from_be_bytes(pad(c))).collect(), "UTF-16BE"),
        _ => {
            return std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
                let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
                ConfigError::new(ErrorKind::Io, line, "configuration is not valid UTF-8")
            });
        }
    };
    let mut text = String::with_capacity(units.len());
    let invalid = |text: &str| {
        let line = 1 + text.matches('\n').count();
        ConfigError::new(ErrorKind::Io, line, format!("configuration is not valid {what}"))
    };
    for c in char::decode_utf16(units) {
        text.push(c.map_err(|_| invalid(&text))?);
    }
    if bytes.len() % 2 != 0 {
        return Err(invalid(&text));
    }
    Ok(Cow::Owned(text))
}

/// A UTF-16 code unit's two bytes; a lone last byte gets a zero partner
/// (the odd length is reported as an error anyway).
fn pad(chunk: &[u8]) -> [u8; 2] {
    [chunk.first().copied().unwrap_or(0), chunk.get(1).copied().unwrap_or(0)]
}

/// The checks of [`Config::from_yaml`], in twemproxy's order.
fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw = yaml::parse_tree(text)?;

    let builders = raw.iter().map(PoolBuilder::parse).collect::<Result<Vec<_>, _>>()?;
    if builders.is_empty() {
        return Err(ConfigError::new(ErrorKind::Validation, 1, "configuration has no pools"));
    }
    // What the cross-pool checks compare, taken before `finish`
    // consumes the builders: name, its line, listen text, its line.
    let keys: Vec<PoolKeys> = builders
        .iter()
        .map(|b| {
            let (name, line) = b.name();
            let (listen, listen_line) = b.listen_text().unwrap_or_default();
            PoolKeys { name: name.to_owned(), line, listen: listen.to_owned(), listen_line }
        })
        .collect();
    let mut pools = builders.into_iter().map(PoolBuilder::finish).collect::<Result<Vec<_>, _>>()?;
    check_unique_listen(&keys)?;
    check_unique_names(&keys)?;
    pools.sort_by(|(a, _), (b, _)| twemproxy_order(a, b));
    Ok(Config { pools })
}

/// The number of the last line of normalized `text` (a final line break
/// does not start another line). The YAML parser places errors found at
/// the end of the input on the line after it; they are reported on the
/// last line.
fn last_line(text: &str) -> usize {
    let unterminated = !text.is_empty() && !text.ends_with('\n');
    (text.matches('\n').count() + usize::from(unterminated)).max(1)
}

/// The identity of a pool for the checks across pools.
struct PoolKeys {
    name: String,
    line: usize,
    listen: String,
    listen_line: usize,
}

/// "pools 'a' and 'b' have the same listen address": the `listen:` texts
/// are compared as written, as twemproxy does (`127.0.0.1:22121` and
/// `localhost:22121` are different texts; binding the second then fails).
fn check_unique_listen(pools: &[PoolKeys]) -> Result<(), ConfigError> {
    let mut order: Vec<&PoolKeys> = pools.iter().collect();
    // Ties keep file order, so the pool reported second is the later one.
    order.sort_by(|a, b| twemproxy_order(&a.listen, &b.listen).then(a.listen_line.cmp(&b.listen_line)));
    match order.windows(2).find(|w| w[0].listen == w[1].listen) {
        Some(w) => Err(ConfigError::new(
            ErrorKind::Validation,
            w[1].listen_line,
            format!(
                "pools {} and {} have the same listen address {}",
                Quoted(&w[0].name),
                Quoted(&w[1].name),
                Quoted(&w[0].listen)
            ),
        )),
        None => Ok(()),
    }
}

/// "has pools with same name": YAML itself allows a repeated key, so the
/// parser keeps both and this check refuses them.
fn check_unique_names(pools: &[PoolKeys]) -> Result<(), ConfigError> {
    let mut order: Vec<&PoolKeys> = pools.iter().collect();
    order.sort_by(|a, b| twemproxy_order(&a.name, &b.name).then(a.line.cmp(&b.line)));
    match order.windows(2).find(|w| w[0].name == w[1].name) {
        Some(w) => Err(ConfigError::new(
            ErrorKind::Validation,
            w[1].line,
            format!("configuration has pools with same name {} (first on line {})", Quoted(&w[0].name), w[0].line),
        )),
        None => Ok(()),
    }
}
