//! Calls from compiled code, and each thread's cache of global callees.

use super::ExprCode;
use crate::eval::globals::GlobalCell;
use crate::eval::name_error;
use crate::eval::value::{Cell, Value};
use crate::eval::{Frame, Interp, R};
use crate::runtime::Handle;
use crate::span::Span;
use std::rc::Rc;

/// A global's value as this thread last read it, and the cell's version then.
pub(super) struct Callee {
    version: u64,
    pub(super) value: Value,
}

/// This thread's copies of the global functions (and builtins) it calls, by
/// `GlobalCell::id`. While a cell's version is unchanged its copy is current,
/// so calling a global takes no lock and touches no shared reference count
/// (which threads calling the same function would otherwise fight over).
/// `Rc`: a call holds its callee while nested calls may refresh the cache.
#[derive(Default)]
pub struct CalleeCache(Vec<Option<Rc<Callee>>>);

impl CalleeCache {
    /// The copy of global `id` if it is still at `version`.
    #[inline]
    fn current(&self, id: u32, version: u64) -> Option<Rc<Callee>> {
        match self.0.get(id as usize) {
            Some(Some(c)) if c.version == version => Some(c.clone()),
            _ => None,
        }
    }

    #[cold]
    fn store(&mut self, id: u32, value: Value, version: u64) -> Rc<Callee> {
        let callee = Rc::new(Callee { version, value });
        // Only callables and locks: a cached list would be kept alive for
        // nothing.
        if matches!(
            callee.value,
            Value::Func(_) | Value::Builtin(_) | Value::Handle(Handle::Lock(_))
        ) {
            let id = id as usize;
            if self.0.len() <= id {
                self.0.resize(id + 1, None);
            }
            self.0[id] = Some(callee.clone());
        }
        callee
    }
}

/// Evaluate arguments in order into a vector (builtins and methods take one).
pub(super) fn eval_all(args: &[ExprCode], it: &mut Interp, frame: Frame) -> R<Vec<Value>> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        out.push(a(it, frame)?);
    }
    Ok(out)
}

impl Interp {
    /// Call a value with compiled arguments. A function's arguments go
    /// straight onto the stack, where they become its first slots. Inlined
    /// into each call node, so a call of a function is one closure deep.
    #[inline(always)]
    pub(super) fn call_with(
        &mut self,
        callee: &Value,
        args: &[ExprCode],
        frame: Frame,
        span: Span,
    ) -> R<Value> {
        let Value::Func(closure) = callee else {
            return self.call_not_closure(callee, args, frame, span);
        };
        let base = self.stack.len();
        for a in args {
            match a(self, frame) {
                Ok(v) => self.stack.push(v),
                Err(e) => {
                    self.stack.truncate(base);
                    return Err(e);
                }
            }
        }
        self.call_closure(closure, base, span)
    }

    /// A call with one argument, already evaluated.
    #[inline(always)]
    pub(super) fn call_one(&mut self, callee: &Value, arg: Value, span: Span) -> R<Value> {
        let Value::Func(closure) = callee else {
            return self.call_value(callee, vec![arg], span);
        };
        let base = self.stack.len();
        self.stack.push(arg);
        self.call_closure(closure, base, span)
    }

    #[inline(never)]
    fn call_not_closure(
        &mut self,
        callee: &Value,
        args: &[ExprCode],
        frame: Frame,
        span: Span,
    ) -> R<Value> {
        let args = eval_all(args, self, frame)?;
        self.call_value(callee, args, span)
    }

    /// A global's value through this thread's cache (callables and locks
    /// are kept; anything else is read afresh).
    #[inline]
    pub(super) fn cached_global(&mut self, cell: &GlobalCell, span: Span) -> R<Rc<Callee>> {
        let version = self.read_global(cell, GlobalCell::version);
        match self.callees.current(cell.id, version) {
            Some(c) => Ok(c),
            None => self.refresh_callee(cell, span),
        }
    }

    #[cold]
    fn refresh_callee(&mut self, cell: &GlobalCell, span: Span) -> R<Rc<Callee>> {
        let (value, version) = self.read_global(cell, GlobalCell::get_versioned);
        let value = value.ok_or_else(|| name_error(&cell.name, span))?;
        Ok(self.callees.store(cell.id, value, version))
    }

    /// `f(args)` where `f` names a global: the callee comes from this
    /// thread's cache when the global has not changed since.
    #[inline]
    pub(super) fn call_global(
        &mut self,
        cell: &GlobalCell,
        callee_span: Span,
        args: &[ExprCode],
        frame: Frame,
        span: Span,
    ) -> R<Value> {
        let callee = self.cached_global(cell, callee_span)?;
        self.call_with(&callee.value, args, frame, span)
    }

    /// A local's value, read through its cell if closures capture it.
    #[inline]
    pub(super) fn local(&self, frame: Frame, slot: usize) -> Value {
        match &self.stack[frame.base + slot] {
            // Most locals are ints: no call to the general clone.
            Value::Int(i) => Value::Int(*i),
            Value::Cell(c) => c.lock().clone(),
            v => v.clone(),
        }
    }

    #[inline(always)]
    pub(super) fn store_local(&mut self, frame: Frame, slot: usize, v: Value) {
        let place = &mut self.stack[frame.base + slot];
        match place {
            Value::Cell(c) => store_in_cell(c, v),
            _ => super::stmt::put(place, v),
        }
    }
}

/// Out of line: the lock would make every local store's closure bigger.
#[inline(never)]
fn store_in_cell(cell: &Cell, v: Value) {
    *cell.lock() = v;
}
