//! Compiling expressions. Each method returns the closure for one kind of
//! node; the int fast paths fall back to `Interp::binary_values`, the full
//! path (and the same errors).

use super::calls::{eval_all, GlobalCallee};
use super::fused::{
    by_int_op, by_int_test, local_slot, Build, CallArgOf, IntOp, IntTest, Operand, TestOf, ValueOf,
    WithIntOp, WithIntTest,
};
use super::{Code, Compiler, CondCode, ExprCode};
use crate::ast::{BinOp, Expr, ExprKind, Ident, Res, UnaryOp, VarRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::eval::globals::{GlobalCell, GlobalRef};
use crate::eval::value::{Key, Value};
use crate::eval::{name_error, ops};
use crate::eval::{Interp, R};
use crate::span::Span;
use indexmap::IndexMap;

impl Compiler<'_> {
    pub(super) fn expr(&self, e: &Expr) -> ExprCode {
        match &e.node {
            ExprKind::Nil => Box::new(|_, _| Ok(Value::Nil)),
            ExprKind::Bool(b) => constant(Value::Bool(*b)),
            ExprKind::Int(i) => constant(Value::Int(*i)),
            ExprKind::Float(f) => constant(Value::Float(*f)),
            ExprKind::Str(s) => constant(Value::Str(s.clone())),
            ExprKind::FString(pieces) => self.fstring(pieces),
            ExprKind::Var(var) => self.read_var(var, e.span),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span),
            ExprKind::Unary { op, operand } => self.unary(*op, operand, e.span),
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::Index { target, index } => self.index(target, index),
            ExprKind::Slice {
                target,
                start,
                end,
                step,
            } => self.slice(target, [start, end, step], e.span),
            ExprKind::Field { target, name } => self.field(target, name),
            ExprKind::List(items) => {
                let items = self.exprs(items);
                Box::new(move |it, f| Ok(Value::list(eval_all(&items, it, f)?)))
            }
            ExprKind::Map(entries) => self.map(entries),
            ExprKind::MethodCall {
                target,
                method,
                args,
            } => self.method_call(target, method, args, e.span),
            ExprKind::Fn(decl) => {
                let func = self.function_object(decl);
                Box::new(move |it, f| Ok(it.make_closure(&func, f)))
            }
            ExprKind::Spawn(spawn) => self.spawn(spawn, e.span),
            ExprKind::Join { target, timeout } => self.join(target, timeout.as_deref(), e.span),
            ExprKind::Get { target, timeout } => self.get(target, timeout.as_deref(), e.span),
            ExprKind::Wait { target, timeout } => self.wait(target, timeout.as_deref(), e.span),
            ExprKind::Submit { pool, callee, args } => self.submit(pool, callee, args, e.span),
        }
    }

    pub(super) fn exprs(&self, es: &[Expr]) -> Box<[ExprCode]> {
        es.iter().map(|e| self.expr(e)).collect()
    }

    /// The cell of `e` when it names a global.
    pub(super) fn global_of(&self, e: &Expr) -> Option<GlobalRef> {
        match &e.node {
            ExprKind::Var(VarRef {
                res: Res::Global(id),
                ..
            }) => self.global(*id),
            _ => None,
        }
    }

    pub(super) fn read_var(&self, var: &VarRef, span: Span) -> ExprCode {
        match &var.res {
            Res::Local(slot) => {
                let slot = *slot as usize;
                Box::new(move |it, f| Ok(it.local(f, slot)))
            }
            Res::Upval(i) => {
                let i = *i as usize;
                Box::new(move |it, f| Ok(it.read_cell(&f.upvals[i])))
            }
            Res::Global(id) => match self.global(*id) {
                Some(cell) => Box::new(move |it, _| read_global_value(it, &cell, span)),
                None => undefined(var, span),
            },
            Res::Unresolved => undefined(var, span),
        }
    }

    fn call(&self, callee: &Expr, args: &[Expr], span: Span) -> ExprCode {
        if let Some(code) = self.call_fused_arg(callee, args, span) {
            return code;
        }
        let args = self.exprs(args);
        if let Some(cell) = self.global_of(callee) {
            let g = GlobalCallee::new(cell, callee.span, args.len());
            return Box::new(move |it, f| it.call_global(&g, &args, f, span));
        }
        let callee = self.expr(callee);
        Box::new(move |it, f| {
            let callee = callee(it, f)?;
            it.call_with(&callee, &args, f, span)
        })
    }

    /// `g(a op b)` with a global `g` and simple operands (`fib(n - 1)`).
    fn call_fused_arg(&self, callee: &Expr, args: &[Expr], span: Span) -> Option<ExprCode> {
        let cell = self.global_of(callee)?;
        let [Expr {
            node: ExprKind::Binary { op, lhs, rhs },
            span: arg_span,
        }] = args
        else {
            return None;
        };
        if matches!(op, BinOp::And | BinOp::Or) {
            return None;
        }
        let call = CallArg {
            cx: self,
            cell,
            callee_span: callee.span,
            span,
            op: *op,
            lhs,
            rhs,
            arg_span: *arg_span,
        };
        by_int_op(*op, call)
    }

    fn method_call(&self, target: &Expr, method: &Ident, args: &[Expr], span: Span) -> ExprCode {
        let (target, args, method) = (self.expr(target), self.exprs(args), method.clone());
        Box::new(move |it, f| {
            let t = target(it, f)?;
            let args = eval_all(&args, it, f)?;
            it.call_method(&t, &method, args, span)
        })
    }

    fn unary(&self, op: UnaryOp, operand: &Expr, span: Span) -> ExprCode {
        let operand = self.expr(operand);
        Box::new(move |it, f| {
            let v = operand(it, f)?;
            ops::unary(op, v).map_err(|err| Box::new(err.at(span)))
        })
    }

    fn index(&self, target: &Expr, index: &Expr) -> ExprCode {
        let (target, span, index) = (self.expr(target), index.span, self.expr(index));
        Box::new(move |it, f| {
            let t = target(it, f)?;
            let i = index(it, f)?;
            ops::index(&t, &i).map_err(|err| Box::new(err.at(span)))
        })
    }

    fn slice(&self, target: &Expr, bounds: [&Option<Box<Expr>>; 3], span: Span) -> ExprCode {
        let target = self.expr(target);
        let bounds = bounds.map(|b| b.as_ref().map(|e| (self.expr(e), e.span)));
        Box::new(move |it, f| {
            let t = target(it, f)?;
            let mut parts = [None, None, None];
            for (part, bound) in parts.iter_mut().zip(&bounds) {
                if let Some((code, at)) = bound {
                    *part = slice_bound(code(it, f)?, *at)?;
                }
            }
            ops::slice(&t, parts).map_err(|e| Box::new(e.at(span)))
        })
    }

    fn field(&self, target: &Expr, name: &Ident) -> ExprCode {
        let (target, name) = (self.expr(target), name.clone());
        Box::new(move |it, f| {
            let t = target(it, f)?;
            it.field(&t, &name)
        })
    }

    /// `{k: v, ...}`: each key, then its value.
    fn map(&self, entries: &[(Expr, Expr)]) -> ExprCode {
        let entries: Box<[_]> = entries
            .iter()
            .map(|(k, v)| (self.expr(k), k.span, self.expr(v)))
            .collect();
        Box::new(move |it, f| {
            let mut map = IndexMap::with_capacity(entries.len());
            for (key, at, value) in entries.iter() {
                let k = key(it, f)?;
                let k = Key::from_value(&k).map_err(|e| Box::new(e.at(*at)))?;
                map.insert(k, value(it, f)?);
            }
            Ok(Value::map(map))
        })
    }

    fn binary(&self, op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> ExprCode {
        match op {
            BinOp::And | BinOp::Or => self.logic(op, lhs, rhs),
            _ => by_int_op(
                op,
                Binary {
                    cx: self,
                    op,
                    lhs,
                    rhs,
                    span,
                },
            ),
        }
    }

    /// Short-circuit `and` / `or`: the deciding operand is the value.
    fn logic(&self, op: BinOp, lhs: &Expr, rhs: &Expr) -> ExprCode {
        let (lhs, rhs) = (self.expr(lhs), self.expr(rhs));
        let stop_if = op == BinOp::Or;
        Box::new(move |it, f| {
            let a = lhs(it, f)?;
            if a.truthy() == stop_if {
                return Ok(a);
            }
            rhs(it, f)
        })
    }

    /// `test ? value : otherwise`: a function's guard `if test { return
    /// value }` before the rest of its body, `otherwise`.
    pub(super) fn guard(&self, test: &Expr, value: &Expr, otherwise: ExprCode) -> ExprCode {
        let mut otherwise = Some(otherwise);
        if let ExprKind::Binary { op, lhs, rhs } = &test.node {
            let fused = FusedGuard {
                cx: self,
                op: *op,
                lhs,
                rhs,
                span: test.span,
                value,
                otherwise: &mut otherwise,
            };
            if let Some(code) = by_int_test(*op, fused).flatten() {
                return code;
            }
        }
        let (test, value) = (self.cond(test), self.expr(value));
        let Some(otherwise) = otherwise else {
            return value;
        };
        Box::new(move |it, f| match test(it, f)? {
            true => value(it, f),
            false => otherwise(it, f),
        })
    }

    /// A condition. Int comparisons give their bool without making a `Value`.
    pub(super) fn cond(&self, e: &Expr) -> CondCode {
        if let ExprKind::Binary { op, lhs, rhs } = &e.node {
            let (op, span) = (*op, e.span);
            let test = Test {
                cx: self,
                op,
                lhs,
                rhs,
                span,
            };
            if let Some(code) = by_int_test(op, test) {
                return code;
            }
        }
        let e = self.expr(e);
        Box::new(move |it, f| Ok(e(it, f)?.truthy()))
    }
}

