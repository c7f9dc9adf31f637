//! The `.mct` ("memcached conformance table") text format.
//!
//! A line-oriented format chosen so that a case reads like a transcript and a
//! new case is a few lines of copy-paste:
//!
//! ```text
//! # Comment lines directly above a case belong to it.
//! case get.hit
//!   send "set k 0 0 5\r\nhello\r\n"
//!   send "get k\r\n"
//!   expect "STORED\r\n"
//!   expect "VALUE k 0 5\r\n"
//!   expect "hello\r\n"
//!   expect "END\r\n"
//! ```
//!
//! Directives inside a case (leading whitespace is ignored):
//!
//! * `send EXPR` — one write; `send-bytewise EXPR` — one write per byte;
//!   `sleep MS` — wait; `pause MS` — pause between writes (default 5).
//! * `normalize RULE...` — see [`Rule`] for the names.
//! * `expect EXPR` — reply bytes, concatenated over all `expect` lines;
//!   `expect ""` records an empty reply; no `expect` at all means "not yet
//!   recorded". `closes` — the server hangs up after the reply.
//! * `memshard-expect EXPR`, `memshard-closes`, `why TEXT` — a deliberate
//!   memshard deviation and its reason.
//! * `proxy-expect EXPR`, `proxy-closes`, `proxy-why TEXT` — where memshard
//!   proxy deliberately answers otherwise than memshard server, and why.
//!
//! `EXPR` is a sequence of `"escaped string"` (escapes as in
//! [`crate::escape`]), `"unit"*COUNT` repetitions, and `$cas` (the last CAS
//! unique the server sent; requests only).
//!
//! A comment block at the top of the file followed by a blank line is the
//! file header; comments after the last case are the footer. The recorder
//! rewrites files through [`TableFile::render`], which keeps both.

use super::{Case, DEFAULT_PAUSE_MS, Expect, Piece, Rule, Step};
use crate::escape::{escape, unescape};
use thiserror::Error;

/// A syntax error in a table file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file name as given to [`TableFile::parse`].
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One parsed table file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// The file name, for error messages.
    pub name: String,
    /// Header comment lines (without `# `).
    pub header: Vec<String>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
    /// Comment lines after the last case.
    pub footer: Vec<String>,
}

/// Replies longer than this many identical bytes are written as repetitions.
const RUN_THRESHOLD: usize = 32;

impl TableFile {
    /// Parses the text of one table file.
    pub fn parse(name: &str, text: &str) -> Result<Self, ParseError> {
        let mut file = TableFile { name: name.to_string(), header: Vec::new(), cases: Vec::new(), footer: Vec::new() };
        let mut comments: Vec<String> = Vec::new();
        let mut current: Option<Case> = None;
        let mut header_open = true;
        for (idx, raw) in text.lines().enumerate() {
            let err = |message: String| ParseError { file: name.to_string(), line: idx + 1, message };
            let line = raw.trim();
            if line.is_empty() {
                if header_open && current.is_none() && !comments.is_empty() {
                    file.header.append(&mut comments);
                }
                header_open = header_open && current.is_none() && file.header.is_empty();
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                comments.push(comment.strip_prefix(' ').unwrap_or(comment).to_string());
                continue;
            }
            header_open = false;
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            let rest = rest.trim();
            if word == "case" {
                if rest.is_empty() || rest.contains(char::is_whitespace) {
                    return Err(err("case needs exactly one name".into()));
                }
                if let Some(done) = current.take() {
                    file.cases.push(finish(done).map_err(err)?);
                }
                let mut case = Case::new(rest);
                case.comments = std::mem::take(&mut comments);
                current = Some(case);
                continue;
            }
            let case = current.as_mut().ok_or_else(|| err(format!("`{word}` outside of a case")))?;
            if !comments.is_empty() {
                // Comments in the middle of a case would be lost on rewrite.
                return Err(err("comments must precede `case`".into()));
            }
            apply(case, word, rest).map_err(err)?;
        }
        if let Some(done) = current.take() {
            let last = text.lines().count();
            file.cases.push(finish(done).map_err(|message| ParseError {
                file: name.to_string(),
                line: last,
                message,
            })?);
        }
        file.footer = comments;
        Ok(file)
    }

    /// Renders the file back to text; `parse(render(f)) == f`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            push_comment(&mut out, line);
        }
        if !self.header.is_empty() {
            out.push('\n');
        }
        for (i, case) in self.cases.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            render_case(case, &mut out);
        }
        if !self.footer.is_empty() {
            out.push('\n');
            for line in &self.footer {
                push_comment(&mut out, line);
            }
        }
        out
    }
}

