//! Errors as data, rendered only at the edge (CLI, REPL, fixture runner).
//!
//! Runtime helpers return span-less `RuntimeError`s; the evaluator attaches
//! the span of the expression that failed, and each function call on the way
//! out adds a "called from" note, so the report shows the call chain.

use crate::span::{SourceMap, Span};
use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, Severity, SourceCode, SourceSpan, SpanContents,
};
use std::fmt;
use std::sync::Arc;

/// A parse failure. `incomplete` is set when the input merely stops too early
/// (an open block, bracket or string): the REPL then asks for more lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    pub incomplete: bool,
}

impl SyntaxError {
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        SyntaxError {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            incomplete: false,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn incomplete(mut self) -> Self {
        self.incomplete = true;
        self
    }

    pub fn is_incomplete(&self) -> bool {
        self.incomplete
    }
}

/// Error kinds of the language contract; `raise` may use others (`error(kind, msg)`).
pub mod kind {
    pub const ERROR: &str = "Error";
    pub const TYPE: &str = "TypeError";
    pub const NAME: &str = "NameError";
    pub const INDEX: &str = "IndexError";
    pub const KEY: &str = "KeyError";
    pub const VALUE: &str = "ValueError";
    pub const ZERO_DIVISION: &str = "ZeroDivisionError";
    pub const OVERFLOW: &str = "OverflowError";
    pub const ASSERTION: &str = "AssertionError";
    pub const TIMEOUT: &str = "Timeout";
    pub const LOCK: &str = "LockError";
    pub const PROCESS: &str = "ProcessError";
    pub const DEADLOCK: &str = "Deadlock";
    pub const INTERRUPTED: &str = "Interrupted";
    /// `exit(code)`: not a failure but the end of the run; the status is
    /// in the message (see `RuntimeError::exit`).
    pub const EXIT: &str = "SystemExit";
    /// A file operation failed (`read_file`, ...): the path and the OS's reason.
    pub const IO: &str = "IOError";
}

/// Extra located text under a runtime error: a call-chain step, the place a
/// child was joined, one thread of a deadlock.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub message: String,
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeError {
    pub kind: Arc<str>,
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
    /// Innermost first.
    pub notes: Vec<Note>,
}

impl RuntimeError {
    /// The error that carries `exit(code)` out to the CLI. The code lives
    /// in the message so it crosses to a parent process like any error.
    pub fn exit(code: u8) -> Self {
        RuntimeError::new(kind::EXIT, format!("exit({})", code))
    }

    /// The status an `exit(code)` asked for; None for every other error.
    pub fn exit_status(&self) -> Option<i32> {
        if !self.is(kind::EXIT) {
            return None;
        }
        let code = self.message.strip_prefix("exit(")?.strip_suffix(')')?;
        code.parse::<u8>().ok().map(i32::from)
    }

    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        RuntimeError {
            kind: Arc::from(kind),
            message: message.into(),
            span: None,
            help: None,
            notes: Vec::new(),
        }
    }

    /// Attach a span unless one is already there (the innermost wins).
    pub fn at(mut self, span: Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, message: impl Into<String>, span: Option<Span>) -> Self {
        self.notes.push(Note {
            message: message.into(),
            span,
        });
        self
    }

    pub fn is(&self, kind: &str) -> bool {
        &*self.kind == kind
    }

