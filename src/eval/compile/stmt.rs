//! Compiling statements: the dispatch, and the statements that neither
//! assign (`assign.rs`), loop (`loops.rs`) nor block (`concurrency.rs`).

use super::fused::{
    by_int_test, local_slot, Build, IfOf, IfReturnOf, IntTest, Operand, TestOf, WithIntTest,
};
use super::store::put;
use super::CondCode;
use super::{tri, Block, Compiler, Ctl, StmtCode};
use crate::ast::{self, BinOp, Decl, Expr, ExprKind, Pattern, Res, Stmt, StmtKind};
use crate::diagnostics::{kind, RuntimeError};
use crate::eval::globals::{GlobalRef, GlobalWrite};
use crate::eval::value::Value;
use crate::eval::{describe, Frame, Interp, R};
use crate::runtime::footprint::Shared;
use crate::span::Span;
use std::sync::Arc;

impl Compiler<'_> {
    pub(super) fn stmt(&self, s: &Stmt) -> StmtCode {
        match &s.node {
            StmtKind::Expr(e) => self.expr_stmt(e),
            StmtKind::Let { target, value } => self.let_stmt(target, value),
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value),
            StmtKind::Fn { decl, func } => self.fn_stmt(decl, func),
            StmtKind::If {
                branches,
                otherwise,
            } => self.if_stmt(branches, otherwise.as_ref()),
            StmtKind::While { cond, body } => self.while_stmt(cond, body),
            StmtKind::For { target, iter, body } => self.for_stmt(target, iter, body),
            StmtKind::Return(value) => self.return_stmt(value.as_ref()),
            StmtKind::Break => Box::new(|_, _| Ctl::Break),
            StmtKind::Continue => Box::new(|_, _| Ctl::Continue),
            StmtKind::Try {
                body,
                name,
                handler,
                finally,
            } => {
                let caught: StmtCode = match handler {
                    Some(handler) => self.try_stmt(body, name.as_ref(), handler),
                    None => {
                        let body = self.block(body);
                        let code: StmtCode = Box::new(move |it, f| body.run(it, f));
                        code
                    }
                };
                match finally {
                    Some(finally) => self.finally(caught, finally),
                    None => caught,
                }
            }
            StmtKind::Raise(e) => self.raise(e),
            StmtKind::Assert { cond, message } => self.assert(cond, message.as_ref(), s.span),
            StmtKind::Lock { target, body } => self.lock_stmt(target, body),
            StmtKind::Put {
                target,
                value,
                timeout,
            } => self.put_stmt(target, value, timeout.as_ref(), s.span),
            StmtKind::Select { cases } => self.select(cases, s.span),
        }
    }

    fn expr_stmt(&self, e: &Expr) -> StmtCode {
        let e = self.expr(e);
        Box::new(move |it, f| {
            tri!(it, e(it, f));
            Ctl::Normal
        })
    }

    fn let_stmt(&self, target: &Pattern, value: &Expr) -> StmtCode {
        let (value, target) = (self.expr(value), self.target(target));
        Box::new(move |it, f| {
            let v = tri!(it, value(it, f));
            tri!(it, target.bind(it, v, f));
            Ctl::Normal
        })
    }

    /// The value waits in `Pending::ret` for the call to take it.
    fn return_stmt(&self, value: Option<&Expr>) -> StmtCode {
        if let Some(slot) = value.and_then(local_slot) {
            return Box::new(move |it, f| {
                let v = it.local(f, slot);
                put(&mut it.pending.ret, v);
                Ctl::Return
            });
        }
        let value = value.map(|v| self.expr(v));
        Box::new(move |it, f| {
            let v = match &value {
                Some(v) => tri!(it, v(it, f)),
                None => Value::Nil,
            };
            put(&mut it.pending.ret, v);
            Ctl::Return
        })
    }

    /// `fn name(..) { }`: a local function that closures capture gets its
    /// cell before the closure is made, so it can call itself.
    fn fn_stmt(&self, decl: &Decl, func: &Arc<ast::FnDecl>) -> StmtCode {
        let (func, target) = (self.function_object(func), self.declared(decl));
        if let Target::Cell(slot) = target {
            return Box::new(move |it, f| {
                let cell = Arc::new(Shared::new(Value::Nil));
                it.stack[f.base + slot] = Value::Cell(cell.clone());
                let closure = it.make_closure(&func, f);
                *cell.lock() = closure;
                Ctl::Normal
            });
        }
        Box::new(move |it, f| {
            let closure = it.make_closure(&func, f);
            tri!(it, target.bind(it, closure, f));
            Ctl::Normal
        })
    }

    fn if_stmt(&self, branches: &[(Expr, ast::Block)], otherwise: Option<&ast::Block>) -> StmtCode {
        if let ([(test, body)], None) = (branches, otherwise) {
            if let Some(code) = self.fused_if(test, body) {
                return code;
            }
        }
        let mut arms: Vec<(CondCode, Block)> = branches
            .iter()
            .map(|(c, b)| (self.cond(c), self.block(b)))
            .collect();
        let otherwise = otherwise.map(|b| self.block(b));
        if let (1, None) = (arms.len(), &otherwise) {
            if let Some((test, body)) = arms.pop() {
                return Box::new(move |it, f| match tri!(it, test(it, f)) {
                    true => body.run(it, f),
                    false => Ctl::Normal,
                });
            }
        }
        Box::new(move |it, f| {
            for (test, body) in arms.iter() {
                if tri!(it, test(it, f)) {
                    return body.run(it, f);
                }
            }
            match &otherwise {
                Some(body) => body.run(it, f),
                None => Ctl::Normal,
            }
        })
    }

    /// `if a op b { body }` with locals or int constants as operands.
    fn fused_if(&self, test: &Expr, body: &ast::Block) -> Option<StmtCode> {
        let ExprKind::Binary { op, lhs, rhs } = &test.node else {
            return None;
        };
        let ctx = FusedIf {
            cx: self,
            op: *op,
            lhs,
            rhs,
            span: test.span,
            body,
        };
        by_int_test(*op, ctx).flatten()
    }

    fn try_stmt(&self, body: &ast::Block, name: Option<&Decl>, handler: &ast::Block) -> StmtCode {
        let (body, handler) = (self.block(body), self.block(handler));
        let name = name.map(|d| self.declared(d));
        Box::new(move |it, f| match body.run(it, f) {
            Ctl::Error => {
                let e = it.take_error();
                if !is_catchable(&e) {
                    return it.fail(e);
                }
                if let Some(target) = &name {
                    tri!(it, target.bind(it, Value::Error(Arc::new(*e)), f));
                }
                handler.run(it, f)
            }
            ctl => ctl,
        })
    }

    /// `finally`: runs however `body` ended (normally, an error caught or
    /// not, `return`, `break`, `continue`), and also for a deadlock, an
    /// interrupt or `exit()`, as Python's runs for KeyboardInterrupt and
    /// SystemExit. When the `finally` block itself ends otherwise than
    /// normally (an error, `return`, `break`), that replaces how the body
    /// ended, as in Python; else the body's outcome goes on.
    fn finally(&self, body: StmtCode, finally: &ast::Block) -> StmtCode {
        let finally = self.block(finally);
        Box::new(move |it, f| {
            let ctl = body(it, f);
            // Set the body's return value or error aside: the block may
            // return or fail itself, which uses the same slots.
            let ret = match ctl {
                Ctl::Return => std::mem::take(&mut it.pending.ret),
                _ => Value::Nil,
            };
            let err = match ctl {
                Ctl::Error => it.pending.err.take(),
                _ => None,
            };
            match finally.run(it, f) {
                Ctl::Normal => {
                    match ctl {
                        Ctl::Return => it.pending.ret = ret,
                        Ctl::Error => it.pending.err = err,
                        _ => {}
                    }
                    ctl
                }
                other => other,
            }
        })
    }

    fn raise(&self, e: &Expr) -> StmtCode {
        let (value, span) = (self.expr(e), e.span);
        Box::new(move |it, f| {
            let v = tri!(it, value(it, f));
            it.fail(raised(v, span))
        })
    }

    fn assert(&self, cond: &Expr, message: Option<&Expr>, stmt: Span) -> StmtCode {
        let (test, span) = (self.cond(cond), cond.span.to(stmt));
        let message = message.map(|m| self.expr(m));
        Box::new(move |it, f| {
            if tri!(it, test(it, f)) {
                return Ctl::Normal;
            }
            let text = match &message {
                Some(m) => tri!(it, m(it, f)).to_display(),
                None => "assertion failed".to_string(),
            };
            it.fail(Box::new(RuntimeError::new(kind::ASSERTION, text).at(span)))
        })
    }

    /// Where a `let`, `for`, `catch`, a select case or a parameter binds.
    pub(super) fn target(&self, p: &Pattern) -> Target {
        match p {
            Pattern::Name(d) => self.declared(d),
            Pattern::List(items, span) => {
                Target::List(items.iter().map(|p| self.target(p)).collect(), *span)
            }
        }
    }

    pub(super) fn declared(&self, d: &Decl) -> Target {
        match d.res {
            Res::Local(slot) if d.captured => Target::Cell(slot as usize),
            Res::Local(slot) => Target::Slot(slot as usize),
            Res::Global(id) => self
                .global(id)
                .map_or(Target::Nowhere, |cell| Target::Global(cell, d.ident.span)),
            Res::Upval(_) | Res::Unresolved => Target::Nowhere,
        }
    }
}

