//! YAML reading: the three checks twemproxy runs before it reads any value
//! (`conf_pre_validate` in nc_conf.c), then a small tree of pools.
//!
//! twemproxy does not load YAML into a generic tree. It walks libyaml's
//! events and only accepts a narrow subset:
//!
//! 1. **documents**: the text must be well-formed YAML with exactly one
//!    document;
//! 2. **tokens**: no `---`, `...`, `%YAML`, `%TAG`, flow collections,
//!    anchors, aliases or tags anywhere;
//! 3. **structure**: a mapping of pool names, each to a mapping of
//!    `key: scalar` pairs plus exactly one `key:` followed by a block
//!    sequence of scalars (nothing nested deeper).
//!
//! yaml-rust2 is a port of libyaml's scanner and parser, so its tokens and
//! events line up with the ones twemproxy inspects, and each one carries a
//! line number. Each check below mirrors the C function it is named after,
//! including its order, so the first error found is the one nutcracker logs.

use std::borrow::Cow;

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::{Marker, Scanner, TScalarStyle, Token, TokenType};

use crate::error::{ConfigError, ErrorKind, Quoted};
use crate::tabs;

/// twemproxy's depth limit: pool names at depth 1, their keys at depth 2.
const ROOT_DEPTH: usize = 1;
const MAX_DEPTH: usize = ROOT_DEPTH + 1;

/// A scalar with the line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub(crate) text: String,
    pub(crate) line: usize,
}

/// The value of a pool directive: a scalar, or a block sequence of scalars.
///
/// twemproxy applies a sequence element by element through the same
/// handler as a scalar, so `hash:\n - md5` is as valid as `hash: md5`, and
/// `servers: HOST:PORT:W` adds one server (as long as the pool has some
/// other sequence to pass the structure check).
#[derive(Debug, Clone)]
pub(crate) enum Value {
    One(Scalar),
    Seq(Vec<Scalar>),
}

impl Value {
    /// The scalars in the order twemproxy hands them to the handler.
    pub(crate) fn scalars(&self) -> &[Scalar] {
        match self {
            Value::One(s) => std::slice::from_ref(s),
            Value::Seq(items) => items,
        }
    }
}

/// One `key: value` pair of a pool.
#[derive(Debug, Clone)]
pub(crate) struct Directive {
    pub(crate) key: Scalar,
    pub(crate) value: Value,
}

/// A pool as written: its name and its directives in file order.
#[derive(Debug, Clone)]
pub(crate) struct RawPool {
    pub(crate) name: Scalar,
    pub(crate) directives: Vec<Directive>,
}

/// Reads line breaks and the byte order mark as libyaml does.
///
/// libyaml (YAML 1.1) drops a leading byte order mark and breaks lines at
/// `\r\n`, `\r`, `\n`, NEL (U+0085), LS (U+2028) and PS (U+2029); inside
/// scalars it turns them into `\n`. yaml-rust2 (YAML 1.2) breaks lines at
/// `\n` and `\r\n` only, so the other breaks are rewritten to `\n` first:
/// the text then means the same to both, and line numbers stay the same.
///
/// libyaml also skips a byte order mark that starts a later line, counting
/// it as one column; such a mark becomes a space, which indents the rest of
/// the line the same way.
pub(crate) fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains(['\r', '\u{85}', '\u{2028}', '\u{2029}', '\u{feff}']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            c => out.push(c),
        }
    }
    let lines: Vec<String> = out
        .split('\n')
        .map(|line| match line.strip_prefix('\u{feff}') {
            Some(rest) => format!(" {rest}"),
            None => line.to_owned(),
        })
        .collect();
    Cow::Owned(lines.join("\n"))
}

/// Runs the three pre-validation checks and returns the pools as written.
pub(crate) fn parse_tree(src: &str) -> Result<Vec<RawPool>, ConfigError> {
    check_characters(src)?;
    let (src, events) = tabs::events(src).map_err(|e| yaml_error(e.marker().line(), e.info()))?;
    let tokens = scan(&src)?;
    // libyaml refuses these tabs while scanning, before it counts documents.
    tabs::check(&src, &tokens)?;
    validate_document(&events)?;
    validate_tokens(&tokens)?;
    validate_structure(&src, &events)
}

/// libyaml's reader refuses control characters anywhere, comments
/// included: everything but tab, line breaks, the printable ASCII range,
/// NEL and the Unicode ranges YAML calls printable. yaml-rust2 lets some of
/// them through, so they are refused here first.
fn check_characters(src: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            || c >= '\u{10000}'
    };
    match src.char_indices().find(|&(_, c)| !allowed(c)) {
        None => Ok(()),
        Some((at, c)) => Err(ConfigError::new(
            ErrorKind::Yaml,
            1 + src[..at].matches('\n').count(),
            format!("invalid YAML: control characters are not allowed (U+{:04X})", u32::from(c)),
        )),
    }
}

