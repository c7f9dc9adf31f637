//! Request-line framing and memcached's tokenizer.

/// memcached closes a connection whose buffered bytes hold no newline after this
/// many bytes, unless the line starts with `get `/`gets ` (a large multi-get).
pub const MAX_UNTERMINATED_LINE: usize = 2048;

/// memcached tokenizes at most this many tokens per pass (`MAX_TOKENS`, counting
/// the terminal token); the rest of a long line is kept as the "remainder".
pub const MAX_TOKENS: usize = 24;

/// Finds the next request line: returns (line without `\r\n`/`\n`, bytes consumed).
pub(crate) fn find_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = memchr(b'\n', buf)?;
    let mut end = nl;
    // memcached strips a '\r' before the '\n' only if the line has more than one byte.
    if end > 1 && buf[end - 1] == b'\r' {
        end -= 1;
    }
    let mut line = &buf[..end];
    // The C code works on NUL-terminated strings: a NUL ends the line early.
    if let Some(z) = memchr(0, line) {
        line = &line[..z];
    }
    Some((line, nl + 1))
}

pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Tokens of one line, split on single spaces as `tokenize_command` does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS - 1],
    len: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        let mut toks: [&'a [u8]; MAX_TOKENS - 1] = [&[]; MAX_TOKENS - 1];
        let mut len = 0;
        let mut i = 0;
        while i < line.len() {
            while i < line.len() && line[i] == b' ' {
                i += 1;
            }
            if i >= line.len() {
                break;
            }
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            toks[len] = &line[start..i];
            len += 1;
            if len == MAX_TOKENS - 1 {
                // memcached stops here; multi-get re-reads the rest of the line itself.
                break;
            }
        }
        Tokens { toks, len }
    }

    /// memcached's `ntokens`: real tokens plus the terminal token.
    pub(crate) fn ntokens(&self) -> usize {
        self.len + 1
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a [u8]> {
        if i < self.len { Some(self.toks[i]) } else { None }
    }

    /// Token `i`, or an empty slice past the end (C's terminal token).
    pub(crate) fn at(&self, i: usize) -> &'a [u8] {
        self.get(i).unwrap_or(&[])
    }

    pub(crate) fn slice(&self, from: usize) -> &[&'a [u8]] {
        if from < self.len { &self.toks[from..self.len] } else { &[] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(find_line(b"get a\r\nx"), Some((&b"get a"[..], 7)));
        assert_eq!(find_line(b"get a\n"), Some((&b"get a"[..], 6)));
        assert_eq!(find_line(b"\r\n"), Some((&b"\r"[..], 2)));
        assert_eq!(find_line(b"get a"), None);
        assert_eq!(find_line(b"ge\0t a\r\n"), Some((&b"ge"[..], 8)));
    }

    #[test]
    fn tokens() {
        let t = Tokens::new(b"  set  a 0 ");
        assert_eq!(t.len(), 3);
        assert_eq!(t.at(1), b"a");
        assert_eq!(t.at(9), b"");
        let many: Vec<u8> = (0..30).flat_map(|_| b"k ".iter().copied()).collect();
        let t = Tokens::new(&many);
        assert_eq!(t.len(), 23);
    }
}
