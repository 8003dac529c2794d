//! Nodes whose two operands are locals, int constants or (on the left)
//! globals (`n < 2`, `n - 1`, `total = total + i`, `if n < 2 { .. }`,
//! `count = count + 1`): one closure reads both operands in place, with no
//! call per operand, and ints stay in registers. Anything that is not two
//! ints (or that overflows) takes the full path, with the same errors as
//! everywhere else.

use super::calls::GlobalCallee;
use super::store::put;
use super::{tri, Block, Compiler, CondCode, Ctl, ExprCode, StmtCode};
use crate::ast::{BinOp, Expr, ExprKind, Name, Res, VarRef};
use crate::eval::globals::{GlobalCell, GlobalRef, GlobalWrite};
use crate::eval::value::Value;
use crate::eval::{name_error, not_declared, ops};
use crate::eval::{Frame, Interp, R};
use crate::span::Span;

/// Where an operand comes from; each kind is its own type so the closures
/// are compiled for exactly their pair of operand kinds.
pub(super) trait Operand: Send + Sync + 'static {
    /// The int, when it is one, without cloning anything.
    fn int(&self, it: &Interp, f: Frame) -> Option<i64>;
    fn value(&self, it: &Interp, f: Frame) -> R<Value>;

    /// Whether this operand is the local `slot` itself.
    fn is_slot(&self, _slot: usize) -> bool {
        false
    }
}

#[derive(Clone, Copy)]
pub(super) struct Slot(usize);

#[derive(Clone, Copy)]
pub(super) struct Const(i64);

/// A global, read without its lock while it holds a scalar.
pub(super) struct Global {
    cell: GlobalRef,
    span: Span,
}

impl Operand for Slot {
    #[inline(always)]
    fn int(&self, it: &Interp, f: Frame) -> Option<i64> {
        match it.stack[f.base + self.0] {
            Value::Int(x) => Some(x),
            _ => None,
        }
    }

    #[inline]
    fn value(&self, it: &Interp, f: Frame) -> R<Value> {
        Ok(it.local(f, self.0))
    }

    #[inline(always)]
    fn is_slot(&self, slot: usize) -> bool {
        self.0 == slot
    }
}

impl Operand for Const {
    #[inline(always)]
    fn int(&self, _: &Interp, _: Frame) -> Option<i64> {
        Some(self.0)
    }

    #[inline]
    fn value(&self, _: &Interp, _: Frame) -> R<Value> {
        Ok(Value::Int(self.0))
    }
}

impl Operand for Global {
    #[inline(always)]
    fn int(&self, it: &Interp, _: Frame) -> Option<i64> {
        it.read_global(&self.cell, self.span, GlobalCell::get_int)
    }

    #[inline]
    fn value(&self, it: &Interp, _: Frame) -> R<Value> {
        it.read_global(&self.cell, self.span, GlobalCell::get)
            .ok_or_else(|| name_error(it, &self.cell.name, self.span))
    }
}

/// What to build from a pair of operands (a value, a test, an assignment).
pub(super) trait Build {
    type Out;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> Self::Out;
}

pub(super) fn local_slot(e: &Expr) -> Option<usize> {
    match &e.node {
        ExprKind::Var(VarRef {
            res: Res::Local(slot),
            ..
        }) => Some(*slot as usize),
        _ => None,
    }
}

impl Compiler<'_> {
    /// `w` built for the operands of `lhs op rhs`, if both are simple (and
    /// not both constants, which is rare enough to leave to the general
    /// path).
    pub(super) fn with_operands<W: Build>(&self, lhs: &Expr, rhs: &Expr, w: W) -> Option<W::Out> {
        let konst = |e: &Expr| match e.node {
            ExprKind::Int(k) => Some(k),
            _ => None,
        };
        let global = |e: &Expr| self.global_of(e).map(|cell| Global { cell, span: e.span });
        match (local_slot(lhs), local_slot(rhs)) {
            (Some(a), Some(b)) => Some(w.build(Slot(a), Slot(b))),
            (Some(a), None) => match konst(rhs) {
                Some(k) => Some(w.build(Slot(a), Const(k))),
                None => Some(w.build(Slot(a), global(rhs)?)),
            },
            (None, Some(b)) => match konst(lhs) {
                Some(k) => Some(w.build(Const(k), Slot(b))),
                None => Some(w.build(global(lhs)?, Slot(b))),
            },
            (None, None) => Some(w.build(global(lhs)?, Const(konst(rhs)?))),
        }
    }
}

