//! Step 1: the scanner. It blanks the newlines that do not end a statement
//! and finds what pest would report badly (unterminated strings, unmatched
//! closers, input that stops mid-statement).

use super::PResult;
use crate::diagnostics::SyntaxError;
use crate::eval::format::string_end;
use crate::span::{SourceId, Span};

/// The source with non-terminating newlines blanked, plus what the scanner
/// learned about it.
pub(super) struct Scanned {
    pub(super) text: String,
    /// Open brackets at the end of input, innermost last: (bracket, offset).
    pub(super) open: Vec<(u8, usize)>,
    /// The input stops where a newline would not end the statement (open
    /// bracket, trailing operator or comma): more lines could complete it.
    pub(super) continues: bool,
    /// An unterminated string or an unmatched closing bracket.
    pub(super) error: Option<SyntaxError>,
    /// Where the first string that spans lines starts: when the parse fails
    /// after it, a missing `"` there is the likely cause.
    pub(super) multiline_string: Option<usize>,
}

struct Scanner<'s> {
    bytes: &'s [u8],
    out: Vec<u8>,
    open: Vec<(u8, usize)>,
    /// The last token lets the statement go on past a newline.
    joiner: bool,
    /// The last significant byte was `.` (so a following word is a field name).
    after_dot: bool,
    multiline_string: Option<usize>,
    src: SourceId,
}

pub(super) fn scan(source: &str, src: SourceId) -> Scanned {
    let mut s = Scanner {
        bytes: source.as_bytes(),
        out: source.as_bytes().to_vec(),
        open: Vec::new(),
        joiner: false,
        after_dot: false,
        multiline_string: None,
        src,
    };
    let error = s.run().err();
    let continues = match &error {
        Some(err) => err.incomplete,
        None => s.joiner || !s.open.is_empty(),
    };
    // Only ASCII `\n` bytes were replaced by ASCII `\r`: still UTF-8.
    let text = String::from_utf8(s.out).unwrap_or_else(|_| source.to_string());
    Scanned {
        text,
        open: s.open,
        continues,
        error,
        multiline_string: s.multiline_string,
    }
}

impl Scanner<'_> {
    fn run(&mut self) -> PResult<()> {
        let mut i = 0;
        while let Some(&b) = self.bytes.get(i) {
            i = match b {
                b'\n' => self.newline(i),
                b' ' | b'\t' | b'\r' => i + 1,
                b'#' => self.skip_until_newline(i),
                b'"' => self.string(i)?,
                b'(' | b'[' | b'{' => {
                    self.open.push((b, i));
                    self.token(false, i + 1)
                }
                b')' | b']' | b'}' => self.close(b, i)?,
                b',' => self.token(true, i + 1),
                b'.' => {
                    self.joiner = false;
                    self.after_dot = true;
                    i + 1
                }
                _ if b.is_ascii_alphabetic() || b == b'_' => self.word(i),
                _ if is_op_byte(b) => self.operator(i),
                _ => self.token(false, i + 1),
            };
        }
        Ok(())
    }

    fn token(&mut self, joiner: bool, next: usize) -> usize {
        self.joiner = joiner;
        self.after_dot = false;
        next
    }

    fn newline(&mut self, i: usize) -> usize {
        let in_parens = matches!(self.open.last(), Some((b'(' | b'[', _)));
        if self.joiner || in_parens {
            // `\r` rather than a space: it is whitespace to the grammar, and
            // it still ends a `#` comment, which must not swallow the next line.
            self.out[i] = b'\r';
        }
        i + 1
    }

    fn skip_until_newline(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && self.bytes[i] != b'\n' {
            i += 1;
        }
        i
    }

    /// `and`, `or`, `not`, `in` at the end of a line continue the statement,
    /// unless they are a field name (`x.in`).
    fn word(&mut self, start: usize) -> usize {
        let mut end = start;
        while end < self.bytes.len()
            && (self.bytes[end].is_ascii_alphanumeric() || self.bytes[end] == b'_')
        {
            end += 1;
        }
        let word = &self.bytes[start..end];
        let joiner = !self.after_dot && matches!(word, b"and" | b"or" | b"not" | b"in");
        self.token(joiner, end)
    }

    fn operator(&mut self, start: usize) -> usize {
        let mut end = start;
        while end < self.bytes.len() && is_op_byte(self.bytes[end]) {
            end += 1;
        }
        let binary = matches!(
            &self.bytes[start..end],
            b"+" | b"-"
                | b"*"
                | b"/"
                | b"//"
                | b"%"
                | b"**"
                | b"=="
                | b"!="
                | b"<"
                | b"<="
                | b">"
                | b">="
        );
        self.token(binary, end)
    }

    /// Skip a string literal. A string may span lines (the newlines are
    /// part of it), so the REPL can go on with an open string on the next
    /// line; one that runs into the end of input is incomplete.
    fn string(&mut self, start: usize) -> PResult<usize> {
        let mut i = start + 1;
        let fstring = self.after_f(start);
        // Inside an f-string: how deep in `{ }`, and where the field opened.
        let (mut depth, mut field) = (0usize, start);
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'"' if depth == 0 => return Ok(self.token(false, i + 1)),
                b'"' => match string_end(self.bytes, i, true, 1) {
                    Some(end) => {
                        i = end;
                        continue;
                    }
                    None => return Err(unclosed_field(self.src, field)),
                },
                b'\n' => {
                    self.multiline_string.get_or_insert(start);
                }
                b'\\' => i += 1,
                b'{' if fstring && depth == 0 && self.bytes.get(i + 1) == Some(&b'{') => i += 1,
                b'{' if fstring => {
                    if depth == 0 {
                        field = i;
                    }
                    depth += 1;
                }
                b'}' if depth > 0 => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        let line_end = (self.bytes[start..].iter())
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |n| start + n);
        Err(SyntaxError::new(
            "unterminated string",
            Span::new(self.src, start, line_end),
            "this string is never closed",
        )
        .with_help(
            "close it with `\"`; a string may span lines, and a newline may also be written `\\n`",
        )
        .incomplete())
    }

    /// The `"` at `quote` opens an f-string: an `f` alone stands before it.
    fn after_f(&self, quote: usize) -> bool {
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        quote > 0 && self.bytes[quote - 1] == b'f' && !(quote > 1 && ident(self.bytes[quote - 2]))
    }

    fn close(&mut self, b: u8, i: usize) -> PResult<usize> {
        let span = Span::new(self.src, i, i + 1);
        match self.open.pop() {
            Some((opener, _)) if closer_of(opener) == b => Ok(self.token(false, i + 1)),
            Some((opener, _)) => Err(SyntaxError::new(
                format!(
                    "expected `{}`, found `{}`",
                    closer_of(opener) as char,
                    b as char
                ),
                span,
                format!("this does not close the `{}`", opener as char),
            )
            .with_help(format!(
                "close the `{}` before this point, or remove this `{}`",
                opener as char, b as char
            ))),
            None => Err(SyntaxError::new(
                format!("unmatched `{}`", b as char),
                span,
                format!("no `{}` is open here", opener_of(b) as char),
            )),
        }
    }
}

