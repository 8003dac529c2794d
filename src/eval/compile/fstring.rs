//! Compiling f-strings: each field's spec is parsed once, here; a field
//! without a spec or conversion is `str(v)`.

use super::{Compiler, ExprCode};
use crate::ast::FPiece;
use crate::eval::format::{convert_and_format, parse_spec, Spec};
use crate::eval::value::Value;

enum Part {
    Text(std::sync::Arc<str>),
    Field {
        value: ExprCode,
        conversion: Option<char>,
        spec: Spec,
        span: crate::span::Span,
    },
}

impl Compiler<'_> {
    pub(super) fn fstring(&self, pieces: &[FPiece]) -> ExprCode {
        let parts: Box<[Part]> = pieces
            .iter()
            .map(|piece| match piece {
                FPiece::Text(t) => Part::Text(t.clone()),
                FPiece::Field {
                    expr,
                    conversion,
                    spec,
                } => Part::Field {
                    value: self.expr(expr),
                    conversion: *conversion,
                    // The parser has checked the spec.
                    spec: parse_spec(spec).unwrap_or(Spec::EMPTY),
                    span: expr.span,
                },
            })
            .collect();
        Box::new(move |it, f| {
            let mut out = String::new();
            for part in parts.iter() {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Field {
                        value,
                        conversion,
                        spec,
                        span,
                    } => {
                        let v = value(it, f)?;
                        match (&v, conversion, spec.is_empty()) {
                            (Value::Str(s), None, true) => out.push_str(s),
                            _ => out.push_str(
                                &convert_and_format(&v, *conversion, spec)
                                    .map_err(|e| Box::new(e.at(*span)))?,
                            ),
                        }
                    }
                }
            }
            Ok(Value::Str(std::sync::Arc::new(out)))
        })
    }
}
