//! The only file that touches pest: source text -> AST, pest errors -> SyntaxError.
//!
//! Three steps:
//! 1. [`scan`] copies the source, blanking (to `\r`) every newline that does not end a
//!    statement (inside `( )`/`[ ]`, after a binary operator or a comma), and
//!    finds what pest reports badly: unterminated strings, unmatched closing
//!    brackets, and whether the input stops in the middle of a statement.
//! 2. pest parses the copy with `grammar/conc.pest` (same byte offsets, so
//!    every pest position is a valid source offset).
//! 3. [`Builder`] turns pairs into the AST, checking what the grammar cannot:
//!    escapes, literal ranges, assignment targets, spawn bodies, duplicates.
//!
//! Resolution fields (`Res`, `nslots`, `upvals`, `captured`) are left at their
//! defaults: the resolver fills them.

use crate::ast::{
    BinOp, Block, Decl, Expr, ExprKind, FnDecl, Ident, Pattern, Program, Res, SelectCase,
    SelectKind, Spawn, SpawnBody, SpawnKind, Stmt, StmtKind, UnaryOp, VarRef,
};
use crate::diagnostics::SyntaxError;
use crate::span::{SourceId, Span, Spanned};
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;
use std::cell::Cell;
use std::sync::Arc;

mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar/conc.pest"]
    pub struct ConcParser;
}

use grammar::{ConcParser, Rule};

type PResult<T> = Result<T, SyntaxError>;

/// Native stack for parsing. pest recurses once per nesting level and stops
/// cleanly ("nested too deeply") when the stack runs low; a big dedicated
/// stack lets reasonable nesting through even when the caller's thread is
/// small (test threads have 2 MiB). Only touched pages are ever committed.
const PARSER_STACK: usize = 64 * 1024 * 1024;

thread_local! {
    static ON_BIG_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The calling thread was started with at least `PARSER_STACK` of stack:
/// parsing on it needs no thread of its own (which costs a process start).
pub fn mark_big_stack() {
    ON_BIG_STACK.with(|b| b.set(true));
}

/// Parse a whole file, `-c` string or REPL entry.
pub fn parse(source: &str, src: SourceId) -> Result<Program, SyntaxError> {
    if ON_BIG_STACK.with(|b| b.get()) {
        return parse_here(source, src).map_err(|e| onto_last_char(e, source));
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("conc-parser".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || {
                parse_here(source, src).map_err(|e| onto_last_char(e, source))
            });
        match worker {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(internal(Span::new(src, 0, 0), "the parser crashed"))),
            // No thread available: parse on this one (pest still guards its stack).
            Err(_) => parse_here(source, src),
        }
    })
}

/// An error at the very end of the input (past trailing blank lines) would
/// render with no source line and no caret: point at the last real character.
fn onto_last_char(mut err: SyntaxError, source: &str) -> SyntaxError {
    let trimmed = source.trim_end();
    if err.span.start as usize >= trimmed.len() && !trimmed.is_empty() {
        let last = trimmed.char_indices().last().map_or(0, |(i, _)| i);
        err.span = Span::new(err.span.src, last, trimmed.len());
    }
    err
}

fn parse_here(source: &str, src: SourceId) -> Result<Program, SyntaxError> {
    let scanned = scan(source, src);
    match ConcParser::parse(Rule::program, &scanned.text) {
        Ok(mut pairs) => {
            if let Some(err) = scanned.error {
                return Err(err);
            }
            let program = pairs
                .next()
                .ok_or_else(|| internal(Span::new(src, 0, 0), "no program"))?;
            Builder::new(src).program(program)
        }
        Err(err) => Err(choose_error(
            pest_error(err, source, &scanned, src),
            scanned.error,
        )),
    }
}

/// Report the earlier of the pest error and the scanner's error; on a tie the
/// scanner's, whose message is more precise (it knows about strings and
/// bracket pairs).
fn choose_error(from_pest: SyntaxError, from_scan: Option<SyntaxError>) -> SyntaxError {
    match from_scan {
        Some(scan_err) if scan_err.span.start <= from_pest.span.start => scan_err,
        _ => from_pest,
    }
}

fn internal(span: Span, what: &str) -> SyntaxError {
    SyntaxError::new(format!("internal parser error: {what}"), span, "here")
}

// ======================================================================
// Step 1: the scanner
// ======================================================================

