//! Compiling statements.

use super::calls::eval_all;
use super::expr::{cond, expr, exprs, read_var, CondCode};
use super::fused::{
    by_int_op, by_int_test, local_slot, with_operands, AssignGlobalOf, AssignOf, Build, IfOf,
    IntOp, IntTest, Operand, TestOf, ValueOf, WithIntOp, WithIntTest,
};
use super::{tri, Block, Ctl, StmtCode};
use crate::ast::{self, BinOp, Decl, Expr, ExprKind, Name, Pattern, Res, Stmt, StmtKind, VarRef};
use crate::diagnostics::RuntimeError;
use crate::eval::builtins::{is_range, range_bounds};
use crate::eval::exec::{is_catchable, iteration_items, not_declared};
use crate::eval::globals::GlobalRef;
use crate::eval::value::Value;
use crate::eval::{Flow, Frame, Interp, R};
use crate::span::Span;
use std::sync::Arc;

pub(super) fn block(stmts: &[Stmt]) -> Block {
    Block(stmts.iter().map(stmt).collect())
}

pub(super) fn stmt(s: &Stmt) -> StmtCode {
    match &s.node {
        StmtKind::Expr(e) => expr_stmt(e),
        StmtKind::Let { target, value } => let_stmt(target, value),
        StmtKind::Assign {
            target:
                target @ Expr {
                    node: ExprKind::Var(var),
                    span,
                },
            op,
            value,
        } => fused_assign(target, *op, value).unwrap_or_else(|| assign_var(var, *span, *op, value)),
        StmtKind::If {
            branches,
            otherwise,
        } => if_stmt(branches, otherwise.as_ref()),
        StmtKind::While { cond, body } => while_stmt(cond, body),
        StmtKind::For { target, iter, body } => for_stmt(target, iter, body),
        StmtKind::Return(value) => return_stmt(value.as_ref()),
        StmtKind::Break => Box::new(|_, _| Ctl::Break),
        StmtKind::Continue => Box::new(|_, _| Ctl::Continue),
        StmtKind::Try {
            body,
            name,
            handler,
        } => try_stmt(body, name.clone(), handler),
        StmtKind::Lock { target, body } => lock_stmt(target, body),
        StmtKind::Put {
            target,
            value,
            timeout: None,
        } => put_stmt(target, value, s.span),
        _ => fallback(s),
    }
}

fn expr_stmt(e: &Expr) -> StmtCode {
    let e = expr(e);
    Box::new(move |it, f| {
        tri!(it, e(it, f));
        Ctl::Normal
    })
}

fn let_stmt(target: &Pattern, value: &Expr) -> StmtCode {
    let (value, target) = (expr(value), Target::new(target));
    Box::new(move |it, f| {
        let v = tri!(it, value(it, f));
        tri!(it, target.bind(it, v, f));
        Ctl::Normal
    })
}

/// The value waits in `Pending::ret` for the call to take it.
fn return_stmt(value: Option<&Expr>) -> StmtCode {
    if let Some(slot) = value.and_then(local_slot) {
        return Box::new(move |it, f| {
            let v = it.local(f, slot);
            put(&mut it.pending.ret, v);
            Ctl::Return
        });
    }
    let value = value.map(expr);
    Box::new(move |it, f| {
        let v = match &value {
            Some(v) => tri!(it, v(it, f)),
            None => Value::Nil,
        };
        put(&mut it.pending.ret, v);
        Ctl::Return
    })
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

/// `x = a op b` and `x op= b` into a local or a global, when the operands
/// are simple (see `fused`): one closure, no intermediate `Value`.
fn fused_assign(target: &Expr, op: Option<BinOp>, value: &Expr) -> Option<StmtCode> {
    let into = match &target.node {
        ExprKind::Var(VarRef {
            res: Res::Local(slot),
            ..
        }) => StoreTo::Local(*slot as usize),
        ExprKind::Var(VarRef {
            name,
            res: Res::Global(cell),
        }) => StoreTo::Global(cell.clone(), name.clone(), target.span),
        _ => return None,
    };
    let (op, lhs, rhs, span) = match (op, &value.node) {
        (Some(op), _) => (op, target, value, target.span.to(value.span)),
        (None, ExprKind::Binary { op, lhs, rhs }) => (*op, &**lhs, &**rhs, value.span),
        (None, _) => return None,
    };
    if matches!(op, BinOp::And | BinOp::Or) {
        return None;
    }
    let ctx = FusedAssign {
        into,
        op,
        lhs,
        rhs,
        span,
    };
    by_int_op(op, ctx)
}

/// Where a fused assignment stores.
enum StoreTo {
    Local(usize),
    Global(GlobalRef, Name, Span),
}

struct FusedAssign<'e> {
    into: StoreTo,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
}

