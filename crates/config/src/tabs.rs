//! Tabs, where libyaml (YAML 1.1, which twemproxy uses) and yaml-rust2
//! (YAML 1.2) disagree.
//!
//! libyaml skips a tab between tokens only where a simple key cannot start
//! (`yaml_parser_scan_to_next_token`). In block context that means:
//!
//! - after the `:` of a simple key a tab is fine (`timeout:\t400`), which
//!   yaml-rust2 refuses; such a tab is rewritten to a space before parsing;
//! - after a `-` entry indicator, and in the blanks that start a line
//!   (tab-only lines included), a tab is "a character that cannot start
//!   any token", which yaml-rust2 lets through; those are refused here.
//!
//! Tabs inside scalars are content and stay as they are.

use std::borrow::Cow;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle, Token, TokenType};

use crate::error::{ConfigError, ErrorKind};

/// yaml-rust2's message for `key:<TAB>value`.
const COLON_TAB: &str = "':' must be followed by a valid YAML whitespace";

/// Parsed events with the marker of each.
pub(crate) type Events = Vec<(Event, Marker)>;

/// Parses every event of `src`. Where yaml-rust2 refuses a tab right
/// after a simple key's `:`, which libyaml accepts, that tab becomes a
/// space and the text is parsed again; the text actually parsed is
/// returned with its events.
pub(crate) fn events(src: &str) -> Result<(Cow<'_, str>, Events), ScanError> {
    let mut text = Cow::Borrowed(src);
    // Each round replaces one tab, so the loop ends.
    loop {
        let err = match parse_all(&text) {
            Ok(events) => return Ok((text, events)),
            Err(e) => e,
        };
        match (err.info() == COLON_TAB).then(|| tab_after_colon(&text, err.marker())).flatten() {
            Some(at) => text.to_mut().replace_range(at..at + 1, " "),
            None => return Err(err),
        }
    }
}

fn parse_all(text: &str) -> Result<Events, ScanError> {
    let mut parser = Parser::new_from_str(text);
    let mut events = Vec::new();
    loop {
        let (event, mark) = parser.next_token()?;
        if event == Event::StreamEnd {
            return Ok(events);
        }
        events.push((event, mark));
    }
}

/// The byte offset of the tab between a `:` and `mark`, when the blanks
/// before `mark` on its line follow a `:` that is not the first thing on
/// the line (a `:` opening a line is a complex value, where libyaml refuses
/// the tab too).
fn tab_after_colon(text: &str, mark: &Marker) -> Option<usize> {
    let line_start = line_offsets(text).nth(mark.line().checked_sub(1)?)?;
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let prefix_end = line.char_indices().nth(mark.col()).map_or(line.len(), |(i, _)| i);
    let prefix = &line[..prefix_end];
    let colon = prefix.trim_end_matches([' ', '\t']).strip_suffix(':')?;
    if colon.trim().is_empty() || !prefix[colon.len() + 1..].starts_with('\t') {
        return None;
    }
    Some(line_start + colon.len() + 1)
}

/// The byte offset where each line starts.
fn line_offsets(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1))
}

/// Refuses the tabs libyaml refuses and yaml-rust2 accepts: after a `-`
/// entry indicator, and at the start of a line that is not inside a
/// scalar.
pub(crate) fn check(text: &str, tokens: &[Token]) -> Result<(), ConfigError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let refuse = |line: usize, what: &str| {
        Err(ConfigError::new(
            ErrorKind::Yaml,
            line,
            format!("invalid YAML: a tab {what} cannot start any token (twemproxy's libyaml refuses it)"),
        ))
    };
    let mut inside = vec![false; lines.len() + 1];
    for (i, Token(mark, kind)) in tokens.iter().enumerate() {
        let next_line = tokens[i + 1..].iter().map(|t| t.0.line()).find(|&l| l >= mark.line()).unwrap_or(lines.len());
        match kind {
            TokenType::BlockEntry
                if tab_after_dash(lines.get(mark.line().saturating_sub(1)).map_or("", |l| l), mark) =>
            {
                return refuse(mark.line(), "after \"-\"");
            }
            TokenType::Scalar(style, _) => {
                let last = scalar_last_line(&lines, mark, *style, next_line);
                for flag in inside.iter_mut().take(last + 1).skip(mark.line() + 1) {
                    *flag = true;
                }
            }
            _ => {}
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let lead = line.chars().take_while(|c| *c == ' ' || *c == '\t');
        if !inside[i + 1] && lead.clone().any(|c| c == '\t') {
            return refuse(i + 1, "at the start of a line");
        }
    }
    Ok(())
}

/// Whether blanks after the `-` of a block entry hold a tab. yaml-rust2
/// places the entry's marker after those blanks, so the `-` is found by
/// walking back from it.
fn tab_after_dash(line: &str, mark: &Marker) -> bool {
    let prefix: String = line.chars().take(mark.col()).collect();
    let Some(before_dash) = prefix.trim_end_matches([' ', '\t']).strip_suffix('-') else {
        return false;
    };
    let after_dash = line.chars().skip(before_dash.chars().count() + 1);
    after_dash.take_while(|c| matches!(c, ' ' | '\t')).any(|c| c == '\t')
}

/// The last line a scalar token starting at `mark` spans, given the line
/// of the token after it.
fn scalar_last_line(lines: &[&str], mark: &Marker, style: TScalarStyle, next_line: usize) -> usize {
    let first = mark.line();
    match style {
        // A plain scalar continues on lines with content; blank and
        // comment lines after it belong to no token.
        TScalarStyle::Plain => (first..next_line.max(first))
            .rev()
            .find(|&l| {
                lines.get(l.saturating_sub(1)).is_some_and(|t| !t.trim().is_empty() && !t.trim_start().starts_with('#'))
            })
            .unwrap_or(first),
        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => closing_quote_line(lines, mark, style),
        // A block scalar owns every line up to the next token.
        TScalarStyle::Literal | TScalarStyle::Folded => next_line.saturating_sub(1).max(first),
    }
}

/// The line of the quote closing a quoted scalar that opens at `mark`.
fn closing_quote_line(lines: &[&str], mark: &Marker, style: TScalarStyle) -> usize {
    let quote = if style == TScalarStyle::SingleQuoted { '\'' } else { '"' };
    let mut skip = mark.col() + 1;
    for (l, line) in lines.iter().enumerate().skip(mark.line().saturating_sub(1)) {
        let mut chars = line.chars().skip(skip).peekable();
        while let Some(c) = chars.next() {
            if quote == '"' && c == '\\' {
                chars.next();
            } else if c == quote {
                // '' is an escaped quote inside a single-quoted scalar.
                if quote == '\'' && chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    return l + 1;
                }
            }
        }
        skip = 0;
    }
    lines.len()
}