/// The source with non-terminating newlines blanked, plus what the scanner
/// learned about it.
struct Scanned {
    text: String,
    /// Open brackets at the end of input, innermost last: (bracket, offset).
    open: Vec<(u8, usize)>,
    /// The input stops where a newline would not end the statement (open
    /// bracket, trailing operator or comma): more lines could complete it.
    continues: bool,
    /// An unterminated string or an unmatched closing bracket.
    error: Option<SyntaxError>,
}

struct Scanner<'s> {
    bytes: &'s [u8],
    out: Vec<u8>,
    open: Vec<(u8, usize)>,
    /// The last token lets the statement go on past a newline.
    joiner: bool,
    /// The last significant byte was `.` (so a following word is a field name).
    after_dot: bool,
    src: SourceId,
}

fn scan(source: &str, src: SourceId) -> Scanned {
    let mut s = Scanner {
        bytes: source.as_bytes(),
        out: source.as_bytes().to_vec(),
        open: Vec::new(),
        joiner: false,
        after_dot: false,
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

    /// Skip a string literal. It must end on its own line: one that runs into
    /// the end of input is incomplete (the REPL asks for more), one that runs
    /// into a newline is an error.
    fn string(&mut self, start: usize) -> PResult<usize> {
        let mut i = start + 1;
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'"' => return Ok(self.token(false, i + 1)),
                b'\n' => break,
                b'\\' if self.bytes.get(i + 1).is_some_and(|&c| c != b'\n') => i += 2,
                _ => i += 1,
            }
        }
        let end = i.min(self.bytes.len());
        let err = SyntaxError::new(
            "unterminated string",
            Span::new(self.src, start, end),
            "this string is never closed",
        )
        .with_help("close it with `\"` on the same line; write a newline as `\\n`");
        Err(if end >= self.bytes.len() {
            err.incomplete()
        } else {
            err
        })
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

fn is_op_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!'
    )
}

fn closer_of(opener: u8) -> u8 {
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

// ======================================================================
// Step 2: pest errors -> SyntaxError, in words
// ======================================================================

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
        | assign_op | timeout | kw_timeout | spawn_name | kw_named | else_if | else_block
        | kw_else | EOI => Expect::Continuation,
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

fn pest_error(
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
    if at_end && scanned.continues {
        err.incomplete()
    } else {
        err
    }
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
        "catch" => "try",
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
    "raise", "assert", "and", "or", "not", "nil", "true", "false", "spawn", "join", "lock", "wait",
    "put", "get", "select", "submit",
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

// ======================================================================
// Step 3: pairs -> AST
// ======================================================================

/// Punctuation and keyword tokens: the builder skips them (they exist in the
/// grammar so that pest errors can name them).
fn is_token(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        comma
            | colon
            | lparen
            | rparen
            | lbracket
            | rbracket
            | lbrace
            | rbrace
            | eq
            | EOI
            | kw_let
            | kw_fn
            | kw_if
            | kw_else
            | kw_while
            | kw_for
            | kw_in
            | kw_break
            | kw_continue
            | kw_return
            | kw_try
            | kw_catch
            | kw_raise
            | kw_assert
            | kw_spawn
            | kw_join
            | kw_lock
            | kw_wait
            | kw_put
            | kw_get
            | kw_select
            | kw_submit
            | kw_named
            | kw_timeout
            | kw_case
            | kw_daemon
    )
}

/// The meaningful children of a pair, in order.
struct Parts<'i> {
    items: std::iter::Peekable<std::vec::IntoIter<Pair<'i, Rule>>>,
    span: Span,
}

impl<'i> Parts<'i> {
    /// The next child; the grammar guarantees it, so a missing one is a bug.
    fn next(&mut self) -> PResult<Pair<'i, Rule>> {
        self.items
            .next()
            .ok_or_else(|| internal(self.span, "missing part"))
    }

    fn next_if(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        self.items.next_if(|p| p.as_rule() == rule)
    }
}

/// How deep the AST may nest (counting each operator of a chain like
/// `1 + 1 + ...` or `- - x` as a level). Deeper trees would overflow the
/// native stack of whoever walks them recursively (the evaluator, `Drop`).
const MAX_DEPTH: usize = 1000;

struct Builder {
    src: SourceId,
    /// An upper bound of the AST depth at the node being built.
    depth: Cell<usize>,
}

impl Builder {
    fn new(src: SourceId) -> Builder {
        Builder {
            src,
            depth: Cell::new(0),
        }
    }

