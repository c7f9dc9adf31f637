//! The one error type of this crate: where (file and line) and why.

use std::fmt;
use std::path::{Path, PathBuf};

/// Which stage of loading refused the file.
///
/// The stages run in twemproxy's order (`conf_create` in nc_conf.c), so the
/// first error reported is the one nutcracker would log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read, or is neither UTF-8 nor UTF-16 with a
    /// byte order mark (the encodings libyaml reads).
    Io,
    /// Not well-formed YAML, or not exactly one document
    /// (`conf_validate_document`).
    Yaml,
    /// Well-formed YAML that uses a construct twemproxy forbids: `---`,
    /// `...`, `%YAML`/`%TAG`, flow collections, anchors, aliases, tags
    /// (`conf_validate_tokens`).
    Token,
    /// The tree does not have the shape `pool: {key: value, servers: [..]}`
    /// (`conf_validate_structure`).
    Structure,
    /// A directive is unknown, duplicated, empty or has a bad value
    /// (`conf_parse` and the `conf_set_*` handlers).
    Directive,
    /// A pool or the set of pools is inconsistent: missing `listen`, no
    /// servers, duplicate server names, listen addresses or pool names
    /// (`conf_post_validate`).
    Validation,
    /// A redis pool (`redis: true`, `redis_db`): valid for nutcracker,
    /// refused by memshard, which proxies memcached only. memshard's other
    /// deliberate refusals (see the crate documentation) keep the kind of
    /// the check that makes them.
    Unsupported,
}

/// A configuration error with the 1-based line it concerns and a reason.
///
/// Displays as `FILE:LINE: reason` once a file name is attached (as
/// [`crate::Config::load`] does), and as `line LINE: reason` for text given to
/// [`crate::Config::from_yaml`]. Reasons reuse twemproxy's wording, e.g.
/// `directive "timeout" is a duplicate`. The line is 0 only for
/// [`ErrorKind::Io`] errors that concern the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Shown(self))]
pub struct ConfigError {
    file: Option<PathBuf>,
    line: usize,
    kind: ErrorKind,
    reason: String,
}

impl ConfigError {
    /// An error at `line` (1-based) of the configuration text.
    pub fn new(kind: ErrorKind, line: usize, reason: impl Into<String>) -> Self {
        Self { file: None, line, kind, reason: reason.into() }
    }

    /// Attaches the file name shown in front of the line number.
    #[must_use]
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// The file the error is in, when the configuration came from a file.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The 1-based line the error concerns (0: the whole file, I/O only).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Moves a line past the end of the text back onto its last line.
    pub(crate) fn clamp_line(mut self, last_line: usize) -> Self {
        if self.line > last_line {
            self.line = last_line;
        }
        self
    }

    /// The stage that refused the configuration.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reason alone, without file and line.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Display helper: thiserror formats the struct through this so the file
/// and line prefix can depend on what is known.
struct Shown<'a>(&'a ConfigError);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        match (&e.file, e.line) {
            (Some(file), 0) => write!(f, "{}: {}", file.display(), e.reason),
            (Some(file), line) => write!(f, "{}:{}: {}", file.display(), line, e.reason),
            (None, 0) => f.write_str(&e.reason),
            (None, line) => write!(f, "line {}: {}", line, e.reason),
        }
    }
}

/// Shorthand for a directive error, the most common kind.
pub(crate) fn directive(line: usize, key: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError::new(ErrorKind::Directive, line, format!("directive {} {why}", Quoted(key)))
}

/// Shows configuration text in a message: in double quotes, with control
/// characters, quotes and backslashes escaped, so a value holding a newline
/// (a `|` block) stays on one line.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_debug())
    }
}
