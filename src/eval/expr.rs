//! Expressions. `eval` dispatches to one small function per expression kind;
//! concurrency expressions (`spawn`, `join`, `get`, `wait`, `submit`) live in
//! `concurrency.rs`.

use super::value::{Key, Value};
use super::{ops, Frame, Interp, R};
use crate::ast::*;
use crate::diagnostics::{kind, RuntimeError};
use crate::span::Span;
use indexmap::IndexMap;

impl Interp {
    /// The hot expression kinds stay in this small function; everything else
    /// is out of line, so the recursion does not pay for the big match's frame.
    #[inline]
    pub(super) fn eval(&mut self, e: &Expr, frame: Frame) -> R<Value> {
        match &e.node {
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Var(var) => self.read_var(var, e.span, frame),
            ExprKind::Binary { op, lhs, rhs } => self.eval_binary(*op, lhs, rhs, e.span, frame),
            ExprKind::Call { callee, args } => self.eval_call(callee, args, e.span, frame),
            _ => self.eval_cold(e, frame),
        }
    }

    #[inline(never)]
    fn eval_cold(&mut self, e: &Expr, frame: Frame) -> R<Value> {
        match &e.node {
            // Handled by `eval` itself; never sent here.
            ExprKind::Int(_)
            | ExprKind::Var(_)
            | ExprKind::Binary { .. }
            | ExprKind::Call { .. } => self.eval(e, frame),
            ExprKind::Nil => Ok(Value::Nil),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Float(f) => Ok(Value::Float(*f)),
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            ExprKind::List(items) => Ok(Value::list(self.eval_args(items, frame)?)),
            ExprKind::Map(entries) => self.eval_map(entries, frame),
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand, frame)?;
                ops::unary(*op, v).map_err(|err| Box::new(err.at(e.span)))
            }
            ExprKind::Index { target, index } => {
                let t = self.eval(target, frame)?;
                let i = self.eval(index, frame)?;
                ops::index(&t, &i).map_err(|err| Box::new(err.at(index.span)))
            }
            ExprKind::Slice {
                target,
                start,
                end,
                step,
            } => self.eval_slice(target, [start, end, step], e.span, frame),
            ExprKind::Field { target, name } => {
                let t = self.eval(target, frame)?;
                self.field(&t, name)
            }
            ExprKind::MethodCall {
                target,
                method,
                args,
            } => {
                let t = self.eval(target, frame)?;
                let args = self.eval_args(args, frame)?;
                self.call_method(&t, method, args, e.span)
            }
            ExprKind::Fn(decl) => Ok(self.make_closure(decl, frame)),
            ExprKind::Spawn(spawn) => self.eval_spawn(spawn, e.span, frame),
            ExprKind::Join { target, timeout } => {
                self.eval_join(target, timeout.as_deref(), e.span, frame)
            }
            ExprKind::Get { target, timeout } => {
                self.eval_get(target, timeout.as_deref(), e.span, frame)
            }
            ExprKind::Wait { target, timeout } => {
                self.eval_wait(target, timeout.as_deref(), e.span, frame)
            }
            ExprKind::Submit { pool, callee, args } => {
                self.eval_submit(pool, callee, args, e.span, frame)
            }
        }
    }

    pub(super) fn eval_args(&mut self, args: &[Expr], frame: Frame) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(self.eval(a, frame)?);
        }
        Ok(out)
    }

    #[inline]
    pub(super) fn read_var(&mut self, var: &VarRef, span: Span, frame: Frame) -> R<Value> {
        match &var.res {
            Res::Local(slot) => Ok(match &self.stack[frame.base + *slot as usize] {
                Value::Cell(c) => c.lock().clone(),
                v => v.clone(),
            }),
            Res::Upval(i) => Ok(frame.upvals[*i as usize].lock().clone()),
            Res::Global(cell) => cell.get().ok_or_else(|| name_error(&var.name, span)),
            Res::Unresolved => Err(name_error(&var.name, span)),
        }
    }

    fn eval_call(&mut self, callee: &Expr, args: &[Expr], span: Span, frame: Frame) -> R<Value> {
        let f = self.eval(callee, frame)?;
        if let Value::Func(closure) = &f {
            // Arguments go straight onto the stack: they become the callee's first slots.
            let base = self.stack.len();
            for a in args {
                match self.eval(a, frame) {
                    Ok(v) => self.stack.push(v),
                    Err(e) => {
                        self.stack.truncate(base);
                        return Err(e);
                    }
                }
            }
            return self.call_closure(closure, base, span);
        }
        let args = self.eval_args(args, frame)?;
        self.call_value(&f, args, span)
    }

    fn eval_binary(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let a = self.eval(lhs, frame)?;
        match op {
            BinOp::And if !a.truthy() => return Ok(a),
            BinOp::Or if a.truthy() => return Ok(a),
            BinOp::And | BinOp::Or => return self.eval(rhs, frame),
            _ => {}
        }
        let b = self.eval(rhs, frame)?;
        if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
            if let Some(v) = ops::int_fast(op, *x, *y) {
                return Ok(v);
            }
        }
        self.binary_values(op, a, b, span)
    }

    #[inline(never)]
    pub(super) fn binary_values(&mut self, op: BinOp, a: Value, b: Value, span: Span) -> R<Value> {
        ops::binary(op, &a, &b).map_err(|e| Box::new(e.at(span)))
    }

    fn eval_map(&mut self, entries: &[(Expr, Expr)], frame: Frame) -> R<Value> {
        let mut map = IndexMap::with_capacity(entries.len());
        for (k, v) in entries {
            let key = self.eval(k, frame)?;
            let key = Key::from_value(&key).map_err(|e| Box::new(e.at(k.span)))?;
            let value = self.eval(v, frame)?;
            map.insert(key, value);
        }
        Ok(Value::map(map))
    }

    fn eval_slice(
        &mut self,
        target: &Expr,
        bounds: [&Option<Box<Expr>>; 3],
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let t = self.eval(target, frame)?;
        let mut parts = [None, None, None];
        for (part, bound) in parts.iter_mut().zip(bounds) {
            if let Some(e) = bound {
                *part = match self.eval(e, frame)? {
                    Value::Nil => None,
                    Value::Int(i) => Some(i),
                    other => {
                        return Err(Box::new(
                            RuntimeError::new(
                                kind::TYPE,
                                format!("slice bounds must be ints, not {}", other.type_name()),
                            )
                            .at(e.span),
                        ))
                    }
                };
            }
        }
        ops::slice(&t, parts).map_err(|e| Box::new(e.at(span)))
    }

    /// `v.name` without a call: data about a value (handles, errors).
    fn field(&mut self, v: &Value, name: &Ident) -> R<Value> {
        let found = match v {
            Value::Error(e) => match &*name.name {
                "kind" => Some(Value::str(&e.kind)),
                "message" => Some(Value::str(&e.message)),
                "line" => Some(
                    e.span
                        .and_then(|s| {
                            self.ctx
                                .sources
                                .get(s.src)
                                .map(|src| src.line_col(s.start).0)
                        })
                        .map_or(Value::Nil, |l| Value::Int(l as i64)),
                ),
                _ => None,
            },
            Value::Handle(h) => self.handle_field(h, &name.name),
            _ => None,
        };
        found.ok_or_else(|| {
            Box::new(
                RuntimeError::new(
                    kind::TYPE,
                    format!("{} has no field `{}`", v.type_name(), name.name),
                )
                .at(name.span),
            )
        })
    }
}

pub(super) fn name_error(name: &str, span: Span) -> Box<RuntimeError> {
    Box::new(
        RuntimeError::new(kind::NAME, format!("`{}` is not defined", name))
            .at(span)
            .with_help(format!(
                "declare it with `let {} = ...` or define `fn {}(...)` before this line runs",
                name, name
            )),
    )
}