/// `conf_validate_document`: exactly one document (the events were parsed
/// without error, so the YAML is well-formed).
fn validate_document(events: &[(Event, Marker)]) -> Result<(), ConfigError> {
    let mut starts = events.iter().filter(|(e, _)| *e == Event::DocumentStart).map(|(_, m)| m.line());
    let second = starts.clone().nth(1);
    match (starts.by_ref().count(), second) {
        (1, _) => Ok(()),
        (0, _) => Err(ConfigError::new(
            ErrorKind::Yaml,
            1,
            "configuration must contain only 1 document; found 0 documents (the file is empty or holds only comments)",
        )),
        (n, line) => Err(ConfigError::new(
            ErrorKind::Yaml,
            line.unwrap_or(1).max(1),
            format!("configuration must contain only 1 document; found {n} documents"),
        )),
    }
}

fn yaml_error(line: usize, info: &str) -> ConfigError {
    ConfigError::new(ErrorKind::Yaml, line.max(1), format!("invalid YAML: {info}"))
}

/// Every token of the text, for the token and tab checks.
fn scan(src: &str) -> Result<Vec<Token>, ConfigError> {
    let mut scanner = Scanner::new(src.chars());
    let mut tokens = Vec::new();
    loop {
        match scanner.next_token() {
            Ok(Some(Token(_, TokenType::StreamEnd)) | None) => return Ok(tokens),
            Ok(Some(token)) => tokens.push(token),
            // The parser read the same text without error; a scanner error
            // here would be an inconsistency, reported rather than trusted.
            Err(e) => return Err(yaml_error(e.marker().line(), e.info())),
        }
    }
}

/// `conf_validate_tokens`: rejects every token outside twemproxy's subset.
fn validate_tokens(tokens: &[Token]) -> Result<(), ConfigError> {
    for token in tokens {
        let what = match &token.1 {
            TokenType::VersionDirective(..) => "directive \"%YAML\"".to_owned(),
            TokenType::TagDirective(..) => "directive \"%TAG\"".to_owned(),
            TokenType::DocumentStart => "document start \"---\"".to_owned(),
            TokenType::DocumentEnd => "document end \"...\"".to_owned(),
            TokenType::FlowSequenceStart => "flow sequence \"[\"".to_owned(),
            TokenType::FlowSequenceEnd => "flow sequence end \"]\"".to_owned(),
            TokenType::FlowMappingStart => "flow mapping \"{\"".to_owned(),
            TokenType::FlowMappingEnd => "flow mapping end \"}\"".to_owned(),
            TokenType::FlowEntry => "flow entry \",\"".to_owned(),
            TokenType::Alias(name) => format!("alias {}", Quoted(&format!("*{name}"))),
            TokenType::Anchor(name) => format!("anchor {}", Quoted(&format!("&{name}"))),
            TokenType::Tag(handle, suffix) => format!("tag {}", Quoted(&format!("{handle}{suffix}"))),
            TokenType::StreamStart(_)
            | TokenType::StreamEnd
            | TokenType::BlockSequenceStart
            | TokenType::BlockMappingStart
            | TokenType::BlockEnd
            | TokenType::BlockEntry
            | TokenType::Key
            | TokenType::Value
            | TokenType::Scalar(..) => continue,
        };
        return Err(ConfigError::new(
            ErrorKind::Token,
            token.0.line().max(1),
            format!("{what} is not allowed (twemproxy rejects it)"),
        ));
    }
    Ok(())
}

