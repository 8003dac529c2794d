//! Step 2: pest's failures in words. pest names grammar rules; a user needs
//! to hear which token or construct was expected, and why.

use super::scanner::{closer_of, Scanned};
use super::Rule;
use crate::diagnostics::SyntaxError;
use crate::span::{SourceId, Span};
use pest::error::{ErrorVariant, InputLocation};

/// What a rule means to a user when pest says it expected it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// A specific token, e.g. "`)`".
    Token(&'static str),
    Name,
    Pattern,
    FieldName,
    Params,
    SpawnBody,
    CaseKind,
    Statement,
    Expression,
    /// Something that could continue what is already there (an operator, a
    /// call, `else`, `timeout`...) or end the statement.
    Continuation,
}

/// What pest's expected rules mean to a user. pest reports the deepest rule
/// tried at the failure position, so `(` may mean "a call could follow" (when
/// operators could follow too) or "a parameter list" (when alone).
fn expectations(positives: &[Rule]) -> Vec<Expect> {
    if positives.contains(&Rule::case_get) {
        return vec![Expect::CaseKind];
    }
    let continuing = positives.iter().any(|r| is_operator(*r));
    let mut expected: Vec<Expect> = positives
        .iter()
        .map(|&rule| match rule {
            Rule::lparen | Rule::lbracket | Rule::field if continuing => Expect::Continuation,
            // After `else`, `if` is one token, not a statement start (where
            // `let` is always tried too).
            Rule::kw_if if !positives.contains(&Rule::kw_let) => Expect::Token("`if`"),
            _ => expectation(rule),
        })
        .collect();
    expected.sort();
    expected.dedup();
    expected
}

fn is_operator(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        add_op | mul_op | pow_op | cmp_op | kw_and | kw_or | assign_op
    )
}

fn expectation(rule: Rule) -> Expect {
    use Rule::*;
    match rule {
        ident => Expect::Name,
        pattern | list_pattern => Expect::Pattern,
        word => Expect::FieldName,
        params => Expect::Params,
        spawn_body => Expect::SpawnBody,
        program | let_stmt | fn_stmt | if_stmt | while_stmt | for_stmt | break_stmt
        | continue_stmt | return_stmt | try_stmt | raise_stmt | assert_stmt | lock_stmt
        | put_stmt | select_stmt | kw_let | kw_fn | kw_if | kw_while | kw_for | kw_break
        | kw_continue | kw_return | kw_try | kw_raise | kw_assert | kw_lock | kw_put
        | kw_select => Expect::Statement,
        rparen => Expect::Token("`)`"),
        rbracket => Expect::Token("`]`"),
        rbrace => Expect::Token("`}`"),
        lparen => Expect::Token("`(`"),
        lbracket => Expect::Token("`[`"),
        lbrace | block => Expect::Token("`{`"),
        comma => Expect::Token("`,`"),
        colon => Expect::Token("`:`"),
        eq => Expect::Token("`=`"),
        kw_in => Expect::Token("`in`"),
        kw_catch => Expect::Token("`catch`"),
        kw_get => Expect::Token("`get`"),
        kw_case => Expect::Token("`case`"),
        call_args | subscript | field | add_op | mul_op | pow_op | cmp_op | kw_and | kw_or
        | assign_op | timeout | kw_timeout | spawn_name | kw_named | spawn_on | kw_on | else_if
        | else_block | kw_else | EOI => Expect::Continuation,
        _ => Expect::Expression,
    }
}

fn phrase(e: Expect) -> &'static str {
    match e {
        Expect::Token(t) => t,
        Expect::Name => "a name",
        Expect::Pattern => "a name or a `[a, b]` pattern",
        Expect::FieldName => "a field or method name",
        Expect::Params => "a parameter list `(a, b)`",
        Expect::SpawnBody => "a function call or a block",
        Expect::CaseKind => "`get`, `put` or `timeout`",
        Expect::Statement => "a statement",
        Expect::Expression => "an expression",
        Expect::Continuation => "an operator or the end of the statement",
    }
}

pub(super) fn pest_error(
    err: pest::error::Error<Rule>,
    source: &str,
    scanned: &Scanned,
    src: SourceId,
) -> SyntaxError {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((p, _)) => p,
    }
    .min(source.len());
    let span = token_span(source, pos, src);
    let positives = match err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { .. } => {
            return SyntaxError::new("this code is nested too deeply", span, "too deep here")
                .with_help("split it into smaller expressions or functions");
        }
    };
    let expected = expectations(&positives);
    let at_end = rest_is_blank(source, pos);
    let err = describe(&expected, source, pos, span, scanned, at_end);
    if at_end && (scanned.continues || awaits_a_clause(&expected)) {
        err.incomplete()
    } else {
        err
    }
}

/// `try { }` wants its `catch`, `else` its `if` or block: at the end of
/// the input, the next line can still bring them (the REPL waits for it).
fn awaits_a_clause(expected: &[Expect]) -> bool {
    expected.contains(&Expect::Token("`catch`"))
        || expected.contains(&Expect::Token("`if`")) && expected.contains(&Expect::Token("`{`"))
}

