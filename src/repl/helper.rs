//! The rustyline `Helper`: continuation (Validator), colours and bracket
//! matching (Highlighter), and tab completion (Completer).

use super::highlight::{self, KEYWORDS};
use crate::ast::StmtKind;
use crate::diagnostics::ConcError;
use crate::runtime::Context;
use crate::span::SourceId;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Helper, Hinter};
use std::borrow::Cow;
use std::sync::Arc;

/// Fields and methods of handles and data values, offered after a `.`.
const METHODS: &[&str] = &[
    "acquire",
    "alive",
    "append",
    "cancel",
    "capacity",
    "clear",
    "copy",
    "count",
    "daemon",
    "done",
    "empty",
    "endswith",
    "exitcode",
    "extend",
    "find",
    "full",
    "get",
    "host",
    "ident",
    "index",
    "insert",
    "is_set",
    "items",
    "join",
    "keys",
    "kind",
    "len",
    "locked",
    "lower",
    "map",
    "message",
    "name",
    "native_id",
    "notify",
    "notify_all",
    "parties",
    "pid",
    "pop",
    "release",
    "remove",
    "replace",
    "result",
    "reverse",
    "set",
    "shutdown",
    "size",
    "sort",
    "split",
    "startswith",
    "strip",
    "submit",
    "terminate",
    "then",
    "update",
    "upper",
    "values",
    "waiting",
];

/// Meta commands, completed at the start of a line.
pub const META: &[&str] = &[":help", ":load", ":threads", ":reset", ":quit"];

#[derive(Helper, Hinter)]
pub struct ReplHelper {
    /// The current session's context (swapped on `:reset`): its globals
    /// feed completion.
    pub ctx: Arc<Context>,
    pub color: bool,
}

/// True when `text` is a syntax error only because it stops too early (an
/// open block, bracket or string): the REPL then asks for more lines.
pub fn is_incomplete(text: &str) -> bool {
    match crate::parser::parse(text, SourceId(u32::MAX)) {
        Ok(_) => false,
        Err(e) => ConcError::from(e).is_incomplete(),
    }
}

/// True when `text` ends with an `if` chain that has no `else` yet and whose
/// closing `}` is on a line of its own: `else {` may come on the next line,
/// as a script allows, so the REPL waits for that line before running it.
/// A one-line `if x { ... }` runs at once.
pub fn may_continue_with_else(text: &str) -> bool {
    let Ok(program) = crate::parser::parse(text, SourceId(u32::MAX)) else {
        return false;
    };
    let Some(last) = program.stmts.last() else {
        return false;
    };
    let spans_lines = text
        .get(last.span.start as usize..last.span.end as usize)
        .is_some_and(|code| code.contains('\n'));
    matches!(
        last.node,
        StmtKind::If {
            otherwise: None,
            ..
        }
    ) && spans_lines
}

/// A line that continues the `if` before it.
pub fn starts_with_else(line: &str) -> bool {
    let rest = line.trim_start();
    rest.strip_prefix("else")
        .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
}

impl Validator for ReplHelper {
    /// A single typed line that is incomplete is accepted here and the REPL
    /// loop asks for the rest with a `... ` prompt (rustyline cannot show a
    /// continuation prompt inside one buffer). A buffer that already holds
    /// several lines (a recalled history entry, a paste) keeps editing in
    /// place until it is complete.
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if input.contains('\n') && !input.starts_with(':') && is_incomplete(input) {
            return Ok(ValidationResult::Incomplete);
        }
        Ok(ValidationResult::Valid(None))
    }
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, pos: usize) -> Cow<'l, str> {
        if !self.color || line.starts_with(':') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight::colorize(line, pos))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        // Redraw on every edit and cursor move so bracket matching follows.
        self.color
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let word = &head[start..];
        let after_dot = head[..start].ends_with('.');
        let words = self.candidates(word, after_dot, start == 0);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl ReplHelper {
    /// Names starting with `word`: methods after a dot; meta commands at
    /// the start of a line; otherwise keywords and globals (builtins too).
    fn candidates(&self, word: &str, after_dot: bool, line_start: bool) -> Vec<String> {
        let mut out: Vec<String> = if after_dot {
            METHODS.iter().map(|m| m.to_string()).collect()
        } else if word.starts_with(':') {
            if !line_start {
                return Vec::new();
            }
            META.iter().map(|m| m.to_string()).collect()
        } else {
            let globals = self
                .ctx
                .globals
                .defined()
                .into_iter()
                .map(|(n, _)| n.to_string());
            KEYWORDS
                .iter()
                .map(|k| k.to_string())
                .chain(globals)
                .collect()
        };
        out.retain(|c| c.starts_with(word));
        out.sort();
        out.dedup();
        out
    }
}