    /// Run `f` counting `levels` more levels of nesting.
    fn deeper<T>(&self, levels: usize, span: Span, f: impl FnOnce() -> PResult<T>) -> PResult<T> {
        let depth = self.depth.get().saturating_add(levels);
        if depth > MAX_DEPTH {
            return Err(SyntaxError::new(
                "this code is nested too deeply",
                Span::new(self.src, span.start as usize, span.end.min(span.start + 1) as usize),
                "too deep here",
            )
            .with_help(format!(
                "at most {MAX_DEPTH} levels of nesting; split it into smaller expressions or functions"
            )));
        }
        self.depth.set(depth);
        let result = f();
        self.depth.set(depth - levels);
        result
    }

    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.src, s.start(), s.end())
    }

    fn parts<'i>(&self, p: Pair<'i, Rule>) -> Parts<'i> {
        let span = self.span(&p);
        let items: Vec<_> = p.into_inner().filter(|q| !is_token(q.as_rule())).collect();
        Parts {
            items: items.into_iter().peekable(),
            span,
        }
    }

    fn ident(&self, p: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: Arc::from(p.as_str()),
            span: self.span(p),
        }
    }

    fn program(&self, p: Pair<'_, Rule>) -> PResult<Program> {
        let span = self.span(&p);
        let stmts = self.stmts(p)?;
        Ok(Program {
            stmts,
            span,
            nslots: 0,
            functions: Vec::new(),
        })
    }

    fn stmts(&self, p: Pair<'_, Rule>) -> PResult<Vec<Stmt>> {
        self.parts(p).items.map(|q| self.stmt(q)).collect()
    }

    fn block(&self, p: Pair<'_, Rule>) -> PResult<Block> {
        let span = self.span(&p);
        Ok(Block {
            stmts: self.stmts(p)?,
            span,
        })
    }

    fn stmt(&self, p: Pair<'_, Rule>) -> PResult<Stmt> {
        let span = self.span(&p);
        self.deeper(1, span, || self.stmt_at(p, span))
    }

    fn stmt_at(&self, p: Pair<'_, Rule>, span: Span) -> PResult<Stmt> {
        let kind = match p.as_rule() {
            Rule::let_stmt => self.let_stmt(p)?,
            Rule::fn_stmt => self.fn_stmt(p)?,
            Rule::if_stmt => self.if_stmt(p)?,
            Rule::while_stmt => self.while_stmt(p)?,
            Rule::for_stmt => self.for_stmt(p)?,
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::return_stmt => self.return_stmt(p)?,
            Rule::try_stmt => self.try_stmt(p)?,
            Rule::raise_stmt => StmtKind::Raise(self.expr(self.parts(p).next()?)?),
            Rule::assert_stmt => self.assert_stmt(p)?,
            Rule::lock_stmt => self.lock_stmt(p)?,
            Rule::put_stmt => self.put_stmt(p)?,
            Rule::select_stmt => self.select_stmt(p)?,
            Rule::expr_stmt => self.expr_stmt(p)?,
            _ => return Err(internal(span, "unknown statement")),
        };
        Ok(Spanned::new(kind, span))
    }
}

// ---------------------------------------------------------------- statements

