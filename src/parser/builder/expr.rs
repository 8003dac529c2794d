//! Operators (precedence levels, chains, prefix operators) and postfix
//! calls, subscripts and fields.

use super::super::{internal, Rule};
use super::{Builder, PResult};
use crate::ast::{BinOp, Expr, ExprKind, Ident, UnaryOp};
use crate::diagnostics::SyntaxError;
use crate::span::{Span, Spanned};
use pest::iterators::Pair;

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
    pub(super) fn expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let p = descend(p);
        let levels = 1 + chain_len(&p);
        self.deeper(levels, self.span(&p), || self.expr_at(p))
    }

    pub(super) fn expr_at(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
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
    pub(super) fn left_chain(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
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
    pub(super) fn cmp_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
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
    pub(super) fn not_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        self.prefixed(p, UnaryOp::Not)
    }

    pub(super) fn neg_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        self.prefixed(p, UnaryOp::Neg)
    }

    pub(super) fn prefixed(&self, p: Pair<'_, Rule>, op: UnaryOp) -> PResult<Expr> {
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
    pub(super) fn power(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
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
    pub(super) fn postfix(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
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

    pub(super) fn args(&self, p: Pair<'_, Rule>) -> PResult<Vec<Expr>> {
        self.parts(p).items.map(|q| self.expr(q)).collect()
    }

    pub(super) fn call(&self, callee: Expr, args: Pair<'_, Rule>) -> PResult<Expr> {
        let span = callee.span.to(self.span(&args));
        let args = self.args(args)?;
        let callee = Box::new(callee);
        Ok(Spanned::new(ExprKind::Call { callee, args }, span))
    }

    pub(super) fn method_call(
        &self,
        target: Expr,
        method: Ident,
        args: Pair<'_, Rule>,
    ) -> PResult<Expr> {
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
    pub(super) fn subscript(&self, target: Expr, p: Pair<'_, Rule>) -> PResult<Expr> {
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