/// `conf_validate_structure`, building the pool tree on the way.
///
/// The counters follow the C code: `count[d]` is the number of scalars
/// seen at depth `d` since the last reset, which tells a key from its value
/// and a pool name from a stray scalar.
fn validate_structure(src: &str, events: &[(Event, Marker)]) -> Result<Vec<RawPool>, ConfigError> {
    let lines: Vec<&str> = src.split('\n').collect();
    let mut prev_line = 1usize;
    let mut depth = 0usize;
    let mut count = [0usize; MAX_DEPTH + 1];
    let mut seq = false;
    let mut tree = TreeBuilder::default();

    for (event, mark) in events {
        let line = match event {
            Event::Scalar(text, TScalarStyle::Plain, ..) if text.is_empty() => {
                omitted_value_line(&lines, mark, prev_line)
            }
            _ => mark.line().max(1),
        };
        prev_line = line;
        let fail = |why: String| Err(ConfigError::new(ErrorKind::Structure, line, why));
        match event {
            Event::MappingStart(..) => {
                if depth == ROOT_DEPTH && count[depth] != 1 {
                    return fail(format!("configuration has more than one \"key:value\" at depth {depth}"));
                } else if depth >= MAX_DEPTH {
                    return fail(format!(
                        "configuration has a depth greater than {MAX_DEPTH}: a value inside a pool must be a \
                         scalar or a list of scalars"
                    ));
                }
                depth += 1;
            }
            Event::MappingEnd => {
                if depth == MAX_DEPTH {
                    if seq {
                        seq = false;
                    } else if !tree.current_pool_discovers() {
                        let (pool, pool_line) = tree.current_pool();
                        return Err(ConfigError::new(
                            ErrorKind::Structure,
                            pool_line,
                            format!(
                                "pool {} has no \"servers:\" list (missing sequence directive at depth \
                                 {MAX_DEPTH})",
                                Quoted(pool)
                            ),
                        ));
                    }
                }
                depth = depth.saturating_sub(1);
                count[depth] = 0;
            }
            Event::SequenceStart(..) => {
                if seq {
                    let (pool, _) = tree.current_pool();
                    return fail(format!("pool {} has more than one sequence directive", Quoted(pool)));
                } else if depth != MAX_DEPTH {
                    return fail(format!("configuration has sequence at depth {depth} instead of {MAX_DEPTH}"));
                } else if count[depth] != 1 {
                    return fail(format!("configuration has invalid \"key:value\" at depth {depth}"));
                }
                seq = true;
                tree.sequence_start(line)?;
            }
            Event::SequenceEnd => {
                count[depth] = 0;
                tree.sequence_end(line)?;
            }
            Event::Scalar(text, ..) => {
                if depth == 0 {
                    return fail(format!(
                        "configuration has invalid empty \"key:\" at depth {depth}: the top level must be a \
                         mapping of pool names"
                    ));
                } else if depth == ROOT_DEPTH && count[depth] != 0 {
                    return fail(format!(
                        "configuration has invalid mapping \"key:\" at depth {depth}: a pool name must be \
                         followed by the pool's keys"
                    ));
                } else if depth == MAX_DEPTH && count[depth] == 2 {
                    // A complete "key: value" was seen: start the next pair.
                    count[depth] = 0;
                }
                count[depth] += 1;
                tree.scalar(depth, text, line)?;
            }
            // Aliases were refused by the token check already.
            Event::Alias(_) => return fail("alias is not allowed (twemproxy rejects it)".to_owned()),
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(tree.pools)
}

/// The line an omitted value (`timeout:` with nothing after it, or a bare
/// `-`) belongs to.
///
/// The parser places the empty scalar at the token that follows it, which
/// may be lines later; the value was omitted on the last line with content
/// before that token, and not before the previous event.
fn omitted_value_line(lines: &[&str], mark: &Marker, prev_line: usize) -> usize {
    let line = mark.line().max(1);
    if line <= prev_line {
        return line;
    }
    // Text before the marker on its line, or a marker on the `:` of an
    // empty key, means the empty scalar is on the marker's own line.
    let mut chars = lines.get(line - 1).map_or("", |l| l).chars();
    if chars.by_ref().take(mark.col()).any(|c| !c.is_whitespace()) || chars.next() == Some(':') {
        return line;
    }
    let mut l = line - 1;
    while l > prev_line {
        let text = lines.get(l - 1).map_or("", |t| t.trim());
        if !text.is_empty() && !text.starts_with('#') {
            return l;
        }
        l -= 1;
    }
    prev_line.max(1)
}

/// Collects pools and directives while the structure check runs.
///
/// Once the structure check has passed, every event arrives where the
/// builder expects it; the errors below guard against a parser surprise
/// instead of panicking on it.
#[derive(Default)]
struct TreeBuilder {
    pools: Vec<RawPool>,
    key: Option<Scalar>,
    items: Option<Vec<Scalar>>,
}

impl TreeBuilder {
    fn current_pool(&self) -> (&str, usize) {
        self.pools.last().map_or(("", 1), |p| (p.name.text.as_str(), p.name.line))
    }

    /// Whether the current pool finds its servers (`discovery:`, a memshard
    /// extension): it then needs no `servers:` list, the one sequence
    /// twemproxy requires of every pool.
    fn current_pool_discovers(&self) -> bool {
        self.pools.last().is_some_and(|p| p.directives.iter().any(|d| d.key.text == "discovery"))
    }

    fn scalar(&mut self, depth: usize, text: &str, line: usize) -> Result<(), ConfigError> {
        let scalar = Scalar { text: text.to_owned(), line };
        if depth == ROOT_DEPTH {
            self.pools.push(RawPool { name: scalar, directives: Vec::new() });
            return Ok(());
        }
        if let Some(items) = self.items.as_mut() {
            items.push(scalar);
            return Ok(());
        }
        match self.key.take() {
            None => self.key = Some(scalar),
            Some(key) => self.push(Directive { key, value: Value::One(scalar) }, line)?,
        }
        Ok(())
    }

    fn sequence_start(&mut self, line: usize) -> Result<(), ConfigError> {
        if self.key.is_none() || self.items.is_some() {
            return Err(unexpected(line));
        }
        self.items = Some(Vec::new());
        Ok(())
    }

    fn sequence_end(&mut self, line: usize) -> Result<(), ConfigError> {
        match (self.key.take(), self.items.take()) {
            (Some(key), Some(items)) => self.push(Directive { key, value: Value::Seq(items) }, line),
            _ => Err(unexpected(line)),
        }
    }

    fn push(&mut self, directive: Directive, line: usize) -> Result<(), ConfigError> {
        match self.pools.last_mut() {
            Some(pool) => {
                pool.directives.push(directive);
                Ok(())
            }
            None => Err(unexpected(line)),
        }
    }
}

fn unexpected(line: usize) -> ConfigError {
    ConfigError::new(ErrorKind::Structure, line, "configuration has an unexpected YAML structure")
}