/// The message for a failure at `pos`, from what was expected there.
fn describe(
    expected: &[Expect],
    source: &str,
    pos: usize,
    span: Span,
    scanned: &Scanned,
    at_end: bool,
) -> SyntaxError {
    let found = found_at(source, pos);
    let label = format!("found {found}");
    if at_end {
        if let Some(err) = unclosed(expected, scanned, span.src) {
            return err;
        }
    }
    if let Some(err) = misplaced_word(expected, source, pos, span) {
        return err;
    }
    if expected.contains(&Expect::SpawnBody) {
        return SyntaxError::new(
            "expected a function call or a block after `spawn`",
            span,
            label,
        )
        .with_help("write `spawn worker(args)` or `spawn { ... }`");
    }
    SyntaxError::new(format!("expected {}", join_phrases(expected)), span, label)
}

/// At the end of input with a bracket still open: name the bracket.
fn unclosed(expected: &[Expect], scanned: &Scanned, src: SourceId) -> Option<SyntaxError> {
    let &(opener, at) = scanned.open.last()?;
    let closer = closer_of(opener);
    let wanted = match closer {
        b')' => "`)`",
        b']' => "`]`",
        _ => "`}`",
    };
    if !expected.contains(&Expect::Token(wanted)) {
        return None;
    }
    let what = match opener {
        b'{' if expected.contains(&Expect::Statement) => "block",
        b'{' => "map",
        _ => "bracket",
    };
    Some(SyntaxError::new(
        format!("expected {wanted} to close this {what}"),
        Span::new(src, at, at + 1),
        format!("this `{}` is never closed", opener as char),
    ))
}

/// A keyword where a name was expected, or `else`/`catch` where a statement was.
fn misplaced_word(
    expected: &[Expect],
    source: &str,
    pos: usize,
    span: Span,
) -> Option<SyntaxError> {
    let word = word_at(source, pos)?;
    let wants_name = expected.contains(&Expect::Name) || expected.contains(&Expect::Pattern);
    if wants_name && is_hard_keyword(word) {
        return Some(
            SyntaxError::new(
                format!("expected a name, found the keyword `{word}`"),
                span,
                "a keyword cannot be a name",
            )
            .with_help(format!("`{word}` is a keyword; pick another name")),
        );
    }
    let partner = match word {
        "else" => "if",
        "catch" | "finally" => "try",
        _ => return None,
    };
    expected.contains(&Expect::Statement).then(|| {
        SyntaxError::new(
            format!("`{word}` without a matching `{partner}`"),
            span,
            format!("this `{word}` does not follow an `{partner}` block"),
        )
    })
}

fn join_phrases(expected: &[Expect]) -> String {
    // A statement or an expression says it all; mention operators only
    // when nothing more specific was expected.
    let specific: Vec<Expect> = expected
        .iter()
        .copied()
        .filter(|e| *e != Expect::Continuation)
        .collect();
    let list = if specific.is_empty() {
        expected.to_vec()
    } else if specific.contains(&Expect::Statement) {
        specific
            .into_iter()
            .filter(|e| *e != Expect::Expression)
            .collect()
    } else {
        specific
    };
    let words: Vec<&str> = list.into_iter().map(phrase).collect();
    match words.split_last() {
        None => "something else".to_string(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

const HARD_KEYWORDS: &[&str] = &[
    "let", "fn", "if", "else", "while", "for", "in", "break", "continue", "return", "try", "catch",
    "finally", "raise", "assert", "and", "or", "not", "nil", "true", "false", "spawn", "join",
    "lock", "wait", "put", "get", "select", "submit",
];

fn is_hard_keyword(word: &str) -> bool {
    HARD_KEYWORDS.contains(&word)
}

fn word_at(source: &str, pos: usize) -> Option<&str> {
    let rest = source.get(pos..)?;
    let len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let word = &rest[..len];
    (!word.is_empty() && !word.as_bytes()[0].is_ascii_digit()).then_some(word)
}

/// The span of the token starting at `pos` (one char, or a whole word).
fn token_span(source: &str, pos: usize, src: SourceId) -> Span {
    if let Some(word) = word_at(source, pos) {
        return Span::new(src, pos, pos + word.len());
    }
    let len = source
        .get(pos..)
        .and_then(|rest| rest.chars().next())
        .map_or(0, char::len_utf8);
    Span::new(src, pos, pos + len)
}

/// How to name the token at `pos` in a message.
fn found_at(source: &str, pos: usize) -> String {
    if rest_is_blank(source, pos) {
        return "the end of the input".to_string();
    }
    if let Some(word) = word_at(source, pos) {
        return format!("`{word}`");
    }
    match source.get(pos..).and_then(|rest| rest.chars().next()) {
        Some('\n') => "the end of the line".to_string(),
        Some(c) => format!("`{c}`"),
        None => "the end of the input".to_string(),
    }
}

/// Only whitespace and comments from `pos` to the end.
fn rest_is_blank(source: &str, pos: usize) -> bool {
    let Some(rest) = source.get(pos..) else {
        return true;
    };
    rest.lines()
        .all(|line| line.trim_start().is_empty() || line.trim_start().starts_with('#'))
}
