//! Compiling assignments: `x = v`, `xs[i] = v`, and `x op= v` on both.
//! Left to right, as everywhere: a compound assignment reads its target
//! before it evaluates `v`, and `xs[i] = v` evaluates `xs`, then `i`, then `v`.

use super::fused::{by_int_op, AssignGlobalOf, AssignOf, IntOp, ValueOf, WithIntOp, Written};
use super::{tri, Compiler, Ctl, StmtCode};
use crate::ast::{BinOp, Expr, ExprKind, Name, Res, VarRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::eval::globals::{GlobalRef, GlobalWrite};
use crate::eval::value::Value;
use crate::eval::{not_declared, ops, Frame, Interp, R};
use crate::span::Span;

impl Compiler<'_> {
    pub(super) fn assign(&self, target: &Expr, op: Option<BinOp>, value: &Expr) -> StmtCode {
        match &target.node {
            ExprKind::Var(var) => self
                .fused_assign(target, op, value)
                .unwrap_or_else(|| self.assign_var(var, target.span, op, value)),
            ExprKind::Index {
                target: container,
                index,
            } => self.assign_index(container, index, target.span, op, value),
            _ => {
                let span = target.span;
                Box::new(move |it, _| {
                    it.fail(Box::new(
                        RuntimeError::new(kind::TYPE, "cannot assign to this expression").at(span),
                    ))
                })
            }
        }
    }

    /// `x = a op b` and `x op= b` into a local or a global, when the
    /// operands are simple (see `fused`): one closure, no intermediate
    /// `Value`.
    fn fused_assign(&self, target: &Expr, op: Option<BinOp>, value: &Expr) -> Option<StmtCode> {
        let into = match self.var_store(target, value.span)? {
            VarStore::Local(slot) => FusedInto::Local(slot),
            VarStore::Global(cell, name, at) => FusedInto::Global(cell, name, at),
            VarStore::Upval(_) | VarStore::Nowhere => return None,
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
            cx: self,
            into,
            op,
            lhs,
            rhs,
            span,
        };
        by_int_op(op, ctx)
    }

    fn assign_var(&self, var: &VarRef, span: Span, op: Option<BinOp>, value: &Expr) -> StmtCode {
        let value_code = self.expr(value);
        let store = match self.var_store_of(var, Written::new(span, value.span)) {
            VarStore::Local(slot) if op.is_none() => {
                return Box::new(move |it, f| {
                    let v = tri!(it, value_code(it, f));
                    it.store_local(f, slot, v);
                    Ctl::Normal
                })
            }
            store => store,
        };
        let Some(op) = op else {
            return Box::new(move |it, f| {
                let v = tri!(it, value_code(it, f));
                tri!(it, store.write(it, v, f));
                Ctl::Normal
            });
        };
        let (read, whole) = (self.read_var(var, span), span.to(value.span));
        Box::new(move |it, f| {
            let old = tri!(it, read(it, f));
            let v = tri!(it, value_code(it, f));
            let v = tri!(it, it.binary_values(op, old, v, whole));
            tri!(it, store.write(it, v, f));
            Ctl::Normal
        })
    }

    /// `xs[i] = v` and `xs[i] op= v`: `xs`, `i`, (the old item), `v`.
    fn assign_index(
        &self,
        container: &Expr,
        index: &Expr,
        span: Span,
        op: Option<BinOp>,
        value: &Expr,
    ) -> StmtCode {
        let (container, index) = (self.expr(container), self.expr(index));
        let value_code = self.expr(value);
        let at = move |e: RuntimeError| Box::new(e.at(span));
        let Some(op) = op else {
            return Box::new(move |it, f| {
                let c = tri!(it, container(it, f));
                let i = tri!(it, index(it, f));
                let v = tri!(it, value_code(it, f));
                tri!(it, ops::store_index(&c, i, v).map_err(at));
                Ctl::Normal
            });
        };
        let whole = span.to(value.span);
        Box::new(move |it, f| {
            let c = tri!(it, container(it, f));
            let i = tri!(it, index(it, f));
            let old = tri!(it, ops::index(&c, &i).map_err(at));
            let v = tri!(it, value_code(it, f));
            let v = tri!(it, it.binary_values(op, old, v, whole));
            tri!(it, ops::store_index(&c, i, v).map_err(at));
            Ctl::Normal
        })
    }

    fn var_store(&self, target: &Expr, value: Span) -> Option<VarStore> {
        match &target.node {
            ExprKind::Var(var) => Some(self.var_store_of(var, Written::new(target.span, value))),
            _ => None,
        }
    }

    fn var_store_of(&self, var: &VarRef, at: Written) -> VarStore {
        match &var.res {
            Res::Local(slot) => VarStore::Local(*slot as usize),
            Res::Upval(i) => VarStore::Upval(*i as usize),
            Res::Global(id) => match self.global(*id) {
                Some(cell) => VarStore::Global(cell, var.name.clone(), at),
                None => VarStore::Nowhere,
            },
            Res::Unresolved => VarStore::Nowhere,
        }
    }
}

/// Where an assignment to a variable stores.
enum VarStore {
    Local(usize),
    Upval(usize),
    Global(GlobalRef, Name, Written),
    Nowhere,
}

impl VarStore {
    #[inline]
    fn write(&self, it: &mut Interp, v: Value, f: Frame) -> R<()> {
        match self {
            VarStore::Local(slot) => it.store_local(f, *slot, v),
            VarStore::Upval(i) => it.write_cell(&f.upvals[*i], v),
            VarStore::Global(cell, name, at) => {
                if !it.write_global(cell, Some(at.target), v, GlobalWrite::Assign) {
                    return Err(not_declared(it, name, at.target, at.value));
                }
            }
            VarStore::Nowhere => {}
        }
        Ok(())
    }
}

/// Where a fused assignment stores.
enum FusedInto {
    Local(usize),
    Global(GlobalRef, Name, Written),
}

struct FusedAssign<'c, 'e> {
    cx: &'c Compiler<'c>,
    into: FusedInto,
    op: BinOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
    span: Span,
}

impl WithIntOp for FusedAssign<'_, '_> {
    type Out = Option<StmtCode>;
    fn with<F: IntOp>(self, fast: F) -> Option<StmtCode> {
        let FusedAssign {
            cx,
            into,
            op,
            lhs,
            rhs,
            span,
        } = self;
        let value = ValueOf { op, span, fast };
        match into {
            FusedInto::Local(slot) => cx.with_operands(lhs, rhs, AssignOf { slot, value }),
            FusedInto::Global(cell, name, target) => cx.with_operands(
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