/// Deadlock, interrupts and `exit()` end the program or entry: `catch`
/// does not stop them.
fn is_catchable(e: &RuntimeError) -> bool {
    !e.ends_the_run()
}

/// The error `raise v` raises.
fn raised(v: Value, span: Span) -> Box<RuntimeError> {
    let err = match v {
        Value::Error(err) => {
            // Re-raising a caught error keeps its kind; the new location wins.
            let mut err = (*err).clone();
            err.span = None;
            err.notes.clear();
            err
        }
        Value::Str(s) => RuntimeError::new(kind::ERROR, s.to_string()),
        other => RuntimeError::new(kind::ERROR, other.to_display()),
    };
    Box::new(err.at(span))
}

/// A declaration compiled: where its value goes.
pub(super) enum Target {
    /// A local no closure captures: a plain store.
    Slot(usize),
    /// A local that closures capture: each binding makes a fresh cell, so
    /// each loop iteration's closures see their own variable.
    Cell(usize),
    /// A global `let` (or `fn`) at the top of a program: defines it (the
    /// span names it, for a scheduler's view of the write).
    Global(GlobalRef, Span),
    /// `let [a, b] = ...`
    List(Box<[Target]>, Span),
    /// A declaration the resolver did not place (never made by it).
    Nowhere,
}