impl Builder {
    fn let_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.pattern(parts.next()?)?;
        let value = self.expr(parts.next()?)?;
        Ok(StmtKind::Let { target, value })
    }

    /// `x` or `[a, [b, c]]`.
    fn pattern(&self, p: Pair<'_, Rule>) -> PResult<Pattern> {
        let inner = self.parts(p).next()?;
        match inner.as_rule() {
            Rule::ident => Ok(Pattern::Name(Decl::new(self.ident(&inner)))),
            _ => {
                let span = self.span(&inner);
                let items = self
                    .parts(inner)
                    .items
                    .map(|q| self.pattern(q))
                    .collect::<PResult<_>>()?;
                Ok(Pattern::List(items, span))
            }
        }
    }

    fn fn_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let name = self.ident(&parts.next()?);
        let params = self.params(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        let func = fn_decl(Some(name.clone()), params, body, span);
        Ok(StmtKind::Fn {
            decl: Decl::new(name),
            func: Arc::new(func),
        })
    }

    /// `(a, b)`; a name may appear only once.
    fn params(&self, p: Pair<'_, Rule>) -> PResult<Vec<Decl>> {
        let mut params: Vec<Decl> = Vec::new();
        for q in self.parts(p).items {
            let ident = self.ident(&q);
            if params.iter().any(|d| d.ident.name == ident.name) {
                return Err(SyntaxError::new(
                    format!("duplicate parameter `{}`", ident.name),
                    ident.span,
                    "this name is already a parameter",
                ));
            }
            params.push(Decl::new(ident));
        }
        Ok(params)
    }

    fn if_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let cond = self.expr(parts.next()?)?;
        let mut branches = vec![(cond, self.block(parts.next()?)?)];
        let mut otherwise = None;
        for q in parts.items {
            let is_else_if = q.as_rule() == Rule::else_if;
            let mut inner = self.parts(q);
            if is_else_if {
                let cond = self.expr(inner.next()?)?;
                branches.push((cond, self.block(inner.next()?)?));
            } else {
                otherwise = Some(self.block(inner.next()?)?);
            }
        }
        Ok(StmtKind::If {
            branches,
            otherwise,
        })
    }

    fn while_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let cond = self.expr(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(StmtKind::While { cond, body })
    }

    fn for_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.pattern(parts.next()?)?;
        let iter = self.expr(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(StmtKind::For { target, iter, body })
    }

    fn return_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let value = self.parts(p).items.next().map(|q| self.expr(q));
        Ok(StmtKind::Return(value.transpose()?))
    }

    fn try_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let body = self.block(parts.next()?)?;
        let name = parts
            .next_if(Rule::ident)
            .map(|q| Decl::new(self.ident(&q)));
        let handler = self.block(parts.next()?)?;
        Ok(StmtKind::Try {
            body,
            name,
            handler,
        })
    }

    fn assert_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let cond = self.expr(parts.next()?)?;
        let message = parts.items.next().map(|q| self.expr(q)).transpose()?;
        Ok(StmtKind::Assert { cond, message })
    }

    fn lock_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.expr(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(StmtKind::Lock { target, body })
    }

    fn put_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.expr(parts.next()?)?;
        let value = self.expr(parts.next()?)?;
        let timeout = parts.items.next().map(|q| self.timeout(q)).transpose()?;
        Ok(StmtKind::Put {
            target,
            value,
            timeout,
        })
    }

    /// `timeout EXPR` (the keyword is skipped as a token).
    fn timeout(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        self.expr(self.parts(p).next()?)
    }

    fn select_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let cases = self
            .parts(p)
            .items
            .map(|q| self.select_case(q))
            .collect::<PResult<_>>()?;
        Ok(StmtKind::Select { cases })
    }

    fn select_case(&self, p: Pair<'_, Rule>) -> PResult<SelectCase> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let head = parts.next()?;
        let rule = head.as_rule();
        let mut inner = self.parts(head);
        let kind = match rule {
            Rule::case_get => SelectKind::Get {
                name: inner
                    .next_if(Rule::ident)
                    .map(|q| Decl::new(self.ident(&q))),
                target: self.expr(inner.next()?)?,
            },
            Rule::case_put => SelectKind::Put {
                target: self.expr(inner.next()?)?,
                value: self.expr(inner.next()?)?,
            },
            _ => SelectKind::Timeout {
                seconds: self.expr(inner.next()?)?,
            },
        };
        let body = self.block(parts.next()?)?;
        Ok(SelectCase { kind, body, span })
    }

    /// An expression statement, or an assignment `target op= value`.
    fn expr_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let first = self.expr(parts.next()?)?;
        let Some(op) = parts.next_if(Rule::assign_op) else {
            return Ok(StmtKind::Expr(first));
        };
        check_assign_target(&first)?;
        let op = match op.as_str() {
            "+=" => Some(BinOp::Add),
            "-=" => Some(BinOp::Sub),
            "*=" => Some(BinOp::Mul),
            "/=" => Some(BinOp::Div),
            _ => None,
        };
        let value = self.expr(parts.next()?)?;
        Ok(StmtKind::Assign {
            target: first,
            op,
            value,
        })
    }
}

fn fn_decl(name: Option<Ident>, params: Vec<Decl>, body: Block, span: Span) -> FnDecl {
    FnDecl {
        name,
        params,
        body,
        span,
        nslots: 0,
        upvals: Vec::new(),
    }
}