/// The int result of `x op y` in the simple case; `None` sends the
/// operands down the full path (floats, strings, overflow, division by zero).
pub(super) trait IntOp:
    Fn(i64, i64) -> Option<Value> + Copy + Send + Sync + 'static
{
}
impl<F: Fn(i64, i64) -> Option<Value> + Copy + Send + Sync + 'static> IntOp for F {}

pub(super) trait IntTest: Fn(i64, i64) -> bool + Copy + Send + Sync + 'static {}
impl<F: Fn(i64, i64) -> bool + Copy + Send + Sync + 'static> IntTest for F {}

/// A value of `a op b`.
pub(super) struct ValueOf<F> {
    pub op: BinOp,
    pub span: Span,
    pub fast: F,
}

impl<F: IntOp> ValueOf<F> {
    /// `a op b`: the int fast path, else the full one.
    #[inline(always)]
    pub(super) fn of<A: Operand, B: Operand>(
        &self,
        it: &mut Interp,
        f: Frame,
        a: &A,
        b: &B,
    ) -> R<Value> {
        if let (Some(x), Some(y)) = (a.int(it, f), b.int(it, f)) {
            if let Some(v) = (self.fast)(x, y) {
                return Ok(v);
            }
        }
        full_path(it, f, self.op, a, b, self.span)
    }
}

impl<F: IntOp> Build for ValueOf<F> {
    type Out = ExprCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> ExprCode {
        Box::new(move |it, f| self.of(it, f, &a, &b))
    }
}

/// `g(a op b)` where `g` names a global and `a op b` fuses: the argument
/// is worked out inside the call node (after the callee, as always).
pub(super) struct CallArgOf<F> {
    pub callee: GlobalCallee,
    pub span: Span,
    pub arg: ValueOf<F>,
}

impl<F: IntOp> Build for CallArgOf<F> {
    type Out = ExprCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> ExprCode {
        let CallArgOf { callee, span, arg } = self;
        Box::new(move |it, f| it.call_global_one(&callee, |it| arg.of(it, f, &a, &b), span))
    }
}

/// A condition `a op b`.
pub(super) struct TestOf<T> {
    pub op: BinOp,
    pub span: Span,
    pub test: T,
}

impl<T: IntTest> TestOf<T> {
    /// Whether `a op b` holds: the int comparison, else the full path.
    #[inline(always)]
    pub(super) fn holds<A: Operand, B: Operand>(
        &self,
        it: &mut Interp,
        f: Frame,
        a: &A,
        b: &B,
    ) -> R<bool> {
        if let (Some(x), Some(y)) = (a.int(it, f), b.int(it, f)) {
            return Ok((self.test)(x, y));
        }
        Ok(full_path(it, f, self.op, a, b, self.span)?.truthy())
    }
}

impl<T: IntTest> Build for TestOf<T> {
    type Out = CondCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> CondCode {
        Box::new(move |it, f| self.holds(it, f, &a, &b))
    }
}

/// `if a op b { body }` with no other branch.
pub(super) struct IfOf<T> {
    pub test: TestOf<T>,
    pub body: Block,
}

impl<T: IntTest> Build for IfOf<T> {
    type Out = StmtCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> StmtCode {
        let IfOf { test, body } = self;
        Box::new(move |it, f| {
            if tri!(it, test.holds(it, f, &a, &b)) {
                body.run(it, f)
            } else {
                Ctl::Normal
            }
        })
    }
}

/// `if a op b { return r }`, the base case of a recursion, in one closure.
pub(super) struct IfReturnOf<T> {
    pub test: TestOf<T>,
    pub value: ExprCode,
    /// `r` when it is a local: read in place, no call.
    pub local: Option<usize>,
}

impl<T: IntTest> Build for IfReturnOf<T> {
    type Out = StmtCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> StmtCode {
        let IfReturnOf { test, value, local } = self;
        Box::new(move |it, f| {
            if !tri!(it, test.holds(it, f, &a, &b)) {
                return Ctl::Normal;
            }
            let v = match local {
                Some(slot) => it.local(f, slot),
                None => tri!(it, value(it, f)),
            };
            put(&mut it.pending.ret, v);
            Ctl::Return
        })
    }
}

/// `x = a op b` (or `x op= b`, where `a` is `x`) into the local slot `x`.
pub(super) struct AssignOf<F> {
    pub slot: usize,
    pub value: ValueOf<F>,
}