impl Target {
    #[inline]
    pub(super) fn bind(&self, it: &mut Interp, v: Value, f: Frame) -> R<()> {
        match self {
            Target::Slot(slot) => put(&mut it.stack[f.base + slot], v),
            Target::Cell(slot) => it.stack[f.base + slot] = Value::Cell(Arc::new(Shared::new(v))),
            Target::Global(cell, at) => {
                it.write_global(cell, Some(*at), v, GlobalWrite::Define);
            }
            Target::List(items, span) => return bind_list(it, items, v, *span, f),
            Target::Nowhere => {}
        }
        Ok(())
    }
}

fn bind_list(it: &mut Interp, items: &[Target], v: Value, span: Span, f: Frame) -> R<()> {
    let values = match &v {
        Value::List(l) => l.lock().clone(),
        other => {
            return Err(Box::new(
                RuntimeError::new(
                    kind::TYPE,
                    format!("cannot destructure {} into a list pattern", describe(other)),
                )
                .at(span),
            ))
        }
    };
    if values.len() != items.len() {
        return Err(Box::new(
            RuntimeError::new(
                kind::VALUE,
                format!(
                    "expected {} values to unpack, got {}",
                    items.len(),
                    values.len()
                ),
            )
            .at(span),
        ));
    }
    for (target, v) in items.iter().zip(values) {
        target.bind(it, v, f)?;
    }
    Ok(())
}

struct FusedIf<'c, 'e> {
    cx: &'c Compiler<'c>,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
    body: &'e ast::Block,
}

impl WithIntTest for FusedIf<'_, '_> {
    type Out = Option<StmtCode>;
    fn with<T: IntTest>(self, test: T) -> Option<StmtCode> {
        let FusedIf {
            cx,
            op,
            lhs,
            rhs,
            span,
            body,
        } = self;
        let test = TestOf { op, span, test };
        cx.with_operands(lhs, rhs, LazyIf { cx, test, body })
    }
}

/// Compiles the body only once the operands are known to fit.
struct LazyIf<'c, 'e, T> {
    cx: &'c Compiler<'c>,
    test: TestOf<T>,
    body: &'e ast::Block,
}

impl<T: IntTest> Build for LazyIf<'_, '_, T> {
    type Out = StmtCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> StmtCode {
        if let [Stmt {
            node: StmtKind::Return(Some(value)),
            ..
        }] = &self.body.stmts[..]
        {
            let (local, value) = (local_slot(value), self.cx.expr(value));
            let test = self.test;
            return IfReturnOf { test, value, local }.build(a, b);
        }
        let body = self.cx.block(self.body);
        IfOf {
            test: self.test,
            body,
        }
        .build(a, b)
    }
}