/// Only a name or an index expression can be assigned to.
fn check_assign_target(target: &Expr) -> PResult<()> {
    let what = match &target.node {
        ExprKind::Var(_) | ExprKind::Index { .. } => return Ok(()),
        ExprKind::Call { .. } | ExprKind::MethodCall { .. } => "a function call",
        ExprKind::Field { .. } => "a field",
        ExprKind::Slice { .. } => "a slice",
        ExprKind::List(_) => "a list (to unpack, write `let [a, b] = ...`)",
        _ => "this expression",
    };
    Err(SyntaxError::new(
        format!("cannot assign to {what}"),
        target.span,
        "not assignable",
    )
    .with_help("only a name (`x = 1`) or an index (`xs[i] = 1`) can be assigned"))
}

// ---------------------------------------------------------------- operators

/// Precedence levels that, with a single child, are just that child.
fn is_level(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        expr | and_expr | not_expr | cmp_expr | sum | product | unary | power | postfix
    )
}

/// Skip single-child levels without recursing, so that deep nesting of
/// parentheses costs few native stack frames per level.
fn descend(mut p: Pair<'_, Rule>) -> Pair<'_, Rule> {
    while is_level(p.as_rule()) {
        let mut inner = p.clone().into_inner();
        match (inner.next(), inner.next()) {
            (Some(only), None) => p = only,
            _ => break,
        }
    }
    p
}

/// How many nested AST nodes an operator chain (`a + b + c`, `- - x`,
/// `f(x)[i].y`) becomes: one per operator.
fn chain_len(p: &Pair<'_, Rule>) -> usize {
    use Rule::*;
    if !is_level(p.as_rule()) {
        return 0;
    }
    p.clone()
        .into_inner()
        .filter(|q| {
            matches!(
                q.as_rule(),
                kw_or
                    | kw_and
                    | kw_not
                    | cmp_op
                    | add_op
                    | mul_op
                    | pow_op
                    | neg_op
                    | call_args
                    | subscript
                    | field
            )
        })
        .count()
}

fn binop(p: &Pair<'_, Rule>) -> Option<BinOp> {
    Some(match p.as_str() {
        "or" => BinOp::Or,
        "and" => BinOp::And,
        "+" => BinOp::Add,
        "-" => BinOp::Sub,
        "*" => BinOp::Mul,
        "/" => BinOp::Div,
        "//" => BinOp::FloorDiv,
        "%" => BinOp::Mod,
        "**" => BinOp::Pow,
        "==" => BinOp::Eq,
        "!=" => BinOp::Ne,
        "<" => BinOp::Lt,
        "<=" => BinOp::Le,
        ">" => BinOp::Gt,
        ">=" => BinOp::Ge,
        "in" => BinOp::In,
        s if s.starts_with("not") => BinOp::NotIn,
        _ => return None,
    })
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Spanned::new(
        ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    )
}

fn unary(op: UnaryOp, op_span: Span, operand: Expr) -> Expr {
    let span = op_span.to(operand.span);
    Spanned::new(
        ExprKind::Unary {
            op,
            operand: Box::new(operand),
        },
        span,
    )
}

impl Builder {
    fn expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let p = descend(p);
        let levels = 1 + chain_len(&p);
        self.deeper(levels, self.span(&p), || self.expr_at(p))
    }

    fn expr_at(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        match p.as_rule() {
            Rule::expr | Rule::and_expr | Rule::sum | Rule::product => self.left_chain(p),
            Rule::not_expr => self.not_expr(p),
            Rule::cmp_expr => self.cmp_expr(p),
            Rule::unary => self.neg_expr(p),
            Rule::power => self.power(p),
            Rule::postfix => self.postfix(p),
            Rule::spawn_expr => self.spawn_expr(p),
            Rule::submit_expr => self.submit_expr(p),
            Rule::join_expr | Rule::get_expr | Rule::wait_expr => self.blocking_expr(p),
            _ => self.primary(p),
        }
    }

    /// `a op b op c` as `(a op b) op c`.
    fn left_chain(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let mut parts = self.parts(p);
        let mut acc = self.expr(parts.next()?)?;
        while let Some(op_pair) = parts.items.next() {
            let op = binop(&op_pair).ok_or_else(|| internal(self.span(&op_pair), "operator"))?;
            let rhs = self.expr(parts.next()?)?;
            acc = binary(op, acc, rhs);
        }
        Ok(acc)
    }

    /// Comparisons do not chain: `a < b < c` is an error, not `(a < b) < c`.
    fn cmp_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let mut parts = self.parts(p);
        let lhs = self.expr(parts.next()?)?;
        let op_pair = parts.next()?;
        let op = binop(&op_pair).ok_or_else(|| internal(self.span(&op_pair), "comparison"))?;
        let rhs = self.expr(parts.next()?)?;
        if let Some(second) = parts.items.next() {
            return Err(SyntaxError::new(
                "comparison operators cannot be chained",
                self.span(&second),
                "second comparison",
            )
            .with_help("combine them with `and`: `a < b and b < c`"));
        }
        Ok(binary(op, lhs, rhs))
    }

    /// `not not x`: prefix operators are a repetition in the grammar.
    fn not_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        self.prefixed(p, UnaryOp::Not)
    }

    fn neg_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        self.prefixed(p, UnaryOp::Neg)
    }

    fn prefixed(&self, p: Pair<'_, Rule>, op: UnaryOp) -> PResult<Expr> {
        let mut ops = Vec::new();
        let mut operand = None;
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::kw_not | Rule::neg_op => ops.push(self.span(&q)),
                _ => operand = Some(self.expr(q)?),
            }
        }
        let mut acc = operand.ok_or_else(|| internal(Span::new(self.src, 0, 0), "operand"))?;
        for op_span in ops.into_iter().rev() {
            acc = unary(op, op_span, acc);
        }
        Ok(acc)
    }

    /// `a ** -b ** c` is `a ** (-(b ** c))`: fold from the right, applying
    /// each operand's leading minus signs to everything on its right.
    fn power(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        // Each operand with the minus signs written before it.
        let mut operands: Vec<(Vec<Span>, Expr)> = Vec::new();
        let mut negs = Vec::new();
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::neg_op => negs.push(self.span(&q)),
                Rule::pow_op => {}
                _ => operands.push((std::mem::take(&mut negs), self.expr(q)?)),
            }
        }
        let (negs, mut acc) = operands
            .pop()
            .ok_or_else(|| internal(Span::new(self.src, 0, 0), "power"))?;
        let mut pending = negs;
        while let Some((negs, lhs)) = operands.pop() {
            for op_span in pending.into_iter().rev() {
                acc = unary(UnaryOp::Neg, op_span, acc);
            }
            acc = binary(BinOp::Pow, lhs, acc);
            pending = negs;
        }
        Ok(acc)
    }
}

