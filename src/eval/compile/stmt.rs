//! Compiling statements.

use super::calls::eval_all;
use super::expr::{cond, expr, exprs, read_var, CondCode};
use super::{tri, Block, Ctl, StmtCode};
use crate::ast::{self, BinOp, Decl, Expr, ExprKind, Pattern, Res, Stmt, StmtKind, VarRef};
use crate::diagnostics::RuntimeError;
use crate::eval::builtins::{is_range, range_bounds};
use crate::eval::exec::{is_catchable, iteration_items};
use crate::eval::value::Value;
use crate::eval::{Flow, Frame, Interp, R};
use crate::span::Span;
use std::sync::Arc;

pub(super) fn block(stmts: &[Stmt]) -> Block {
    Block(stmts.iter().map(stmt).collect())
}

pub(super) fn stmt(s: &Stmt) -> StmtCode {
    match &s.node {
        StmtKind::Expr(e) => {
            let e = expr(e);
            Box::new(move |it, f| {
                tri!(it, e(it, f));
                Ctl::Normal
            })
        }
        StmtKind::Let { target, value } => {
            let (value, target) = (expr(value), Target::new(target));
            Box::new(move |it, f| {
                let v = tri!(it, value(it, f));
                tri!(it, target.bind(it, v, f));
                Ctl::Normal
            })
        }
        StmtKind::Assign {
            target:
                Expr {
                    node: ExprKind::Var(var),
                    span,
                },
            op,
            value,
        } => assign_var(var, *span, *op, value),
        StmtKind::If {
            branches,
            otherwise,
        } => if_stmt(branches, otherwise.as_ref()),
        StmtKind::While { cond, body } => while_stmt(cond, body),
        StmtKind::For { target, iter, body } => for_stmt(target, iter, body),
        StmtKind::Return(value) => {
            let value = value.as_ref().map(expr);
            Box::new(move |it, f| {
                it.pending.ret = match &value {
                    Some(v) => tri!(it, v(it, f)),
                    None => Value::Nil,
                };
                Ctl::Return
            })
        }
        StmtKind::Break => Box::new(|_, _| Ctl::Break),
        StmtKind::Continue => Box::new(|_, _| Ctl::Continue),
        StmtKind::Try {
            body,
            name,
            handler,
        } => try_stmt(body, name.clone(), handler),
        _ => fallback(s),
    }
}

/// Not compiled: the tree-walking evaluator runs a copy of the statement.
fn fallback(s: &Stmt) -> StmtCode {
    let s = s.clone();
    Box::new(move |it, f| match it.exec(&s, f) {
        Ok(Flow::Normal) => Ctl::Normal,
        Ok(Flow::Break) => Ctl::Break,
        Ok(Flow::Continue) => Ctl::Continue,
        Ok(Flow::Return(v)) => {
            it.pending.ret = v;
            Ctl::Return
        }
        Err(e) => it.fail(e),
    })
}

/// Where a `let` or `for` puts its value.
enum Target {
    /// A local no closure captures: a plain store.
    Slot(usize),
    Decl(Decl),
    Pattern(Pattern),
}

impl Target {
    fn new(p: &Pattern) -> Target {
        match p {
            Pattern::Name(d) => match d.res {
                Res::Local(slot) if !d.captured => Target::Slot(slot as usize),
                _ => Target::Decl(d.clone()),
            },
            other => Target::Pattern(other.clone()),
        }
    }

    #[inline]
    fn bind(&self, it: &mut Interp, v: Value, f: Frame) -> R<()> {
        match self {
            Target::Slot(slot) => {
                put(&mut it.stack[f.base + slot], v);
                Ok(())
            }
            Target::Decl(d) => {
                it.declare(d, v, f);
                Ok(())
            }
            Target::Pattern(p) => it.bind(p, v, f),
        }
    }
}

/// `x = v` and `x op= v` (the value is evaluated before `x` is read).
fn assign_var(var: &VarRef, span: Span, op: Option<BinOp>, value: &Expr) -> StmtCode {
    let value_code = expr(value);
    match (op, &var.res) {
        (None, Res::Local(slot)) => {
            let slot = *slot as usize;
            Box::new(move |it, f| {
                let v = tri!(it, value_code(it, f));
                it.store_local(f, slot, v);
                Ctl::Normal
            })
        }
        (None, _) => {
            let var = var.clone();
            Box::new(move |it, f| {
                let v = tri!(it, value_code(it, f));
                tri!(it, it.write_var(&var, v, span, f));
                Ctl::Normal
            })
        }
        (Some(op), _) => {
            let (var, read, whole) = (var.clone(), read_var(var, span), span.to(value.span));
            Box::new(move |it, f| {
                let v = tri!(it, value_code(it, f));
                let old = tri!(it, read(it, f));
                let v = tri!(it, it.binary_values(op, old, v, whole));
                tri!(it, it.write_var(&var, v, span, f));
                Ctl::Normal
            })
        }
    }
}

