//! Errors as data, rendered only at the edge (CLI, REPL, fixture runner).
//!
//! Runtime helpers return span-less `RuntimeError`s; the evaluator attaches
//! the span of the expression that failed, and each function call on the way
//! out adds a "called from" note, so the report shows the call chain.

use crate::span::{SourceMap, Span};
use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity,
    SourceCode,
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
            ConcError::Runtime(_) => 1,
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
    Some(Located {
        source: NamedSource::new(source.name.clone(), source.text.to_string()),
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
    source: NamedSource<String>,
    span: Span,
    label: String,
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
        let label = LabeledSpan::new_with_span(
            Some(located.label.clone()),
            (located.span.start as usize, located.span.len()),
        );
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
