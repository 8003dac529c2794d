//! Statements: `let`, `fn`, `if`, loops, `try`, `lock`, `put`, `select`,
//! assignments.

use super::super::Rule;
use super::{Builder, PResult};
use crate::ast::{
    BinOp, Block, Decl, Expr, ExprKind, FnDecl, Ident, Pattern, SelectCase, SelectKind, StmtKind,
};
use crate::diagnostics::SyntaxError;
use crate::span::Span;
use pest::iterators::Pair;
use std::sync::Arc;

impl Builder {
    pub(super) fn let_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.pattern(parts.next()?)?;
        let value = self.expr(parts.next()?)?;
        Ok(StmtKind::Let { target, value })
    }

    /// `x` or `[a, [b, c]]`. Nesting counts towards the depth limit like
    /// an expression's: the resolver and evaluator walk patterns recursively.
    pub(super) fn pattern(&self, p: Pair<'_, Rule>) -> PResult<Pattern> {
        let span = self.span(&p);
        self.deeper(1, span, || self.pattern_at(p))
    }

    fn pattern_at(&self, p: Pair<'_, Rule>) -> PResult<Pattern> {
        let inner = self.parts(p).next()?;
        match inner.as_rule() {
            Rule::ident => Ok(Pattern::Name(self.declare(self.ident(&inner)))),
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

    pub(super) fn fn_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let name = self.ident(&parts.next()?);
        let params = self.params(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        let func = fn_decl(Some(name.clone()), params, body, span);
        Ok(StmtKind::Fn {
            decl: self.declare(name),
            func: Arc::new(func),
        })
    }

    /// `(a, b)`; a name may appear only once (a set, so that a very long
    /// parameter list still takes linear time).
    pub(super) fn params(&self, p: Pair<'_, Rule>) -> PResult<Vec<Decl>> {
        let mut params: Vec<Decl> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for q in self.parts(p).items {
            let ident = self.ident(&q);
            if !seen.insert(ident.name.clone()) {
                return Err(SyntaxError::new(
                    format!("duplicate parameter `{}`", ident.name),
                    ident.span,
                    "this name is already a parameter",
                ));
            }
            params.push(self.declare(ident));
        }
        Ok(params)
    }

    pub(super) fn if_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
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

    pub(super) fn while_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let cond = self.expr(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(StmtKind::While { cond, body })
    }

    pub(super) fn for_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.pattern(parts.next()?)?;
        let iter = self.expr(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(StmtKind::For { target, iter, body })
    }

    pub(super) fn return_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let value = self.parts(p).items.next().map(|q| self.expr(q));
        Ok(StmtKind::Return(value.transpose()?))
    }

    pub(super) fn try_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let body = self.block(parts.next()?)?;
        let (mut name, mut handler, mut finally) = (None, None, None);
        if let Some(clause) = parts.next_if(Rule::catch_clause) {
            let mut inner = self.parts(clause);
            name = inner
                .next_if(Rule::ident)
                .map(|q| self.declare(self.ident(&q)));
            handler = Some(self.block(inner.next()?)?);
        }
        if let Some(clause) = parts.next_if(Rule::finally_clause) {
            finally = Some(self.block(self.parts(clause).next()?)?);
        }
        Ok(StmtKind::Try {
            body,
            name,
            handler,
            finally,
        })
    }

    pub(super) fn assert_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let cond = self.expr(parts.next()?)?;
        let message = parts.items.next().map(|q| self.expr(q)).transpose()?;
        Ok(StmtKind::Assert { cond, message })
    }

    pub(super) fn lock_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let mut parts = self.parts(p);
        let target = self.expr(parts.next()?)?;
        let body = self.block(parts.next()?)?;
        Ok(StmtKind::Lock { target, body })
    }

    pub(super) fn put_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
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
    pub(super) fn timeout(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        self.expr(self.parts(p).next()?)
    }

    pub(super) fn select_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
        let cases = self
            .parts(p)
            .items
            .map(|q| self.select_case(q))
            .collect::<PResult<_>>()?;
        Ok(StmtKind::Select { cases })
    }

    pub(super) fn select_case(&self, p: Pair<'_, Rule>) -> PResult<SelectCase> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let head = parts.next()?;
        let rule = head.as_rule();
        let mut inner = self.parts(head);
        let kind = match rule {
            Rule::case_get => SelectKind::Get {
                name: inner
                    .next_if(Rule::ident)
                    .map(|q| self.declare(self.ident(&q))),
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
    pub(super) fn expr_stmt(&self, p: Pair<'_, Rule>) -> PResult<StmtKind> {
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

pub(super) fn fn_decl(name: Option<Ident>, params: Vec<Decl>, body: Block, span: Span) -> FnDecl {
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
    let help = match &target.node {
        ExprKind::Field { name, .. } => super::super::python::field_assignment(&name.name),
        _ => None,
    };
    let help = help.unwrap_or("only a name (`x = 1`) or an index (`xs[i] = 1`) can be assigned");
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
    .with_help(help))
}