    /// A deadlock, an interrupt or `exit()`: not a failure of the code that
    /// raised it but the end of the run (or REPL entry). `catch` does not
    /// stop it and no thread reports it as its own error.
    pub fn ends_the_run(&self) -> bool {
        self.is(kind::DEADLOCK) || self.is(kind::INTERRUPTED) || self.is(kind::EXIT)
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Anything a session can fail with.
#[derive(Debug, Clone)]
pub enum ConcError {
    Syntax(SyntaxError),
    Runtime(RuntimeError),
}

impl ConcError {
    /// Process exit status for this error (docs/language.md: 1 runtime, 2 syntax, 3 deadlock).
    pub fn exit_code(&self) -> i32 {
        match self {
            ConcError::Syntax(_) => 2,
            ConcError::Runtime(e) if e.is(kind::DEADLOCK) => 3,
            ConcError::Runtime(e) => e.exit_status().unwrap_or(1),
        }
    }

    pub fn is_incomplete(&self) -> bool {
        matches!(self, ConcError::Syntax(e) if e.incomplete)
    }

    pub fn kind(&self) -> &str {
        match self {
            ConcError::Syntax(_) => "SyntaxError",
            ConcError::Runtime(e) => &e.kind,
        }
    }
}

impl From<SyntaxError> for ConcError {
    fn from(e: SyntaxError) -> Self {
        ConcError::Syntax(e)
    }
}

impl From<RuntimeError> for ConcError {
    fn from(e: RuntimeError) -> Self {
        ConcError::Runtime(e)
    }
}

/// Render an error as a miette report: file, line and column, the source
/// line, a caret under the span, the kind as a stable code, help and notes.
pub fn render(err: &ConcError, sources: &SourceMap, color: bool) -> String {
    let report = match err {
        ConcError::Syntax(e) => Report {
            message: format!("SyntaxError: {}", e.message),
            code: "conc::syntax_error".into(),
            help: e.help.clone(),
            located: locate(sources, Some(e.span), &e.label),
            related: Vec::new(),
        },
        ConcError::Runtime(e) => runtime_report(e, sources),
    };
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    if handler.render_report(&mut out, &report).is_err() {
        out = format!("{}\n", report.message);
    }
    out
}

fn runtime_report(e: &RuntimeError, sources: &SourceMap) -> Report {
    let related = e
        .notes
        .iter()
        .map(|note| Report {
            message: note.message.clone(),
            code: String::new(),
            help: None,
            located: locate(sources, note.span, "here"),
            related: Vec::new(),
        })
        .collect();
    Report {
        message: format!("{}: {}", e.kind, e.message),
        code: format!("conc::{}", snake_case(&e.kind)),
        help: e.help.clone(),
        located: locate(sources, e.span, &e.kind),
        related,
    }
}

fn locate(sources: &SourceMap, span: Option<Span>, label: &str) -> Option<Located> {
    let span = span?;
    let source = sources.get(span.src)?;
    let (source, span) = Excerpt::around(&source.name, &source.text, span);
    Some(Located {
        source,
        span,
        label: label.to_string(),
    })
}

fn snake_case(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

struct Located {
    source: Excerpt,
    /// Offset and length in the excerpt's text.
    span: (usize, usize),
    label: String,
}

/// A line longer than this many characters is shown clipped to a window
/// around the span. miette pads with `{:width$}`, and a width past 65,535
/// panics inside `fmt` (and a caret 100,000 columns to the right helps
/// nobody), so no line handed to miette may be that long.
const MAX_LINE: usize = 240;
/// The window of a clipped line: this many characters before the span's
/// start (or end), and `WINDOW` in all.
const BEFORE: usize = 80;
const WINDOW: usize = 160;
/// Marks the clipped side of a line.
const CLIPPED: &str = "…";

/// The lines miette shows for one span (the span's lines and one of
/// context on either side), each long one clipped. Only this much of the
/// source is copied per report, and miette is told the real line numbers
/// and columns, so the header still says where in the file the error is.
struct Excerpt {
    name: String,
    text: String,
    /// 0-based number of the excerpt's first line in the source.
    first_line: usize,
    /// Per excerpt line: bytes of the source line left out before what is
    /// shown, less the marker that replaces them (0 when not clipped).
    shifts: Vec<isize>,
}

/// One source line as it appears in an excerpt.
struct ShownLine {
    /// Source offset of the line's first byte and length without `\n`.
    begin: usize,
    len: usize,
    /// Bytes of the line shown: `from..to`.
    from: usize,
    to: usize,
    /// Offset in the excerpt where the shown part starts (after a marker).
    at: usize,
}

impl Excerpt {
    /// The excerpt for `span` of `text`, and the span's place in it.
    fn around(name: &str, text: &str, span: Span) -> (Excerpt, (usize, usize)) {
        let start = floor_boundary(text, span.start as usize);
        let end = floor_boundary(text, span.end as usize).max(start);
        // miette shows one line of context before and after the span.
        let start_line = text[..start].matches('\n').count();
        let last_byte = floor_boundary(text, end.saturating_sub(1)).max(start);
        let end_line = start_line + text[start..last_byte].matches('\n').count();
        let first_line = start_line.saturating_sub(1);
        let line_begin = |offset: usize| text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let mut begin = line_begin(start);
        for _ in first_line..start_line {
            begin = line_begin(begin.saturating_sub(1));
        }
        let mut out = String::new();
        let mut shifts = Vec::new();
        let mut shown = Vec::new();
        for (i, line) in text[begin..].split_inclusive('\n').enumerate() {
            if first_line + i > end_line + 1 {
                break;
            }
            let body = line.strip_suffix('\n').unwrap_or(line);
            let line_end = begin + body.len();
            let anchor = if (begin..=line_end).contains(&start) {
                start - begin
            } else if (begin..=line_end).contains(&end) {
                end - begin
            } else {
                0
            };
            let (from, to) = window(body, anchor);
            let mut at = out.len();
            if from > 0 {
                out.push_str(CLIPPED);
                at = out.len();
            }
            out.push_str(&body[from..to]);
            if to < body.len() {
                out.push_str(CLIPPED);
            }
            if line.len() > body.len() {
                out.push('\n');
            }
            shifts.push(from as isize - marker_len(from));
            shown.push(ShownLine {
                begin,
                len: body.len(),
                from,
                to,
                at,
            });
            begin += line.len();
        }
        let place = |offset: usize| -> usize {
            for l in &shown {
                if offset <= l.begin + l.len {
                    let rel = offset.saturating_sub(l.begin).clamp(l.from, l.to);
                    return l.at + (rel - l.from);
                }
            }
            out.len()
        };
        let (a, b) = (place(start), place(end));
        let excerpt = Excerpt {
            name: name.to_string(),
            text: out,
            first_line,
            shifts,
        };
        (excerpt, (a, b.max(a) - a))
    }
}

fn marker_len(from: usize) -> isize {
    if from > 0 {
        CLIPPED.len() as isize
    } else {
        0
    }
}

/// The bytes of a line to show: all of it when short, else `WINDOW`
/// characters starting `BEFORE` characters ahead of `anchor`.
fn window(body: &str, anchor: usize) -> (usize, usize) {
    if body.chars().count() <= MAX_LINE {
        return (0, body.len());
    }
    let anchor_chars = body[..floor_boundary(body, anchor)].chars().count();
    let first = anchor_chars.saturating_sub(BEFORE);
    let byte_of = |n: usize| body.char_indices().nth(n).map_or(body.len(), |(i, _)| i);
    (byte_of(first), byte_of(first + WINDOW))
}

/// The nearest char boundary at or before `i` (clamped to the text).
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner =
            self.text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        // miette's column is in bytes from the start of the shown line;
        // in the source, the clipped bytes come before it.
        let shift = self.shifts.get(inner.line()).copied().unwrap_or(0);
        let column = (inner.column() as isize + shift).max(0) as usize;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            self.first_line + inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// One renderable diagnostic (and its related notes) for miette.
struct Report {
    message: String,
    code: String,
    help: Option<String>,
    located: Option<Located>,
    related: Vec<Report>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.code.is_empty() {
            None
        } else {
            Some(Box::new(&self.code))
        }
    }

    /// Notes under the main report (call chain, deadlocked threads) are advice.
    fn severity(&self) -> Option<Severity> {
        self.code.is_empty().then_some(Severity::Advice)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.located.as_ref().map(|l| &l.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let located = self.located.as_ref()?;
        let label = LabeledSpan::new_with_span(Some(located.label.clone()), located.span);
        Some(Box::new(std::iter::once(label)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn Diagnostic)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str, start: usize, end: usize) -> String {
        let sources = SourceMap::default();
        let id = sources.add("t.conc", text);
        let err = RuntimeError::new(kind::VALUE, "bad").at(Span::new(id, start, end));
        render(&ConcError::Runtime(err), &sources, false)
    }

    #[test]
    fn long_lines_are_clipped_and_keep_their_real_column() {
        let line = format!("{}x", " ".repeat(70_000));
        let out = rendered(&line, 70_000, 70_001);
        assert!(out.contains("[t.conc:1:70001]"), "{out}");
        assert!(
            out.contains('…') && out.lines().all(|l| l.chars().count() < 400),
            "{out}"
        );
    }

    #[test]
    fn any_span_renders_whatever_the_lines() {
        let wide = "界".repeat(40_000);
        let tabs = "\t".repeat(30_000);
        let text = format!("a\n{wide}\n{tabs}y\nshort\n{wide}");
        let len = text.len();
        for (start, end) in [
            (0, len),
            (2, len - 3),
            (len, len),
            (len - 1, len + 10),
            (2 + wide.len() + 1 + tabs.len(), len),
            (5, 4),
        ] {
            let out = rendered(&text, start, end);
            assert!(out.contains("ValueError"), "{start}..{end}: {out}");
            assert!(
                out.lines().all(|l| l.chars().count() < 1000),
                "{start}..{end}"
            );
        }
    }

    #[test]
    fn short_sources_render_as_before() {
        let out = rendered("let x = 1\nprint(x + nil)\n", 16, 23);
        assert!(
            out.contains("[t.conc:2:7]") && out.contains("print(x + nil)"),
            "{out}"
        );
        assert!(!out.contains('…'), "{out}");
    }
}