/// A global's value; not defined yet is a NameError.
#[inline]
fn read_global_value(it: &Interp, cell: &GlobalCell, span: Span) -> R<Value> {
    it.read_global(cell, span, GlobalCell::get)
        .ok_or_else(|| name_error(it, &cell.name, span))
}

fn undefined(var: &VarRef, span: Span) -> ExprCode {
    let name = var.name.clone();
    Box::new(move |it, _| Err(name_error(it, &name, span)))
}

fn constant(v: Value) -> ExprCode {
    Box::new(move |_, _| Ok(v.clone()))
}

fn slice_bound(v: Value, at: Span) -> R<Option<i64>> {
    match v {
        Value::Nil => Ok(None),
        Value::Int(i) => Ok(Some(i)),
        other => Err(Box::new(
            RuntimeError::new(
                kind::TYPE,
                format!("slice bounds must be ints, not {}", other.type_name()),
            )
            .at(at),
        )),
    }
}

/// `lhs op rhs` with the int fast path `F`.
struct Binary<'c, 'e> {
    cx: &'c Compiler<'c>,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
}

impl WithIntOp for Binary<'_, '_> {
    type Out = ExprCode;
    fn with<F: IntOp>(self, fast: F) -> ExprCode {
        let Binary {
            cx,
            op,
            lhs,
            rhs,
            span,
        } = self;
        if let Some(code) = cx.with_operands(lhs, rhs, ValueOf { op, span, fast }) {
            return code;
        }
        pair(cx.expr(lhs), cx.expr(rhs), op, span, fast, |v: Value| v)
    }
}