impl<F: IntOp> Build for AssignOf<F> {
    type Out = StmtCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> StmtCode {
        let AssignOf {
            slot,
            value: ValueOf { op, span, fast },
        } = self;
        Box::new(move |it, f| {
            if let (Some(x), Some(y)) = (a.int(it, f), b.int(it, f)) {
                if let Some(v) = fast(x, y) {
                    if a.is_slot(slot) {
                        // `x = x + y`: the slot was just read as an int, so
                        // it is neither a cell nor anything to drop.
                        let place = &mut it.stack[f.base + slot];
                        std::mem::forget(std::mem::replace(place, v));
                    } else {
                        it.store_local(f, slot, v);
                    }
                    return Ctl::Normal;
                }
            }
            let v = tri!(it, full_path(it, f, op, &a, &b, span));
            it.store_local(f, slot, v);
            Ctl::Normal
        })
    }
}

/// `g = a op b` (or `g op= b`) into the global `g`: a read, then an
/// assignment, like everywhere else (so it can lose updates without a lock).
pub(super) struct AssignGlobalOf<F> {
    pub cell: GlobalRef,
    pub name: Name,
    pub target: Written,
    pub value: ValueOf<F>,
}

impl<F: IntOp> Build for AssignGlobalOf<F> {
    type Out = StmtCode;
    fn build<A: Operand, B: Operand>(self, a: A, b: B) -> StmtCode {
        let AssignGlobalOf {
            cell,
            name,
            target,
            value: ValueOf { op, span, fast },
        } = self;
        // The write is spelled out on each path, so the fast one hands its
        // int over in registers rather than through a merged stack slot.
        Box::new(move |it, f| {
            if let (Some(x), Some(y)) = (a.int(it, f), b.int(it, f)) {
                if let Some(v) = fast(x, y) {
                    return assign_global(it, &cell, &name, &target, v);
                }
            }
            let v = tri!(it, full_path(it, f, op, &a, &b, span));
            assign_global(it, &cell, &name, &target, v)
        })
    }
}

#[inline(always)]
fn assign_global(
    it: &mut Interp,
    cell: &GlobalCell,
    name: &Name,
    target: &Written,
    v: Value,
) -> Ctl {
    if !it.write_global(cell, Some(target.target), v, GlobalWrite::Assign) {
        return it.fail(not_declared(it, name, target.target, target.value));
    }
    Ctl::Normal
}

/// Everything but two ints: out of line, so the closures stay small.
#[inline(never)]
fn full_path<A: Operand, B: Operand>(
    it: &mut Interp,
    f: Frame,
    op: BinOp,
    a: &A,
    b: &B,
    span: Span,
) -> R<Value> {
    let x = a.value(it, f)?;
    let y = b.value(it, f)?;
    it.binary_values(op, x, y, span)
}

/// Calls `u.with(fast)` with the int fast path of `op` (`None` for none).
pub(super) trait WithIntOp {
    type Out;
    fn with<F: IntOp>(self, fast: F) -> Self::Out;
}

/// `u.with(fast)` where `fast` is `ops::int_arith` for the operator `op`,
/// fixed: each closure is compiled for its one operator.
pub(super) fn by_int_op<U: WithIntOp>(op: BinOp, u: U) -> U::Out {
    macro_rules! each {
        ($($op:ident)*) => {
            match op {
                $(BinOp::$op => u.with(|x: i64, y: i64| ops::int_arith(BinOp::$op, x, y)),)*
                // Short-circuit forms never reach an int fast path.
                BinOp::And | BinOp::Or => u.with(|_, _| None),
            }
        };
    }
    each!(Add Sub Mul Div FloorDiv Mod Pow Eq Ne Lt Le Gt Ge In NotIn)
}

/// Calls `u.with(test)` for a comparison; `None` for other operators.
pub(super) trait WithIntTest {
    type Out;
    fn with<T: IntTest>(self, test: T) -> Self::Out;
}

/// `u.with(test)` where `test` is `ops::int_test` for the comparison `op`.
pub(super) fn by_int_test<U: WithIntTest>(op: BinOp, u: U) -> Option<U::Out> {
    macro_rules! each {
        ($($op:ident)*) => {
            match op {
                $(BinOp::$op => u.with(|x: i64, y: i64| ops::int_test(BinOp::$op, x, y) == Some(true)),)*
                _ => return None,
            }
        };
    }
    Some(each!(Eq Ne Lt Le Gt Ge))
}

/// An assignment's target and value, for the report when its global was
/// never declared: the help repeats the value (`let total = 0`).
#[derive(Clone, Copy)]
pub(super) struct Written {
    pub target: Span,
    pub value: Span,
}

impl Written {
    pub(super) fn new(target: Span, value: Span) -> Written {
        Written { target, value }
    }
}
