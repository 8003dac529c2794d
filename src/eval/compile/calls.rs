//! Calls from compiled code, and each thread's cache of global callees.

use super::ExprCode;
use crate::eval::globals::{GlobalCell, GlobalRef};
use crate::eval::name_error;
use crate::eval::value::{Cell, Value};
use crate::eval::{Frame, Function, Interp, R};
use crate::runtime::Handle;
use crate::span::Span;
use std::rc::Rc;
use std::sync::Arc;

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

/// A call of a global: its cell, and the function it held when the call
/// was compiled, if that was a top-level function (nothing captured) that
/// takes as many arguments as the call gives. While the global's version is
/// still the one seen then, that function is called straight away: no
/// cache lookup, no reference count, no arity check.
pub(super) struct GlobalCallee {
    pub(super) cell: GlobalRef,
    pub(super) span: Span,
    known: Option<Known>,
}

struct Known {
    func: Arc<Function>,
    version: u64,
    /// The (no) captured variables, for the frame.
    upvals: Box<[Cell]>,
}

impl GlobalCallee {
    pub(super) fn new(cell: GlobalRef, span: Span, nargs: usize) -> GlobalCallee {
        let (value, version) = cell.get_versioned();
        let known = match value {
            Some(Value::Func(c)) if c.upvals.is_empty() && c.func.decl.params.len() == nargs => {
                Some(Known {
                    func: c.func.clone(),
                    version,
                    upvals: Box::default(),
                })
            }
            _ => None,
        };
        GlobalCallee { cell, span, known }
    }

    /// The function the global still holds, if it is the known one.
    #[inline(always)]
    fn known(&self, it: &Interp) -> Option<&Known> {
        let known = self.known.as_ref()?;
        let version = it.read_global(&self.cell, self.span, GlobalCell::version);
        (version == known.version).then_some(known)
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
        let base = self.push_args(args, frame)?;
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
        let version = self.read_global(cell, span, GlobalCell::version);
        match self.callees.current(cell.id, version) {
            Some(c) => Ok(c),
            None => self.refresh_callee(cell, span),
        }
    }

    #[cold]
    fn refresh_callee(&mut self, cell: &GlobalCell, span: Span) -> R<Rc<Callee>> {
        // The read was announced with the version just taken: no other
        // thread ran since.
        let (value, version) = cell.get_versioned();
        let value = value.ok_or_else(|| name_error(self, &cell.name, span))?;
        Ok(self.callees.store(cell.id, value, version))
    }

    /// `f(args)` where `f` names a global: the known function, else the
    /// callee from this thread's cache (current while the global has not
    /// changed since).
    #[inline(always)]
    pub(super) fn call_global(
        &mut self,
        g: &GlobalCallee,
        args: &[ExprCode],
        frame: Frame,
        span: Span,
    ) -> R<Value> {
        if let Some(known) = g.known(self) {
            let base = self.push_args(args, frame)?;
            return self.call_function(&known.func, &known.upvals, base, span);
        }
        let callee = self.cached_global(&g.cell, g.span)?;
        self.call_with(&callee.value, args, frame, span)
    }

    /// `f(v)` where `f` names a global and `v` comes from `arg` (evaluated
    /// after the callee).
    #[inline(always)]
    pub(super) fn call_global_one(
        &mut self,
        g: &GlobalCallee,
        arg: impl FnOnce(&mut Interp) -> R<Value>,
        span: Span,
    ) -> R<Value> {
        if let Some(known) = g.known(self) {
            let v = arg(self)?;
            let base = self.stack.len();
            self.stack.push(v);
            return self.call_function(&known.func, &known.upvals, base, span);
        }
        let callee = self.cached_global(&g.cell, g.span)?;
        let v = arg(self)?;
        self.call_one(&callee.value, v, span)
    }

    /// Evaluate arguments onto the stack; gives where they start.
    #[inline(always)]
    fn push_args(&mut self, args: &[ExprCode], frame: Frame) -> R<usize> {
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
        Ok(base)
    }

    /// A local's value, read through its cell if closures capture it.
    #[inline]
    pub(super) fn local(&self, frame: Frame, slot: usize) -> Value {
        match &self.stack[frame.base + slot] {
            // Most locals are ints: no call to the general clone.
            Value::Int(i) => Value::Int(*i),
            v => clone_local(self, v),
        }
    }

    #[inline(always)]
    pub(super) fn store_local(&mut self, frame: Frame, slot: usize, v: Value) {
        let place = &mut self.stack[frame.base + slot];
        match place {
            Value::Cell(_) => self.store_captured(frame.base + slot, v),
            _ => super::store::put(place, v),
        }
    }

    /// Out of line: a store into a variable closures share.
    #[inline(never)]
    fn store_captured(&mut self, index: usize, v: Value) {
        if let Value::Cell(c) = &self.stack[index] {
            let c = c.clone();
            self.write_cell(&c, v);
        }
    }

    /// A variable that closures share is read or written: under control,
    /// a scheduling point, as for a global (threads may share it).
    #[inline(never)]
    pub(super) fn cell_point(&self, cell: &Cell, write: bool) {
        use crate::runtime::engine::Op;
        let op = if write { Op::Write } else { Op::Read };
        self.point(op, cell.key());
    }

    /// A shared variable's value.
    #[inline]
    pub(super) fn read_cell(&self, cell: &Cell) -> Value {
        if self.controlled {
            self.cell_point(cell, false);
        }
        cell.read().clone()
    }

    /// A new value for a shared variable.
    #[inline]
    pub(super) fn write_cell(&self, cell: &Cell, v: Value) {
        if self.controlled {
            self.cell_point(cell, true);
        }
        store_in_cell(cell, v)
    }
}

/// Out of line: the lock would make every closure that reads a local bigger.
#[inline(never)]
fn clone_local(it: &Interp, v: &Value) -> Value {
    match v {
        Value::Cell(c) => it.read_cell(c),
        v => v.clone(),
    }
}

/// Out of line: the lock would make every local store's closure bigger.
#[inline(never)]
fn store_in_cell(cell: &Cell, v: Value) {
    *cell.lock() = v;
}