/// `lhs op rhs` on two compiled operands: `on_ints` when both are ints
/// (`None`: not this way), else the full path, whose value `from_value`
/// turns into what the node gives.
fn pair<T: 'static>(
    lhs: ExprCode,
    rhs: ExprCode,
    op: BinOp,
    span: Span,
    on_ints: impl Fn(i64, i64) -> Option<T> + Send + Sync + 'static,
    from_value: impl Fn(Value) -> T + Send + Sync + 'static,
) -> Code<T> {
    Box::new(move |it, f| {
        let x = lhs(it, f)?;
        let y = rhs(it, f)?;
        if let (Value::Int(p), Value::Int(q)) = (&x, &y) {
            if let Some(v) = on_ints(*p, *q) {
                // Ints: nothing to drop.
                std::mem::forget((x, y));
                return Ok(v);
            }
        }
        pair_full_path(it, op, x, y, span, &from_value)
    })
}

#[inline(never)]
fn pair_full_path<T>(
    it: &mut Interp,
    op: BinOp,
    x: Value,
    y: Value,
    span: Span,
    from_value: &impl Fn(Value) -> T,
) -> R<T> {
    Ok(from_value(it.binary_values(op, x, y, span)?))
}

/// The condition `lhs op rhs` with the int comparison `T`.
struct Test<'c, 'e> {
    cx: &'c Compiler<'c>,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
}