/// A field of an f-string whose string runs to the end of its line: the
/// field's `}` is missing (`f"{x"`).
fn unclosed_field(src: SourceId, at: usize) -> SyntaxError {
    SyntaxError::new(
        "this `{` in an f-string is never closed",
        Span::new(src, at, at + 1),
        "the field starts here",
    )
    .with_help(
        "close the field with `}` before the string's closing `\"`; write `{{` for a literal `{`",
    )
}

fn is_op_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!'
    )
}

pub(super) fn closer_of(opener: u8) -> u8 {
    match opener {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

fn opener_of(closer: u8) -> u8 {
    match closer {
        b')' => b'(',
        b']' => b'[',
        _ => b'{',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn joined(source: &str) -> String {
        scan(source, SourceId(0)).text.replace('\r', " ")
    }

    #[test]
    fn scanner_blanks_only_newlines_that_do_not_end_a_statement() {
        assert_eq!(joined("f(1,\n2)\nx"), "f(1, 2)\nx");
        assert_eq!(joined("a +\nb\nc"), "a + b\nc");
        assert_eq!(joined("a and # why\nb"), "a and # why b");
        assert_eq!(joined("x.in\ny"), "x.in\ny");
        assert_eq!(joined("{\n  a\n}"), "{\n  a\n}");
        assert_eq!(joined("(fn() {\n a\n})"), "(fn() {\n a\n})");
        assert_eq!(joined("\"(\"\nx"), "\"(\"\nx");
        assert_eq!(joined("x = 1\n"), "x = 1\n");
        assert_eq!(joined("é = [\n1]"), "é = [ 1]");
    }

    #[test]
    fn scanner_knows_when_input_stops_mid_statement() {
        let continues = |s: &str| scan(s, SourceId(0)).continues;
        assert!(continues("f(1"));
        assert!(continues("x = 1 +"));
        assert!(continues("x = [1,  # more"));
        assert!(continues("\"abc"));
        assert!(continues("\"abc\nx"));
        assert!(!continues("x = 1"));
        assert!(!continues("f(1)"));
        assert!(!continues("\"abc\nx\""));
    }

    #[test]
    fn scanner_reports_unmatched_closers() {
        let err = scan("f(x))", SourceId(0)).error.map(|e| e.span.start);
        assert_eq!(err, Some(4));
        let err = scan("[1)", SourceId(0)).error.map(|e| e.message);
        assert_eq!(err.as_deref(), Some("expected `]`, found `)`"));
    }
}
