//! f-strings: `f"{name} took {t:.2f}s"`. The body is split by the one
//! template splitter (`eval::format`, which `.format()` uses too); text
//! decodes its escapes as a string's does, and each field's expression is
//! parsed on its own with spans in the whole source, so an error points
//! inside the string.

use super::super::{errors, internal, python, scanner, ConcParser, Rule};
use super::literal::decode_escapes;
use super::{Builder, PResult};
use crate::ast::{Expr, ExprKind, FPiece};
use crate::diagnostics::SyntaxError;
use crate::eval::format::{parse_spec, split_template, Field, Piece};
use crate::span::Span;
use pest::iterators::Pair;
use pest::Parser as _;
use std::ops::Range;
use std::sync::Arc;

const SPEC_FORM: &str = "a format spec is [[fill]align][sign][#][0][width][,][.precision][type], \
                         e.g. `{t:.2f}`, `{n:>5}`, `{total:,}`";

impl Builder {
    pub(super) fn fstring(&self, p: Pair<'_, Rule>) -> PResult<ExprKind> {
        let body = self.parts(p).next()?;
        let start = self.offset.get() + body.as_span().start();
        let text = body.as_str();
        let at = |r: Range<usize>| Span::new(self.src, start + r.start, start + r.end);
        let pieces = split_template(text, true).map_err(|e| {
            SyntaxError::new(e.message, at(e.at), "in this f-string").with_help(e.help)
        })?;
        let mut out = Vec::new();
        let mut pending = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(r) => {
                    let decoded = decode_escapes(&text[r.clone()], start + r.start, self.src)?;
                    pending.push_str(&decoded);
                }
                Piece::Brace(c) => pending.push(c),
                Piece::Field(f) => {
                    if f.self_documenting {
                        pending.push_str(self_doc_text(text, &f));
                    }
                    if !pending.is_empty() {
                        out.push(FPiece::Text(Arc::from(std::mem::take(&mut pending))));
                    }
                    out.push(self.field(text, start, f)?);
                }
            }
        }
        if !pending.is_empty() || out.is_empty() {
            out.push(FPiece::Text(Arc::from(pending)));
        }
        Ok(ExprKind::FString(out))
    }

    fn field(&self, text: &str, start: usize, f: Field) -> PResult<FPiece> {
        let at = |r: Range<usize>| Span::new(self.src, start + r.start, start + r.end);
        let source = &text[f.expr.clone()];
        if source.trim().is_empty() {
            return Err(SyntaxError::new(
                "an f-string field needs an expression",
                at(f.whole.clone()),
                "empty field",
            )
            .with_help("write `{name}`; for a literal brace write `{{` or `}}`"));
        }
        let expr = self.field_expr(source, start + f.expr.start)?;
        let spec = &text[f.spec.clone()];
        if let Err(e) = parse_spec(spec) {
            let bad = f.spec.start + e.at.start..f.spec.start + e.at.end.max(e.at.start + 1);
            return Err(
                SyntaxError::new(e.message, at(bad), "bad format spec").with_help(SPEC_FORM)
            );
        }
        // `{x=}` shows the repr unless a conversion or a spec is given (as
        // Python does).
        let conversion = match f.conversion {
            None if f.self_documenting && spec.is_empty() => Some('r'),
            c => c,
        };
        Ok(FPiece::Field {
            expr,
            conversion,
            spec: Arc::from(spec),
        })
    }

    /// A field's expression, parsed alone; `offset` is where it starts in
    /// the source.
    fn field_expr(&self, source: &str, offset: usize) -> PResult<Expr> {
        // A string may span lines: a newline inside the braces is a blank.
        let text = source.replace('\n', "\r");
        let scanned = scanner::scan(&text, self.src);
        let shift = |mut e: SyntaxError| {
            let (from, to) = (e.span.start as usize, e.span.end as usize);
            e.span = Span::new(self.src, offset + from, offset + to);
            // More lines cannot complete a field: the string is closed.
            e.incomplete = false;
            if e.help.is_none() {
                e.help =
                    Some("the part inside `{ }` is one expression: `f\"{n + 1} items\"`".into());
            }
            e
        };
        if let Some(err) = scanned.error.clone() {
            return Err(shift(err));
        }
        let mut pairs = ConcParser::parse(Rule::fstring_expr, &scanned.text).map_err(|e| {
            let err = errors::pest_error(e, &text, &scanned, self.src);
            shift(python::recognise(err, &text))
        })?;
        let expr = pairs
            .next()
            .and_then(|p| p.into_inner().find(|q| q.as_rule() == Rule::expr))
            .ok_or_else(|| internal(Span::new(self.src, offset, offset), "f-string field"))?;
        let saved = self.offset.replace(offset);
        let result = self.expr(expr);
        self.offset.set(saved);
        result
    }
}

/// The text `{x = }` prints before the value: the expression, the `=` and
/// the blanks after it.
fn self_doc_text<'t>(text: &'t str, f: &Field) -> &'t str {
    let after = f.expr.end + 1;
    let rest = &text[after..];
    let blanks = rest.len() - rest.trim_start().len();
    &text[f.expr.start..after + blanks]
}
