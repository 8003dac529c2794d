//! Step 3: pairs -> AST, checking what the grammar cannot (escapes, literal
//! ranges, assignment targets, spawn bodies, duplicate parameters), one file
//! per kind of construct.

mod concurrency;
mod expr;
mod fstring;
mod literal;
mod stmt;

use super::python::{PythonNames, PythonUse};
use super::{internal, PResult, Rule};
use crate::ast::{Block, Decl, ExprKind, Ident, Program, Stmt, StmtKind};
use crate::diagnostics::SyntaxError;
use crate::span::{SourceId, Span, Spanned};
use pest::iterators::Pair;
use std::cell::Cell;
use std::sync::Arc;

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
            | kw_finally
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
            | kw_on
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

pub(super) struct Builder {
    src: SourceId,
    /// An upper bound of the AST depth at the node being built.
    depth: Cell<usize>,
    /// Declarations and Python-looking names, checked once all is built.
    python: PythonNames,
    /// Where the text being built starts in the source: 0, except while an
    /// f-string field, parsed on its own, is built.
    offset: Cell<usize>,
}

impl Builder {
    pub(super) fn new(src: SourceId) -> Builder {
        Builder {
            src,
            depth: Cell::new(0),
            python: PythonNames::default(),
            offset: Cell::new(0),
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
        let offset = self.offset.get();
        Span::new(self.src, offset + s.start(), offset + s.end())
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

    pub(super) fn program(&self, p: Pair<'_, Rule>) -> PResult<Program> {
        let span = self.span(&p);
        let text = p.as_str();
        let stmts = self.stmts(p)?;
        let offset = span.start as usize;
        self.python.check(|s: Span| {
            text.get(s.start as usize - offset..s.end as usize - offset)
                .unwrap_or_default()
                .to_string()
        })?;
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
            Rule::raise_stmt => self.raise_stmt(p)?,
            Rule::assert_stmt => self.assert_stmt(p)?,
            Rule::lock_stmt => self.lock_stmt(p)?,
            Rule::put_stmt => self.put_stmt(p)?,
            Rule::select_stmt => self.select_stmt(p)?,
            Rule::expr_stmt => {
                let kind = self.expr_stmt(p)?;
                self.note_pass(&kind);
                kind
            }
            _ => return Err(internal(span, "unknown statement")),
        };
        Ok(Spanned::new(kind, span))
    }
}

impl Builder {
    /// A declared name (a `let`, a parameter, a function...).
    fn declare(&self, ident: Ident) -> Decl {
        self.python.declare(&ident.name);
        Decl::new(ident)
    }

    /// `raise X`; `raise ValueError("...")` is noted as a Python habit.
    fn raise_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let value = self.expr(self.parts(p).next()?)?;
        if let ExprKind::Call { callee, .. } = &value.node {
            if let ExprKind::Var(v) = &callee.node {
                if super::python::is_exception_class(&v.name) {
                    self.python
                        .used(PythonUse::RaiseClass(v.name.clone()), callee.span);
                }
            }
        }
        Ok(StmtKind::Raise(value))
    }

    /// An expression statement that is the bare name `pass`.
    fn note_pass(&self, stmt: &StmtKind) {
        if let StmtKind::Expr(e) = stmt {
            if matches!(&e.node, ExprKind::Var(v) if &*v.name == "pass") {
                self.python.used(PythonUse::Pass, e.span);
            }
        }
    }

    fn note_value(&self, name: &str, span: Span) {
        self.python.value(name, span);
    }
}
