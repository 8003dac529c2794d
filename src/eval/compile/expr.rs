//! Compiling expressions. Each function returns the closure for one kind of
//! node; the int fast paths fall back to `Interp::binary_values`, the same
//! full path (and the same errors) as the tree-walking evaluator.

use super::calls::eval_all;
use super::fused::{
    by_int_op, by_int_test, with_operands, IntOp, IntTest, TestOf, ValueOf, WithIntOp, WithIntTest,
};
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
        ExprKind::Get {
            target,
            timeout: None,
        } => get_expr(target, e.span),
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
/// `get q` without a timeout (with one, the tree-walker).
fn get_expr(target: &Expr, span: Span) -> ExprCode {
    let (queue, target) = (expr(target), target.clone());
    Box::new(move |it, f| {
        let q = queue(it, f)?;
        it.get_from(&q, &target, None, span)
    })
}

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

fn binary(op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> ExprCode {
    match op {
        BinOp::And | BinOp::Or => logic(op, lhs, rhs),
        _ => by_int_op(op, Binary { op, lhs, rhs, span }),
    }
}

/// `lhs op rhs` with the int fast path `F`.
struct Binary<'e> {
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
}

impl WithIntOp for Binary<'_> {
    type Out = ExprCode;
    fn with<F: IntOp>(self, fast: F) -> ExprCode {
        let Binary { op, lhs, rhs, span } = self;
        if let Some(code) = with_operands(lhs, rhs, ValueOf { op, span, fast }) {
            return code;
        }
        let (lhs, rhs) = (expr(lhs), expr(rhs));
        Box::new(move |it, f| {
            let x = lhs(it, f)?;
            let y = rhs(it, f)?;
            if let (Value::Int(p), Value::Int(q)) = (&x, &y) {
                if let Some(v) = fast(*p, *q) {
                    // Ints: nothing to drop.
                    std::mem::forget((x, y));
                    return Ok(v);
                }
            }
            it.binary_values(op, x, y, span)
        })
    }
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

/// A condition. Int comparisons give their bool without making a `Value`.
pub(super) fn cond(e: &Expr) -> CondCode {
    if let ExprKind::Binary { op, lhs, rhs } = &e.node {
        let (op, span) = (*op, e.span);
        if let Some(code) = by_int_test(op, Test { op, lhs, rhs, span }) {
            return code;
        }
    }
    let e = expr(e);
    Box::new(move |it, f| Ok(e(it, f)?.truthy()))
}

/// The condition `lhs op rhs` with the int comparison `T`.
struct Test<'e> {
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
}

impl WithIntTest for Test<'_> {
    type Out = CondCode;
    fn with<T: IntTest>(self, test: T) -> CondCode {
        let Test { op, lhs, rhs, span } = self;
        if let Some(code) = with_operands(lhs, rhs, TestOf { op, span, test }) {
            return code;
        }
        let (lhs, rhs) = (expr(lhs), expr(rhs));
        Box::new(move |it, f| {
            let x = lhs(it, f)?;
            let y = rhs(it, f)?;
            if let (Value::Int(p), Value::Int(q)) = (&x, &y) {
                let yes = test(*p, *q);
                std::mem::forget((x, y));
                return Ok(yes);
            }
            Ok(it.binary_values(op, x, y, span)?.truthy())
        })
    }
}