fn push_comment(out: &mut String, line: &str) {
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

fn finish(case: Case) -> Result<Case, String> {
    if case.steps.is_empty() {
        return Err(format!("case {} sends nothing", case.name));
    }
    if case.memshard.is_some() && case.why.is_none() {
        return Err(format!("case {} deviates for memshard but has no `why`", case.name));
    }
    if case.proxy.is_some() && case.proxy_why.is_none() {
        return Err(format!("case {} deviates for the proxy but has no `proxy-why`", case.name));
    }
    Ok(case)
}

fn apply(case: &mut Case, word: &str, rest: &str) -> Result<(), String> {
    match word {
        "pause" => case.pause_ms = parse_ms(rest)?,
        "sleep" => case.steps.push(Step::SleepMs(parse_ms(rest)?)),
        "send" => case.steps.push(Step::Send(parse_expr(rest, true)?)),
        "send-bytewise" => case.steps.push(Step::SendBytewise(parse_expr(rest, true)?)),
        "normalize" => {
            for name in rest.split_whitespace() {
                let rule = Rule::from_name(name)
                    .ok_or_else(|| format!("unknown normalize rule {name:?}; known: {}", Rule::NAMES))?;
                if !case.normalize.contains(&rule) {
                    case.normalize.push(rule);
                }
            }
        }
        "expect" => append_reply(case.expect.get_or_insert_with(Expect::default), rest)?,
        "closes" => case.expect.get_or_insert_with(Expect::default).closes = true,
        "memshard-expect" => {
            append_reply(case.memshard.get_or_insert_with(Expect::default), rest)?;
        }
        "memshard-closes" => case.memshard.get_or_insert_with(Expect::default).closes = true,
        "proxy-expect" => append_reply(case.proxy.get_or_insert_with(Expect::default), rest)?,
        "proxy-closes" => case.proxy.get_or_insert_with(Expect::default).closes = true,
        "proxy-why" => {
            if rest.is_empty() {
                return Err("`proxy-why` needs a reason".into());
            }
            case.proxy_why = Some(rest.to_string());
        }
        "why" => {
            if rest.is_empty() {
                return Err("`why` needs a reason".into());
            }
            case.why = Some(rest.to_string());
        }
        other => return Err(format!("unknown directive `{other}`")),
    }
    Ok(())
}

fn append_reply(expect: &mut Expect, rest: &str) -> Result<(), String> {
    let pieces = parse_expr(rest, false)?;
    super::render_pieces(&pieces, b"", &mut expect.reply);
    Ok(())
}

fn parse_ms(rest: &str) -> Result<u64, String> {
    rest.parse().map_err(|_| format!("expected milliseconds, got {rest:?}"))
}

/// Parses `"a\r\n" "x"*10 $cas` into pieces.
fn parse_expr(text: &str, allow_cas: bool) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err("expected at least one \"string\"".into());
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("$cas") {
            if !allow_cas {
                return Err("$cas is only allowed in requests".into());
            }
            pieces.push(Piece::LastCas);
            rest = after.trim_start();
            continue;
        }
        let body = rest.strip_prefix('"').ok_or_else(|| format!("expected \" or $cas at {rest:?}"))?;
        let end = closing_quote(body).ok_or("unterminated string")?;
        let bytes = unescape(&body[..end]).map_err(|e| e.to_string())?;
        rest = &body[end + 1..];
        if let Some(after) = rest.strip_prefix('*') {
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let count = after[..digits].parse().map_err(|_| "`*` must be followed by a count".to_string())?;
            pieces.push(Piece::Repeat { bytes, count });
            rest = &after[digits..];
        } else {
            pieces.push(Piece::Bytes(bytes));
        }
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(format!("expected whitespace after a string at {rest:?}"));
        }
        rest = rest.trim_start();
    }
    Ok(pieces)
}

