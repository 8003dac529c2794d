//! The concurrency expressions: `spawn`, `join`/`get`/`wait`, `submit`.

use super::super::Rule;
use super::stmt::fn_decl;
use super::{Builder, PResult};
use crate::ast::{Expr, ExprKind, Spawn, SpawnBody, SpawnKind};
use crate::diagnostics::SyntaxError;
use crate::span::Spanned;
use pest::iterators::Pair;
use std::sync::Arc;

impl Builder {
    /// `join X [timeout T]`, `get X [timeout T]`, `wait X [timeout T]`.
    pub(super) fn blocking_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut parts = self.parts(p);
        let target = Box::new(self.expr(parts.next()?)?);
        let timeout = match parts.items.next() {
            Some(q) => Some(Box::new(self.timeout(q)?)),
            None => None,
        };
        let kind = match rule {
            Rule::join_expr => ExprKind::Join { target, timeout },
            Rule::get_expr => ExprKind::Get { target, timeout },
            _ => ExprKind::Wait { target, timeout },
        };
        Ok(Spanned::new(kind, span))
    }

    /// `spawn [daemon] [thread|process] (CALL | BLOCK) [named EXPR] [on EXPR]`
    /// (the last two in either order).
    pub(super) fn spawn_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let daemon = parts.next_if(Rule::spawn_daemon).is_some();
        let kind = match parts.next_if(Rule::spawn_kind) {
            Some(k) if k.as_str().starts_with("process") => SpawnKind::Process,
            _ => SpawnKind::Thread,
        };
        let body = self.spawn_body(parts.next()?)?;
        let (mut name, mut on) = (None, None);
        for q in parts.items.by_ref() {
            let which = q.as_rule();
            let at = self.span(&q);
            let e = self.expr(self.parts(q).next()?)?;
            if which == Rule::spawn_on {
                if kind != SpawnKind::Process {
                    return Err(SyntaxError::new(
                        "only a process can run on another host",
                        at,
                        "a thread runs in this process",
                    )
                    .with_help("write `spawn process f() on HOST`"));
                }
                on = Some(e);
            } else {
                name = Some(e);
            }
        }
        let spawn = Spawn {
            kind,
            daemon,
            body,
            name,
            on,
        };
        Ok(Spanned::new(ExprKind::Spawn(Box::new(spawn)), span))
    }

    pub(super) fn spawn_body(&self, p: Pair<'_, Rule>) -> PResult<SpawnBody> {
        let inner = self.parts(p).next()?;
        if inner.as_rule() == Rule::block {
            let block = self.block(inner)?;
            let span = block.span;
            return Ok(SpawnBody::Block(Arc::new(fn_decl(
                None,
                Vec::new(),
                block,
                span,
            ))));
        }
        let call = self.expr(inner)?;
        let (callee, args) = split_call(call, "a function call or a block after `spawn`")?;
        Ok(SpawnBody::Call { callee, args })
    }

    /// `submit POOL, CALL`.
    pub(super) fn submit_expr(&self, p: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        let mut parts = self.parts(p);
        let pool = Box::new(self.expr(parts.next()?)?);
        let call = self.expr(parts.next()?)?;
        let (callee, args) = split_call(call, "a function call after `submit pool,`")?;
        let callee = Box::new(callee);
        Ok(Spanned::new(ExprKind::Submit { pool, callee, args }, span))
    }
}

/// A call's callee and arguments; `obj.m(x)` gives the callee `obj.m`.
fn split_call(call: Expr, wanted: &str) -> PResult<(Expr, Vec<Expr>)> {
    match call.node {
        ExprKind::Call { callee, args } => Ok((*callee, args)),
        ExprKind::MethodCall {
            target,
            method,
            args,
        } => {
            let span = target.span.to(method.span);
            let name = method;
            Ok((Spanned::new(ExprKind::Field { target, name }, span), args))
        }
        _ => Err(
            SyntaxError::new(format!("expected {wanted}"), call.span, "not a call")
                .with_help("add the arguments: `worker()`, `worker(1, 2)`"),
        ),
    }
}