impl WithIntOp for FusedAssign<'_> {
    type Out = Option<StmtCode>;
    fn with<F: IntOp>(self, fast: F) -> Option<StmtCode> {
        let FusedAssign {
            into,
            op,
            lhs,
            rhs,
            span,
        } = self;
        let value = ValueOf { op, span, fast };
        match into {
            StoreTo::Local(slot) => with_operands(lhs, rhs, AssignOf { slot, value }),
            StoreTo::Global(cell, name, target) => with_operands(
                lhs,
                rhs,
                AssignGlobalOf {
                    cell,
                    name,
                    target,
                    value,
                },
            ),
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
        (None, Res::Global(cell)) => {
            let (cell, name) = (cell.clone(), var.name.clone());
            Box::new(move |it, f| {
                let v = tri!(it, value_code(it, f));
                if !cell.assign(v) {
                    return it.fail(not_declared(&name, span));
                }
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
    if let ([(test, body)], None) = (branches, otherwise) {
        if let Some(code) = fused_if(test, body) {
            return code;
        }
    }
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

/// `if a op b { body }` with locals or int constants as operands.
fn fused_if(test: &Expr, body: &ast::Block) -> Option<StmtCode> {
    let ExprKind::Binary { op, lhs, rhs } = &test.node else {
        return None;
    };
    let ctx = FusedIf {
        op: *op,
        lhs,
        rhs,
        span: test.span,
        body,
    };
    by_int_test(*op, ctx).flatten()
}

struct FusedIf<'e> {
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
    body: &'e ast::Block,
}

impl WithIntTest for FusedIf<'_> {
    type Out = Option<StmtCode>;
    fn with<T: IntTest>(self, test: T) -> Option<StmtCode> {
        let FusedIf {
            op,
            lhs,
            rhs,
            span,
            body,
        } = self;
        let test = TestOf { op, span, test };
        with_operands(lhs, rhs, LazyIf { test, body })
    }
}

/// Compiles the body only once the operands are known to fit.
struct LazyIf<'e, T> {
    test: TestOf<T>,
    body: &'e ast::Block,
}

impl<T: IntTest> Build for LazyIf<'_, T> {
    type Out = StmtCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> StmtCode {
        let body = block(&self.body.stmts);
        IfOf {
            test: self.test,
            body,
        }
        .build(a, b)
    }
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
        after_body(it, ctl)
    }

    /// `for i in range(..)`: counts without building a list.
    fn range(&self, it: &mut Interp, args: &[Value], f: Frame) -> Ctl {
        let bounds = range_bounds(args).map_err(|e| self.at_iter(e));
        let (start, end, step) = tri!(it, bounds);
        if let Target::Slot(slot) = self.target {
            return self.range_in_slot(it, slot, (start, end, step), f);
        }
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

    /// The commonest loop of all: the counter is a plain local.
    fn range_in_slot(
        &self,
        it: &mut Interp,
        slot: usize,
        bounds: (i64, i64, i64),
        f: Frame,
    ) -> Ctl {
        let (mut i, end, step) = bounds;
        while (step > 0 && i < end) || (step < 0 && i > end) {
            match &mut it.stack[f.base + slot] {
                // Still the int the loop put there: only the number changes
                // (reading the whole old value back costs a stalled load).
                Value::Int(n) => *n = i,
                place => put(place, Value::Int(i)),
            }
            let ctl = self.body.run(it, f);
            if let Some(ctl) = after_body(it, ctl) {
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

/// After a loop body: stop if asked to (Ctrl-C, deadlock), else `Some`
/// when the loop must end with that control.
#[inline(always)]
fn after_body(it: &mut Interp, ctl: Ctl) -> Option<Ctl> {
    if ctl == Ctl::Error {
        return Some(ctl);
    }
    if let Err(e) = it.check_interrupt() {
        return Some(interrupted(it, e));
    }
    match ctl {
        Ctl::Break => Some(Ctl::Normal),
        Ctl::Return | Ctl::Error => Some(ctl),
        Ctl::Normal | Ctl::Continue => None,
    }
}

#[cold]
fn interrupted(it: &mut Interp, e: Box<RuntimeError>) -> Ctl {
    it.pending.ret = Value::Nil;
    it.fail(e)
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

/// `lock X { }`: released on every way out of the block.
fn lock_stmt(target: &Expr, body: &ast::Block) -> StmtCode {
    if let ExprKind::Var(VarRef {
        res: Res::Global(cell),
        ..
    }) = &target.node
    {
        return lock_global_stmt(cell.clone(), target.clone(), block(&body.stmts));
    }
    let (value, target) = (expr(target), target.clone());
    let body = block(&body.stmts);
    Box::new(move |it, f| {
        let t = tri!(it, value(it, f));
        let held = tri!(it, it.lock_enter(&t, &target));
        let ctl = body.run(it, f);
        let released = it.lock_exit(&held, &target);
        after_lock(it, ctl, released)
    })
}

/// `lock m { }` where `m` is a global: the lock comes from this thread's
/// cache, so taking it touches no shared reference count and no global's
/// lock (threads contending for `m` would otherwise fight over both).
fn lock_global_stmt(cell: GlobalRef, target: Expr, body: Block) -> StmtCode {
    Box::new(move |it, f| {
        let m = tri!(it, it.cached_global(&cell, target.span));
        let Value::Handle(crate::runtime::Handle::Lock(lock)) = &m.value else {
            let held = tri!(it, it.lock_enter(&m.value, &target));
            let ctl = body.run(it, f);
            let released = it.lock_exit(&held, &target);
            return after_lock(it, ctl, released);
        };
        tri!(it, it.acquire_for_block(lock, &target));
        let ctl = body.run(it, f);
        let released = it.release_for_block(lock, &target);
        after_lock(it, ctl, released)
    })
}

/// How a `lock` block ended, given how the release went: an error from the
/// block wins over one from the release.
fn after_lock(it: &mut Interp, ctl: Ctl, released: R<()>) -> Ctl {
    match (ctl, released) {
        (Ctl::Error, _) => Ctl::Error,
        (ctl, Ok(())) => ctl,
        (_, Err(e)) => it.fail(e),
    }
}

/// `put q, v` without a timeout (the common case; with one, the tree-walker).
fn put_stmt(target: &Expr, value: &Expr, span: Span) -> StmtCode {
    let (queue, item, target) = (expr(target), expr(value), target.clone());
    Box::new(move |it, f| {
        let q = tri!(it, queue(it, f));
        let v = tri!(it, item(it, f));
        tri!(it, it.put_into(&q, v, &target, None, span));
        Ctl::Normal
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
    forget_or_drop(std::mem::replace(place, v));
}

#[inline]
pub(super) fn forget_or_drop(v: Value) {
    if owns_heap(&v) {
        drop_value(v);
    } else {
        std::mem::forget(v);
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