/// Index of the first unescaped `"` in `body`.
fn closing_quote(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn render_case(case: &Case, out: &mut String) {
    for line in &case.comments {
        push_comment(out, line);
    }
    out.push_str(&format!("case {}\n", case.name));
    if case.pause_ms != DEFAULT_PAUSE_MS {
        out.push_str(&format!("  pause {}\n", case.pause_ms));
    }
    for step in &case.steps {
        match step {
            Step::Send(p) => out.push_str(&format!("  send {}\n", render_expr(p))),
            Step::SendBytewise(p) => {
                out.push_str(&format!("  send-bytewise {}\n", render_expr(p)));
            }
            Step::SleepMs(ms) => out.push_str(&format!("  sleep {ms}\n")),
        }
    }
    if !case.normalize.is_empty() {
        let names: Vec<&str> = case.normalize.iter().map(|r| r.name()).collect();
        out.push_str(&format!("  normalize {}\n", names.join(" ")));
    }
    if let Some(expect) = &case.expect {
        render_expect("expect", "closes", expect, out);
    }
    if let Some(expect) = &case.memshard {
        render_expect("memshard-expect", "memshard-closes", expect, out);
    }
    if let Some(why) = &case.why {
        out.push_str(&format!("  why {why}\n"));
    }
    if let Some(expect) = &case.proxy {
        render_expect("proxy-expect", "proxy-closes", expect, out);
    }
    if let Some(why) = &case.proxy_why {
        out.push_str(&format!("  proxy-why {why}\n"));
    }
}

fn render_expr(pieces: &[Piece]) -> String {
    let parts: Vec<String> = pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => format!("\"{}\"", escape(b)),
            Piece::Repeat { bytes, count } => format!("\"{}\"*{count}", escape(bytes)),
            Piece::LastCas => "$cas".to_string(),
        })
        .collect();
    parts.join(" ")
}

/// One `expect` line per reply line, so a diff of a re-recorded table shows
/// exactly which reply line changed.
fn render_expect(word: &str, closes_word: &str, expect: &Expect, out: &mut String) {
    if expect.reply.is_empty() {
        out.push_str(&format!("  {word} \"\"\n"));
    }
    for line in expect.reply.split_inclusive(|&b| b == b'\n') {
        out.push_str(&format!("  {word} {}\n", render_expr(&compress_runs(line))));
    }
    if expect.closes {
        out.push_str(&format!("  {closes_word}\n"));
    }
}

/// Splits `bytes` into literal pieces and repetitions of long single-byte runs.
fn compress_runs(bytes: &[u8]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let run = bytes[i..].iter().take_while(|&&x| x == b).count();
        if run >= RUN_THRESHOLD {
            if !literal.is_empty() {
                pieces.push(Piece::Bytes(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Repeat { bytes: vec![b], count: run });
        } else {
            literal.extend_from_slice(&bytes[i..i + run]);
        }
        i += run;
    }
    if !literal.is_empty() {
        pieces.push(Piece::Bytes(literal));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# header line
#
# more header

# about the case
case get.hit
  pause 2
  send "set k 0 0 5\r\nhello\r\n"
  send-bytewise "get k\r\n"
  sleep 10
  send "cas k 0 0 1 " $cas "\r\nx\r\n" "a"*40
  normalize cas version
  expect "STORED\r\n"
  expect "VALUE k 0 5\r\n" "b"*33 "\r\n"
  closes
  memshard-expect "ERROR\r\n"
  why because

case get.miss
  send "get nope\r\n"
  expect ""

# footer
"#;

    #[test]
    fn parses_and_round_trips() {
        let file = TableFile::parse("x.mct", SAMPLE).unwrap();
        assert_eq!(file.header, vec!["header line", "", "more header"]);
        assert_eq!(file.footer, vec!["footer"]);
        assert_eq!(file.cases.len(), 2);
        let hit = &file.cases[0];
        assert_eq!(hit.comments, vec!["about the case"]);
        assert_eq!(hit.pause_ms, 2);
        assert_eq!(hit.steps.len(), 4);
        assert_eq!(hit.normalize, vec![Rule::Cas, Rule::Version]);
        let expect = hit.expect.as_ref().unwrap();
        assert!(expect.closes);
        assert_eq!(expect.reply.len(), 8 + 13 + 33 + 2);
        assert_eq!(hit.why.as_deref(), Some("because"));
        assert_eq!(file.cases[1].expect.as_ref().unwrap().reply, b"");
        let again = TableFile::parse("x.mct", &file.render()).unwrap();
        assert_eq!(again, file);
    }

    #[test]
    fn reports_errors_with_line_numbers() {
        let e = TableFile::parse("y.mct", "case a\n  send \"x\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = TableFile::parse("y.mct", "case a\n  expect $cas\n").unwrap_err();
        assert!(e.message.contains("$cas"));
        let e = TableFile::parse("y.mct", "case a\n  send \"x\"\n  memshard-expect \"\"\n").unwrap_err();
        assert!(e.message.contains("why"));
        let e = TableFile::parse("y.mct", "case a\n  frobnicate\n").unwrap_err();
        assert!(e.message.contains("frobnicate"));
    }

    #[test]
    fn unrecorded_cases_have_no_expectation() {
        let file = TableFile::parse("z.mct", "case a\n  send \"mn\\r\\n\"\n").unwrap();
        assert_eq!(file.cases[0].expect, None);
    }
}