// ---------------------------------------------------------------- postfix

impl Builder {
    /// `primary` followed by calls, subscripts and fields; `.name(args)`
    /// becomes a method call.
    fn postfix(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let mut parts = self.parts(p);
        let mut acc = self.expr(parts.next()?)?;
        while let Some(op) = parts.items.next() {
            acc = match op.as_rule() {
                Rule::call_args => self.call(acc, op)?,
                Rule::subscript => self.subscript(acc, op)?,
                _ => {
                    let name = self.ident(&self.parts(op).next()?);
                    match parts.next_if(Rule::call_args) {
                        Some(args) => self.method_call(acc, name, args)?,
                        None => {
                            let span = acc.span.to(name.span);
                            let target = Box::new(acc);
                            Spanned::new(ExprKind::Field { target, name }, span)
                        }
                    }
                }
            };
        }
        Ok(acc)
    }

    fn args(&self, p: Pair<'_, Rule>) -> PResult<Vec<Expr>> {
        self.parts(p).items.map(|q| self.expr(q)).collect()
    }

    fn call(&self, callee: Expr, args: Pair<'_, Rule>) -> PResult<Expr> {
        let span = callee.span.to(self.span(&args));
        let args = self.args(args)?;
        let callee = Box::new(callee);
        Ok(Spanned::new(ExprKind::Call { callee, args }, span))
    }

    fn method_call(&self, target: Expr, method: Ident, args: Pair<'_, Rule>) -> PResult<Expr> {
        let span = target.span.to(self.span(&args));
        let args = self.args(args)?;
        let target = Box::new(target);
        Ok(Spanned::new(
            ExprKind::MethodCall {
                target,
                method,
                args,
            },
            span,
        ))
    }

