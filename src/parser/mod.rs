//! The only module that touches pest: source text -> AST, pest errors -> SyntaxError.
//!
//! Three steps, one file each:
//! 1. [`scanner`] copies the source, blanking (to `\r`) every newline that does not end a
//!    statement (inside `( )`/`[ ]`, after a binary operator or a comma), and
//!    finds what pest reports badly: unterminated strings, unmatched closing
//!    brackets, and whether the input stops in the middle of a statement.
//! 2. pest parses the copy with `grammar/conc.pest` (same byte offsets, so
//!    every pest position is a valid source offset); [`errors`] words its
//!    failures.
//! 3. [`builder`] turns pairs into the AST, checking what the grammar cannot:
//!    escapes, literal ranges, assignment targets, spawn bodies, duplicates.
//!
//! Resolution fields (`Res`, `nslots`, `upvals`, `captured`) are left at their
//! defaults: the resolver fills them.

mod builder;
mod errors;
mod python;
mod scanner;

use crate::ast::Program;
use crate::diagnostics::SyntaxError;
use crate::span::{SourceId, Span};
use pest::Parser as _;

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

/// Parse a whole file, `-c` string or REPL entry.
pub fn parse(source: &str, src: SourceId) -> Result<Program, SyntaxError> {
    // Spans are u32 byte offsets: past 4 GiB they would point elsewhere.
    if source.len() > u32::MAX as usize {
        return Err(SyntaxError::new(
            "this source is larger than 4 GiB",
            Span::new(src, 0, 0),
            "here",
        ));
    }
    if let Some(program) = cached(source, src) {
        return Ok(program);
    }
    let parsed = parse_on_a_big_stack(source, src);
    match &parsed {
        Ok(program) if source.len() <= KEPT_TEXT => remember(source, src, program),
        _ => {}
    }
    parsed
}

thread_local! {
    /// The last few programs parsed on this OS thread, by their text: a
    /// simulated child process loads its parent's sources, which the same
    /// OS thread has just parsed (a parse is a function of text and id).
    static PARSED: std::cell::RefCell<Vec<(SourceId, String, Program)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

const KEPT_PARSES: usize = 4;
/// Longer texts are not kept (a copy of a huge text would double it).
const KEPT_TEXT: usize = 1 << 20;

fn cached(source: &str, src: SourceId) -> Option<Program> {
    PARSED.with(|p| {
        p.borrow()
            .iter()
            .find(|(id, text, _)| *id == src && text == source)
            .map(|(_, _, program)| program.clone())
    })
}

fn remember(source: &str, src: SourceId, program: &Program) {
    PARSED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() == KEPT_PARSES {
            p.remove(0);
        }
        p.push((src, source.to_string(), program.clone()));
    })
}

/// Parse on a big stack of its own, switched to on this thread (whatever
/// stack the caller has: a small thread's, a fiber's of the controlled
/// engine): no thread start, and the same nesting gets through everywhere.
fn parse_on_a_big_stack(source: &str, src: SourceId) -> Result<Program, SyntaxError> {
    let parsed = std::panic::catch_unwind(|| {
        stacker::grow(PARSER_STACK, || {
            parse_here(source, src).map_err(|e| onto_last_char(e, source))
        })
    });
    parsed.unwrap_or_else(|_| Err(internal(Span::new(src, 0, 0), "the parser crashed")))
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
    let scanned = scanner::scan(source, src);
    let failure = match ConcParser::parse(Rule::program, &scanned.text) {
        Ok(mut pairs) => match scanned.error {
            Some(err) => err,
            None => {
                let program = pairs
                    .next()
                    .ok_or_else(|| internal(Span::new(src, 0, 0), "no program"))?;
                return builder::Builder::new(src).program(program);
            }
        },
        Err(err) => {
            let from_pest = errors::pest_error(err, source, &scanned, src);
            choose_error(from_pest, scanned.error.clone())
        }
    };
    let failure = python::recognise(failure, source);
    Err(blame_multiline_string(
        failure,
        scanned.multiline_string,
        source,
    ))
}

/// A string may span lines, so a missing `"` turns the code after it into
/// text and the parse fails further on: name the string that ran on.
fn blame_multiline_string(err: SyntaxError, string_at: Option<usize>, source: &str) -> SyntaxError {
    match string_at {
        Some(at) if at < err.span.start as usize => {
            let line = source[..at].matches('\n').count() + 1;
            err.with_help(format!(
                "the string that starts on line {line} runs across lines; if its closing `\"` \
                 is missing, the code after it is read as text"
            ))
        }
        _ => err,
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