impl WithIntTest for Test<'_, '_> {
    type Out = CondCode;
    fn with<T: IntTest>(self, test: T) -> CondCode {
        let Test {
            cx,
            op,
            lhs,
            rhs,
            span,
        } = self;
        if let Some(code) = cx.with_operands(lhs, rhs, TestOf { op, span, test }) {
            return code;
        }
        let on_ints = move |x, y| Some(test(x, y));
        pair(cx.expr(lhs), cx.expr(rhs), op, span, on_ints, |v: Value| {
            v.truthy()
        })
    }
}

/// A guard whose test compares two simple operands.
struct FusedGuard<'c, 'e> {
    cx: &'c Compiler<'c>,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
    value: &'e Expr,
    /// Taken only once the guard is built: a test that does not fuse
    /// leaves it for the general path.
    otherwise: &'e mut Option<ExprCode>,
}

impl WithIntTest for FusedGuard<'_, '_> {
    type Out = Option<ExprCode>;
    fn with<T: IntTest>(self, test: T) -> Option<ExprCode> {
        let FusedGuard {
            cx,
            op,
            lhs,
            rhs,
            span,
            value,
            otherwise,
        } = self;
        let guard = GuardOf {
            cx,
            test: TestOf { op, span, test },
            value,
            otherwise,
        };
        cx.with_operands(lhs, rhs, guard).flatten()
    }
}

struct GuardOf<'c, 'e, T> {
    cx: &'c Compiler<'c>,
    test: TestOf<T>,
    value: &'e Expr,
    otherwise: &'e mut Option<ExprCode>,
}

impl<T: IntTest> Build for GuardOf<'_, '_, T> {
    type Out = Option<ExprCode>;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> Option<ExprCode> {
        let otherwise = self.otherwise.take()?;
        let (local, value) = (local_slot(self.value), self.cx.expr(self.value));
        let test = self.test;
        Some(Box::new(move |it, f| {
            match (test.holds(it, f, &a, &b)?, local) {
                (true, Some(slot)) => Ok(it.local(f, slot)),
                (true, None) => value(it, f),
                (false, _) => otherwise(it, f),
            }
        }))
    }
}

/// A call whose one argument fuses.
struct CallArg<'c, 'e> {
    cx: &'c Compiler<'c>,
    cell: GlobalRef,
    callee_span: Span,
    span: Span,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    arg_span: Span,
}

impl WithIntOp for CallArg<'_, '_> {
    type Out = Option<ExprCode>;
    fn with<F: IntOp>(self, fast: F) -> Option<ExprCode> {
        let CallArg {
            cx,
            cell,
            callee_span,
            span,
            op,
            lhs,
            rhs,
            arg_span,
        } = self;
        let arg = ValueOf {
            op,
            span: arg_span,
            fast,
        };
        let call = CallArgOf {
            callee: GlobalCallee::new(cell, callee_span, 1),
            span,
            arg,
        };
        cx.with_operands(lhs, rhs, call)
    }
}

impl Interp {
    /// `a op b` for any values: the full path behind every fast one.
    #[inline(never)]
    pub(super) fn binary_values(&mut self, op: BinOp, a: Value, b: Value, span: Span) -> R<Value> {
        ops::binary(op, &a, &b).map_err(|e| Box::new(e.at(span)))
    }
}
