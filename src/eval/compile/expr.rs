//! Compiling expressions. Each function returns the closure for one kind of
//! node; the int fast paths fall back to `Interp::binary_values`, the same
//! full path (and the same errors) as the tree-walking evaluator.

use super::calls::eval_all;
use super::ExprCode;
use crate::ast::{BinOp, Expr, ExprKind, Res, UnaryOp, VarRef};
use crate::eval::expr::name_error;
use crate::eval::ops;
use crate::eval::value::Value;
use crate::eval::{Frame, Interp, R};
use crate::span::Span;

/// A condition: compiled to give a bool straight away (`if n < 2`).
pub(super) type CondCode = Box<dyn Fn(&mut Interp, Frame) -> R<bool> + Send + Sync>;

pub(super) fn expr(e: &Expr) -> ExprCode {
    match &e.node {
        ExprKind::Nil => Box::new(|_, _| Ok(Value::Nil)),
        ExprKind::Bool(b) => constant(Value::Bool(*b)),
        ExprKind::Int(i) => constant(Value::Int(*i)),
        ExprKind::Float(f) => constant(Value::Float(*f)),
        ExprKind::Str(s) => constant(Value::Str(s.clone())),
        ExprKind::Var(var) => read_var(var, e.span),
        ExprKind::Binary { op, lhs, rhs } => binary(*op, lhs, rhs, e.span),
        ExprKind::Unary { op, operand } => unary(*op, operand, e.span),
        ExprKind::Call { callee, args } => call(callee, args, e.span),
        ExprKind::Index { target, index } => index_expr(target, index),
        ExprKind::List(items) => {
            let items = exprs(items);
            Box::new(move |it, f| Ok(Value::list(eval_all(&items, it, f)?)))
        }
        ExprKind::MethodCall {
            target,
            method,
            args,
        } => {
            let (target, args, method, span) = (expr(target), exprs(args), method.clone(), e.span);
            Box::new(move |it, f| {
                let t = target(it, f)?;
                let args = eval_all(&args, it, f)?;
                it.call_method(&t, &method, args, span)
            })
        }
        ExprKind::Fn(decl) => {
            let decl = decl.clone();
            Box::new(move |it, f| Ok(it.make_closure(&decl, f)))
        }
        _ => fallback(e),
    }
}

pub(super) fn exprs(es: &[Expr]) -> Box<[ExprCode]> {
    es.iter().map(expr).collect()
}

/// Not compiled: the tree-walking evaluator runs a copy of the node.
fn fallback(e: &Expr) -> ExprCode {
    let e = e.clone();
    Box::new(move |it, f| it.eval(&e, f))
}

fn constant(v: Value) -> ExprCode {
    Box::new(move |_, _| Ok(v.clone()))
}

pub(super) fn read_var(var: &VarRef, span: Span) -> ExprCode {
    match &var.res {
        Res::Local(slot) => {
            let slot = *slot as usize;
            Box::new(move |it, f| Ok(it.local(f, slot)))
        }
        Res::Upval(i) => {
            let i = *i as usize;
            Box::new(move |_, f| Ok(f.upvals[i].lock().clone()))
        }
        Res::Global(cell) => {
            let cell = cell.clone();
            Box::new(move |_, _| cell.get().ok_or_else(|| name_error(&cell.name, span)))
        }
        Res::Unresolved => {
            let name = var.name.clone();
            Box::new(move |_, _| Err(name_error(&name, span)))
        }
    }
}

fn call(callee: &Expr, args: &[Expr], span: Span) -> ExprCode {
    let args = exprs(args);
    if let ExprKind::Var(VarRef {
        res: Res::Global(cell),
        ..
    }) = &callee.node
    {
        let (cell, callee_span) = (cell.clone(), callee.span);
        return Box::new(move |it, f| it.call_global(&cell, callee_span, &args, f, span));
    }
    let callee = expr(callee);
    Box::new(move |it, f| {
        let callee = callee(it, f)?;
        it.call_with(&callee, &args, f, span)
    })
}

fn unary(op: UnaryOp, operand: &Expr, span: Span) -> ExprCode {
    let operand = expr(operand);
    Box::new(move |it, f| {
        let v = operand(it, f)?;
        ops::unary(op, v).map_err(|err| Box::new(err.at(span)))
    })
}

fn index_expr(target: &Expr, index: &Expr) -> ExprCode {
    let (target, span, index) = (expr(target), index.span, expr(index));
    Box::new(move |it, f| {
        let t = target(it, f)?;
        let i = index(it, f)?;
        ops::index(&t, &i).map_err(|err| Box::new(err.at(span)))
    })
}

/// The int result of `x op y` when it is the simple case; `None` sends the
/// operands down the full path (floats, strings, overflow, division by zero).
trait IntOp: Fn(i64, i64) -> Option<Value> + Copy + Send + Sync + 'static {}
impl<F: Fn(i64, i64) -> Option<Value> + Copy + Send + Sync + 'static> IntOp for F {}