    /// `x[i]`, or a slice `x[a:b]` / `x[a:b:c]` with each part optional.
    fn subscript(&self, target: Expr, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = target.span.to(self.span(&p));
        let whole = self.span(&p);
        // Split the contents at the colons: each section is empty or one expr.
        let mut sections: Vec<Option<Box<Expr>>> = vec![None];
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::colon if sections.len() == 3 => {
                    return Err(SyntaxError::new(
                        "a slice has at most three parts",
                        self.span(&q),
                        "one `:` too many",
                    )
                    .with_help("write `xs[start:end]` or `xs[start:end:step]`"));
                }
                Rule::colon => sections.push(None),
                Rule::expr => {
                    if let Some(last) = sections.last_mut() {
                        *last = Some(Box::new(self.expr(q)?));
                    }
                }
                _ => {}
            }
        }
        let target = Box::new(target);
        let kind = match <[_; 1]>::try_from(sections) {
            Ok([Some(index)]) => ExprKind::Index { target, index },
            Ok([None]) => {
                return Err(SyntaxError::new("expected an index", whole, "empty `[]`")
                    .with_help("write `xs[i]` or a slice `xs[a:b]`"))
            }
            Err(sections) => {
                let mut it = sections.into_iter();
                ExprKind::Slice {
                    target,
                    start: it.next().flatten(),
                    end: it.next().flatten(),
                    step: it.next().flatten(),
                }
            }
        };
        Ok(Spanned::new(kind, span))
    }
}

// ---------------------------------------------------------------- primaries

fn var(name: &str, span: Span) -> Expr {
    Spanned::new(
        ExprKind::Var(VarRef {
            name: Arc::from(name),
            res: Res::Unresolved,
        }),
        span,
    )
}

impl Builder {
    fn primary(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::nil_lit => ExprKind::Nil,
            Rule::true_lit => ExprKind::Bool(true),
            Rule::false_lit => ExprKind::Bool(false),
            Rule::int => ExprKind::Int(int_literal(p.as_str(), span)?),
            Rule::float => ExprKind::Float(float_literal(p.as_str(), span)?),
            Rule::string => ExprKind::Str(self.string(p)?),
            Rule::ident | Rule::lock_var => return Ok(var(p.as_str(), span)),
            Rule::lambda => ExprKind::Fn(Arc::new(self.lambda(p)?)),
            Rule::list => ExprKind::List(self.args(p)?),
            Rule::map => ExprKind::Map(self.map(p)?),
            // The parentheses belong to the expression's span.
            Rule::paren => self.expr(self.parts(p).next()?)?.node,
            _ => return Err(internal(span, "unknown expression")),
        };
        Ok(Spanned::new(kind, span))
    }

    fn lambda(&self, p: Pair<'_, Rule>) -> PResult<FnDecl> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let params = self.params(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(fn_decl(None, params, body, span))
    }

    fn map(&self, p: Pair<'_, Rule>) -> PResult<Vec<(Expr, Expr)>> {
        let mut entries = Vec::new();
        for entry in self.parts(p).items {
            let mut kv = self.parts(entry);
            let key = self.expr(kv.next()?)?;
            let value = self.expr(kv.next()?)?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    /// The text between the quotes, with escapes decoded; an unknown escape
    /// is reported at the escape itself.
    fn string(&self, p: Pair<'_, Rule>) -> PResult<Arc<String>> {
        let body = self.parts(p).next()?;
        let start = body.as_span().start();
        decode_escapes(body.as_str(), start, self.src).map(Arc::new)
    }
}

fn int_literal(text: &str, span: Span) -> PResult<i64> {
    text.replace('_', "").parse::<i64>().map_err(|_| {
        SyntaxError::new("integer literal too large", span, "does not fit in 64 bits")
            .with_help(format!("the largest int is {}", i64::MAX))
    })
}

fn float_literal(text: &str, span: Span) -> PResult<f64> {
    match text.replace('_', "").parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(SyntaxError::new(
            "float literal too large",
            span,
            "not a finite float",
        )),
    }
}

fn decode_escapes(body: &str, start: usize, src: SourceId) -> PResult<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next().unwrap_or((i, '\\'));
        out.push(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            'u' => unicode_escape(body, i, &mut chars, start, src)?,
            other => {
                let span = Span::new(src, start + i, start + i + 1 + other.len_utf8());
                return Err(SyntaxError::new(
                    format!("unknown escape `\\{other}`"),
                    span,
                    "unknown escape",
                )
                .with_help("valid escapes: \\n \\t \\r \\0 \\\\ \\\" \\u{1F600}"));
            }
        });
    }
    Ok(out)
}

