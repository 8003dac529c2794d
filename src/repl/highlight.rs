//! ANSI colours for the line being typed: keywords, strings, numbers,
//! comments, and the bracket matching the one at the cursor. Colour codes
//! have zero width, so the cursor stays where rustyline computes it.

/// The language's keywords, for completion and highlighting.
pub const KEYWORDS: &[&str] = &[
    "let", "fn", "if", "else", "while", "for", "in", "break", "continue", "return", "try", "catch",
    "finally", "raise", "assert", "and", "or", "not", "nil", "true", "false", "spawn", "join",
    "lock", "wait", "put", "get", "select", "submit", "thread", "process", "daemon", "named",
    "timeout", "case", "on",
];

const KEYWORD: &str = "\x1b[1;35m";
const STRING: &str = "\x1b[32m";
const NUMBER: &str = "\x1b[33m";
const COMMENT: &str = "\x1b[90m";
const BRACKET: &str = "\x1b[1;4;36m";
const RESET: &str = "\x1b[0m";

/// The line with colour codes; `pos` is the cursor's byte offset.
pub fn colorize(line: &str, pos: usize) -> String {
    let partner = matching_bracket(line, pos);
    let mut out = String::with_capacity(line.len() * 2);
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        let (len, style) = token(rest);
        let text = &rest[..len];
        match (style, partner) {
            (_, Some(p)) if p == i => paint(&mut out, BRACKET, text),
            (Some(style), _) => paint(&mut out, style, text),
            (None, _) => out.push_str(text),
        }
        i += len;
    }
    out
}

fn paint(out: &mut String, style: &str, text: &str) {
    out.push_str(style);
    out.push_str(text);
    out.push_str(RESET);
}

/// The byte length of the token at the start of `s` (never 0 for a
/// non-empty `s`) and its colour.
fn token(s: &str) -> (usize, Option<&'static str>) {
    let mut chars = s.char_indices();
    let Some((_, first)) = chars.next() else {
        return (0, None);
    };
    if first == '#' {
        return (s.find('\n').unwrap_or(s.len()), Some(COMMENT));
    }
    if first == '"' {
        return (string_len(s), Some(STRING));
    }
    if first.is_ascii_digit() {
        let len = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(s.len());
        return (len, Some(NUMBER));
    }
    if first.is_alphabetic() || first == '_' {
        let len = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let style = KEYWORDS.contains(&&s[..len]).then_some(KEYWORD);
        return (len, style);
    }
    (first.len_utf8(), None)
}

/// Length of a string literal starting at `s[0] == '"'`, up to and
/// including the closing quote (or the end of an unfinished string).
fn string_len(s: &str) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// The byte offset of the bracket matching the one under (or just before)
/// the cursor, if any. Brackets inside strings and comments are skipped.
fn matching_bracket(line: &str, pos: usize) -> Option<usize> {
    let brackets = code_brackets(line);
    let here = brackets
        .iter()
        .position(|&(at, _)| at == pos)
        .or_else(|| brackets.iter().position(|&(at, _)| at + 1 == pos))?;
    let (_, c) = brackets[here];
    let (open, close, forward) = match c {
        '(' => ('(', ')', true),
        '[' => ('[', ']', true),
        '{' => ('{', '}', true),
        ')' => ('(', ')', false),
        ']' => ('[', ']', false),
        _ => ('{', '}', false),
    };
    let mut depth = 0i32;
    let order: Box<dyn Iterator<Item = &(usize, char)>> = if forward {
        Box::new(brackets[here..].iter())
    } else {
        Box::new(brackets[..=here].iter().rev())
    };
    for &(at, b) in order {
        if b == open {
            depth += if forward { 1 } else { -1 };
        } else if b == close {
            depth += if forward { -1 } else { 1 };
        }
        if depth == 0 {
            return Some(at);
        }
    }
    None
}

/// Every bracket outside strings and comments, with its byte offset.
fn code_brackets(line: &str) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let (len, style) = token(&line[i..]);
        if style.is_none() {
            if let Some(c) = line[i..].chars().next().filter(|c| "()[]{}".contains(*c)) {
                out.push((i, c));
            }
        }
        i += len.max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_keywords_strings_numbers_comments() {
        let s = colorize("let x = \"a\" + 1 # hi", 0);
        assert!(s.contains(&format!("{KEYWORD}let{RESET}")));
        assert!(s.contains(&format!("{STRING}\"a\"{RESET}")));
        assert!(s.contains(&format!("{NUMBER}1{RESET}")));
        assert!(s.contains(&format!("{COMMENT}# hi{RESET}")));
    }

    #[test]
    fn finds_the_matching_bracket() {
        assert_eq!(matching_bracket("f(a[1])", 1), Some(6));
        assert_eq!(matching_bracket("f(a[1])", 7), Some(1));
        // The `)` inside the string is skipped.
        assert_eq!(matching_bracket("f(\")\")", 1), Some(5));
    }
}