fn binary(op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> ExprCode {
    let int = |v: Option<i64>| v.map(Value::Int);
    let boolean = |b: bool| Some(Value::Bool(b));
    match op {
        BinOp::And | BinOp::Or => logic(op, lhs, rhs),
        BinOp::Add => int_op(op, lhs, rhs, span, move |x, y| int(x.checked_add(y))),
        BinOp::Sub => int_op(op, lhs, rhs, span, move |x, y| int(x.checked_sub(y))),
        BinOp::Mul => int_op(op, lhs, rhs, span, move |x, y| int(x.checked_mul(y))),
        BinOp::Mod => int_op(op, lhs, rhs, span, move |x, y| int(floor_mod(x, y))),
        BinOp::FloorDiv => int_op(op, lhs, rhs, span, move |x, y| int(floor_div(x, y))),
        BinOp::Lt => int_op(op, lhs, rhs, span, move |x, y| boolean(x < y)),
        BinOp::Le => int_op(op, lhs, rhs, span, move |x, y| boolean(x <= y)),
        BinOp::Gt => int_op(op, lhs, rhs, span, move |x, y| boolean(x > y)),
        BinOp::Ge => int_op(op, lhs, rhs, span, move |x, y| boolean(x >= y)),
        BinOp::Eq => int_op(op, lhs, rhs, span, move |x, y| boolean(x == y)),
        BinOp::Ne => int_op(op, lhs, rhs, span, move |x, y| boolean(x != y)),
        _ => int_op(op, lhs, rhs, span, |_, _| None),
    }
}

/// Python's `%` (the sign of the divisor); `None` for a zero divisor or overflow.
#[inline]
fn floor_mod(x: i64, y: i64) -> Option<i64> {
    let r = x.checked_rem(y)?;
    Some(if r != 0 && ((r < 0) != (y < 0)) {
        r + y
    } else {
        r
    })
}

/// Python's `//` (rounds down); `None` for a zero divisor or overflow.
#[inline]
fn floor_div(x: i64, y: i64) -> Option<i64> {
    let q = x.checked_div(y)?;
    Some(if x % y != 0 && ((x < 0) != (y < 0)) {
        q - 1
    } else {
        q
    })
}

/// Short-circuit `and` / `or`: the deciding operand is the value.
fn logic(op: BinOp, lhs: &Expr, rhs: &Expr) -> ExprCode {
    let (lhs, rhs) = (expr(lhs), expr(rhs));
    let stop_if = op == BinOp::Or;
    Box::new(move |it, f| {
        let a = lhs(it, f)?;
        if a.truthy() == stop_if {
            return Ok(a);
        }
        rhs(it, f)
    })
}

fn local_slot(e: &Expr) -> Option<usize> {
    match &e.node {
        ExprKind::Var(VarRef {
            res: Res::Local(slot),
            ..
        }) => Some(*slot as usize),
        _ => None,
    }
}

/// `local op 5`, `local op local` and the general case, each its own closure.
fn int_op(op: BinOp, lhs: &Expr, rhs: &Expr, span: Span, fast: impl IntOp) -> ExprCode {
    match (local_slot(lhs), local_slot(rhs), &rhs.node) {
        (Some(a), _, ExprKind::Int(k)) => {
            let k = *k;
            Box::new(move |it, f| {
                if let Value::Int(x) = it.stack[f.base + a] {
                    if let Some(v) = fast(x, k) {
                        return Ok(v);
                    }
                }
                let x = it.local(f, a);
                it.binary_values(op, x, Value::Int(k), span)
            })
        }
        (Some(a), Some(b), _) => Box::new(move |it, f| {
            if let (Value::Int(x), Value::Int(y)) = (&it.stack[f.base + a], &it.stack[f.base + b]) {
                if let Some(v) = fast(*x, *y) {
                    return Ok(v);
                }
            }
            let (x, y) = (it.local(f, a), it.local(f, b));
            it.binary_values(op, x, y, span)
        }),
        _ => {
            let (lhs, rhs) = (expr(lhs), expr(rhs));
            Box::new(move |it, f| {
                let x = lhs(it, f)?;
                let y = rhs(it, f)?;
                if let (Value::Int(p), Value::Int(q)) = (&x, &y) {
                    if let Some(v) = fast(*p, *q) {
                        return Ok(v);
                    }
                }
                it.binary_values(op, x, y, span)
            })
        }
    }
}

/// A condition. Int comparisons give their bool without making a `Value`.
pub(super) fn cond(e: &Expr) -> CondCode {
    if let ExprKind::Binary { op, lhs, rhs } = &e.node {
        let (op, span) = (*op, e.span);
        match op {
            BinOp::Lt => return int_test(op, lhs, rhs, span, |x, y| x < y),
            BinOp::Le => return int_test(op, lhs, rhs, span, |x, y| x <= y),
            BinOp::Gt => return int_test(op, lhs, rhs, span, |x, y| x > y),
            BinOp::Ge => return int_test(op, lhs, rhs, span, |x, y| x >= y),
            BinOp::Eq => return int_test(op, lhs, rhs, span, |x, y| x == y),
            BinOp::Ne => return int_test(op, lhs, rhs, span, |x, y| x != y),
            _ => {}
        }
    }
    let e = expr(e);
    Box::new(move |it, f| Ok(e(it, f)?.truthy()))
}

trait IntTest: Fn(i64, i64) -> bool + Copy + Send + Sync + 'static {}
impl<F: Fn(i64, i64) -> bool + Copy + Send + Sync + 'static> IntTest for F {}

fn int_test(op: BinOp, lhs: &Expr, rhs: &Expr, span: Span, test: impl IntTest) -> CondCode {
    match (local_slot(lhs), &rhs.node) {
        (Some(a), ExprKind::Int(k)) => {
            let k = *k;
            Box::new(move |it, f| {
                if let Value::Int(x) = it.stack[f.base + a] {
                    return Ok(test(x, k));
                }
                let x = it.local(f, a);
                Ok(it.binary_values(op, x, Value::Int(k), span)?.truthy())
            })
        }
        _ => {
            let (lhs, rhs) = (expr(lhs), expr(rhs));
            Box::new(move |it, f| {
                let x = lhs(it, f)?;
                let y = rhs(it, f)?;
                if let (Value::Int(p), Value::Int(q)) = (&x, &y) {
                    return Ok(test(*p, *q));
                }
                Ok(it.binary_values(op, x, y, span)?.truthy())
            })
        }
    }
}
