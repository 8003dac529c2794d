//! Primaries: literals (numbers, strings and their escapes), names,
//! lambdas, lists, maps, parentheses.

use super::super::{internal, Rule};
use super::stmt::fn_decl;
use super::{Builder, PResult};
use crate::ast::{Expr, ExprKind, FnDecl, Res, VarRef};
use crate::diagnostics::SyntaxError;
use crate::span::{SourceId, Span, Spanned};
use pest::iterators::Pair;
use std::sync::Arc;

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
    pub(super) fn primary(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::nil_lit => ExprKind::Nil,
            Rule::true_lit => ExprKind::Bool(true),
            Rule::false_lit => ExprKind::Bool(false),
            Rule::int => ExprKind::Int(int_literal(p.as_str(), span)?),
            Rule::float => ExprKind::Float(float_literal(p.as_str(), span)?),
            Rule::string => ExprKind::Str(self.string(p)?),
            Rule::fstring => self.fstring(p)?,
            Rule::ident | Rule::lock_var => {
                self.note_value(p.as_str(), span);
                return Ok(var(p.as_str(), span));
            }
            Rule::lambda => ExprKind::Fn(Arc::new(self.lambda(p)?)),
            Rule::list => ExprKind::List(self.args(p)?),
            Rule::map => ExprKind::Map(self.map(p)?),
            // The parentheses belong to the expression's span.
            Rule::paren => self.expr(self.parts(p).next()?)?.node,
            _ => return Err(internal(span, "unknown expression")),
        };
        Ok(Spanned::new(kind, span))
    }

    pub(super) fn lambda(&self, p: Pair<'_, Rule>) -> PResult<FnDecl> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let params = self.params(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(fn_decl(None, params, body, span))
    }

    pub(super) fn map(&self, p: Pair<'_, Rule>) -> PResult<Vec<(Expr, Expr)>> {
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
    pub(super) fn string(&self, p: Pair<'_, Rule>) -> PResult<Arc<String>> {
        let body = self.parts(p).next()?;
        let start = self.offset.get() + body.as_span().start();
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

pub(super) fn decode_escapes(body: &str, start: usize, src: SourceId) -> PResult<String> {
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
            '\n' => {
                let span = Span::new(src, start + i, start + i + 1);
                return Err(SyntaxError::new(
                    "a `\\` at the end of a line in a string",
                    span,
                    "nothing to escape here",
                )
                .with_help("a string may span lines as it is; remove the `\\`"));
            }
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