/// `\u{1F600}`: 1 to 6 hex digits naming a Unicode scalar value.
fn unicode_escape(
    body: &str,
    backslash: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    start: usize,
    src: SourceId,
) -> PResult<char> {
    let mut end = backslash + 2;
    let mut hex = String::new();
    let braced = chars.next_if(|&(_, c)| c == '{').is_some();
    if braced {
        end += 1;
        while let Some((j, c)) = chars.next_if(|&(_, c)| c != '}' && c != '"') {
            hex.push(c);
            end = j + c.len_utf8();
        }
    }
    let closed = braced && chars.next_if(|&(_, c)| c == '}').is_some();
    if closed {
        end += 1;
    }
    let value = u32::from_str_radix(&hex, 16)
        .ok()
        .filter(|_| hex.len() <= 6);
    match value.and_then(char::from_u32).filter(|_| closed) {
        Some(c) => Ok(c),
        None => Err(SyntaxError::new(
            "invalid unicode escape",
            Span::new(src, start + backslash, start + end.min(body.len())),
            "invalid escape",
        )
        .with_help("write `\\u{` then 1 to 6 hex digits then `}`, e.g. `\\u{1F600}`")),
    }
}

// ---------------------------------------------------------------- concurrency

impl Builder {
    /// `join X [timeout T]`, `get X [timeout T]`, `wait X [timeout T]`.
    fn blocking_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut parts = self.parts(p);
        let target = Box::new(self.expr(parts.next()?)?);
        let timeout = match parts.items.next() {
            Some(q) => Some(Box::new(self.timeout(q)?)),
            None => None,
        };
        let kind = match rule {
            Rule::join_expr => ExprKind::Join { target, timeout },
            Rule::get_expr => ExprKind::Get { target, timeout },
            _ => ExprKind::Wait { target, timeout },
        };
        Ok(Spanned::new(kind, span))
    }

    /// `spawn [daemon] [thread|process] (CALL | BLOCK) [named EXPR]`.
    fn spawn_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let daemon = parts.next_if(Rule::spawn_daemon).is_some();
        let kind = match parts.next_if(Rule::spawn_kind) {
            Some(k) if k.as_str().starts_with("process") => SpawnKind::Process,
            _ => SpawnKind::Thread,
        };
        let body = self.spawn_body(parts.next()?)?;
        let name = match parts.items.next() {
            Some(q) => Some(self.expr(self.parts(q).next()?)?),
            None => None,
        };
        let spawn = Spawn {
            kind,
            daemon,
            body,
            name,
        };
        Ok(Spanned::new(ExprKind::Spawn(Box::new(spawn)), span))
    }

    fn spawn_body(&self, p: Pair<'_, Rule>) -> PResult<SpawnBody> {
        let inner = self.parts(p).next()?;
        if inner.as_rule() == Rule::block {
            let block = self.block(inner)?;
            let span = block.span;
            return Ok(SpawnBody::Block(Arc::new(fn_decl(
                None,
                Vec::new(),
                block,
                span,
            ))));
        }
        let call = self.expr(inner)?;
        let (callee, args) = split_call(call, "a function call or a block after `spawn`")?;
        Ok(SpawnBody::Call { callee, args })
    }

    /// `submit POOL, CALL`.
    fn submit_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let pool = Box::new(self.expr(parts.next()?)?);
        let call = self.expr(parts.next()?)?;
        let (callee, args) = split_call(call, "a function call after `submit pool,`")?;
        let callee = Box::new(callee);
        Ok(Spanned::new(ExprKind::Submit { pool, callee, args }, span))
    }
}

/// A call's callee and arguments; `obj.m(x)` gives the callee `obj.m`.
fn split_call(call: Expr, wanted: &str) -> PResult<(Expr, Vec<Expr>)> {
    match call.node {
        ExprKind::Call { callee, args } => Ok((*callee, args)),
        ExprKind::MethodCall {
            target,
            method,
            args,
        } => {
            let span = target.span.to(method.span);
            let name = method;
            Ok((Spanned::new(ExprKind::Field { target, name }, span), args))
        }
        _ => Err(
            SyntaxError::new(format!("expected {wanted}"), call.span, "not a call")
                .with_help("add the arguments: `worker()`, `worker(1, 2)`"),
        ),
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
        assert!(!continues("x = 1"));
        assert!(!continues("f(1)"));
        assert!(!continues("\"abc\nx"));
    }

    #[test]
    fn scanner_reports_unmatched_closers() {
        let err = scan("f(x))", SourceId(0)).error.map(|e| e.span.start);
        assert_eq!(err, Some(4));
        let err = scan("[1)", SourceId(0)).error.map(|e| e.message);
        assert_eq!(err.as_deref(), Some("expected `]`, found `)`"));
    }
}