fn if_stmt(branches: &[(Expr, ast::Block)], otherwise: Option<&ast::Block>) -> StmtCode {
    let mut arms: Vec<(CondCode, Block)> = branches
        .iter()
        .map(|(c, b)| (cond(c), block(&b.stmts)))
        .collect();
    let otherwise = otherwise.map(|b| block(&b.stmts));
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

fn while_stmt(test: &Expr, body: &ast::Block) -> StmtCode {
    let (test, body) = (cond(test), block(&body.stmts));
    Box::new(move |it, f| {
        while tri!(it, test(it, f)) {
            match body.run(it, f) {
                Ctl::Break => break,
                ctl @ (Ctl::Return | Ctl::Error) => return ctl,
                Ctl::Normal | Ctl::Continue => {}
            }
            tri!(it, it.check_interrupt());
        }
        Ctl::Normal
    })
}

/// The parts of a `for` loop that do not depend on what it walks.
struct ForLoop {
    target: Target,
    body: Block,
    iter_span: Span,
}

impl ForLoop {
    /// One iteration; `Some` when the loop must end with that control.
    #[inline]
    fn step(&self, it: &mut Interp, v: Value, f: Frame) -> Option<Ctl> {
        if let Err(e) = self.target.bind(it, v, f) {
            return Some(it.fail(e));
        }
        let ctl = self.body.run(it, f);
        if let Err(e) = it.check_interrupt() {
            it.pending.ret = Value::Nil;
            return Some(it.fail(e));
        }
        match ctl {
            Ctl::Break => Some(Ctl::Normal),
            Ctl::Return | Ctl::Error => Some(ctl),
            Ctl::Normal | Ctl::Continue => None,
        }
    }

    /// `for i in range(..)`: counts without building a list.
    fn range(&self, it: &mut Interp, args: &[Value], f: Frame) -> Ctl {
        let bounds = range_bounds(args).map_err(|e| self.at_iter(e));
        let (start, end, step) = tri!(it, bounds);
        let mut i = start;
        while (step > 0 && i < end) || (step < 0 && i > end) {
            if let Some(ctl) = self.step(it, Value::Int(i), f) {
                return ctl;
            }
            i = match i.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
        Ctl::Normal
    }

    fn items(&self, it: &mut Interp, iterable: &Value, f: Frame) -> Ctl {
        let items = tri!(it, iteration_items(iterable).map_err(|e| self.at_iter(e)));
        for item in items {
            if let Some(ctl) = self.step(it, item, f) {
                return ctl;
            }
        }
        Ctl::Normal
    }

    fn at_iter(&self, e: RuntimeError) -> Box<RuntimeError> {
        Box::new(e.at(self.iter_span))
    }
}

fn for_stmt(target: &Pattern, iter: &Expr, body: &ast::Block) -> StmtCode {
    let l = ForLoop {
        target: Target::new(target),
        body: block(&body.stmts),
        iter_span: iter.span,
    };
    let ExprKind::Call { callee, args } = &iter.node else {
        let iter = expr(iter);
        return Box::new(move |it, f| {
            let v = tri!(it, iter(it, f));
            l.items(it, &v, f)
        });
    };
    let (callee, args) = (expr(callee), exprs(args));
    Box::new(move |it, f| {
        let callee = tri!(it, callee(it, f));
        let args = tri!(it, eval_all(&args, it, f));
        if is_range(&callee) {
            return l.range(it, &args, f);
        }
        let iterable = tri!(it, it.call_value(&callee, args, l.iter_span));
        l.items(it, &iterable, f)
    })
}

fn try_stmt(body: &ast::Block, name: Option<Decl>, handler: &ast::Block) -> StmtCode {
    let (body, handler) = (block(&body.stmts), block(&handler.stmts));
    Box::new(move |it, f| match body.run(it, f) {
        Ctl::Error => {
            let e = it.take_error();
            if !is_catchable(&e) {
                return it.fail(e);
            }
            if let Some(decl) = &name {
                it.declare(decl, Value::Error(Arc::new(*e)), f);
            }
            handler.run(it, f)
        }
        ctl => ctl,
    })
}

/// Overwrite a slot. Dropping the old value is a call (and a reference
/// count) only when it owns something: ints stay inline.
#[inline]
pub(super) fn put(place: &mut Value, v: Value) {
    let old = std::mem::replace(place, v);
    if owns_heap(&old) {
        drop_value(old);
    } else {
        std::mem::forget(old);
    }
}

#[inline]
fn owns_heap(v: &Value) -> bool {
    !matches!(
        v,
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Builtin(_)
    )
}

#[inline(never)]
fn drop_value(v: Value) {
    drop(v);
}
