//! Global variables: one individually locked cell per name, shared by every
//! thread of a process. A read or an assignment is atomic; `n = n - 1` is a
//! read followed by an assignment, so it can lose updates, as in any language.

use crate::ast::Name;
use crate::eval::value::Value;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub type GlobalRef = Arc<GlobalCell>;

#[derive(Debug)]
pub struct GlobalCell {
    pub name: Name,
    /// Process-wide and small: indexes each thread's cache of callees.
    pub(crate) id: u32,
    /// `None` until a `let`/`fn` defines it: reading it then is a NameError.
    /// Writers always take this lock; readers of a scalar need not.
    value: RwLock<Option<Value>>,
    /// A sequence lock over `scalar`: bit 0 is set while an assignment is
    /// being written, bits 1-3 say which kind of scalar the value is (0: not
    /// a scalar, or not defined: read `value`), and the rest counts
    /// assignments. So it also serves as the version a thread's cache of
    /// callees checks.
    stamp: AtomicU64,
    /// The value's payload when it is nil, a bool, an int or a float, so
    /// the common read (a shared counter or flag) takes no lock and writes
    /// no shared cache line.
    scalar: AtomicU64,
}

const WRITING: u64 = 1;
const KIND_SHIFT: u32 = 1;
const KIND_MASK: u64 = 0b111;
const COUNT_SHIFT: u32 = 4;

const NOT_SCALAR: u64 = 0;
const NIL: u64 = 1;
const BOOL: u64 = 2;
const INT: u64 = 3;
const FLOAT: u64 = 4;

fn scalar_of(v: &Value) -> (u64, u64) {
    match v {
        Value::Nil => (NIL, 0),
        Value::Bool(b) => (BOOL, u64::from(*b)),
        Value::Int(i) => (INT, *i as u64),
        Value::Float(f) => (FLOAT, f.to_bits()),
        _ => (NOT_SCALAR, 0),
    }
}

fn value_of(kind: u64, bits: u64) -> Option<Value> {
    match kind {
        NIL => Some(Value::Nil),
        BOOL => Some(Value::Bool(bits != 0)),
        INT => Some(Value::Int(bits as i64)),
        FLOAT => Some(Value::Float(f64::from_bits(bits))),
        _ => None,
    }
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

impl GlobalCell {
    fn new(name: Name) -> GlobalCell {
        GlobalCell {
            name,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value: RwLock::new(None),
            stamp: AtomicU64::new(0),
            scalar: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn get(&self) -> Option<Value> {
        self.get_scalar().or_else(|| self.value.read().clone())
    }

    /// The value without taking the lock, if it is a scalar and no
    /// assignment is half-written (the classic sequence-lock read).
    #[inline]
    fn get_scalar(&self) -> Option<Value> {
        let before = self.stamp.load(Ordering::Acquire);
        let kind = (before >> KIND_SHIFT) & KIND_MASK;
        if before & WRITING != 0 || kind == NOT_SCALAR {
            return None;
        }
        let bits = self.scalar.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if self.stamp.load(Ordering::Relaxed) != before {
            return None;
        }
        value_of(kind, bits)
    }

    /// The value if it is an int, without taking the lock.
    #[inline]
    pub(crate) fn get_int(&self) -> Option<i64> {
        let before = self.stamp.load(Ordering::Acquire);
        if before & ((KIND_MASK << KIND_SHIFT) | WRITING) != INT << KIND_SHIFT {
            return None;
        }
        let bits = self.scalar.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (self.stamp.load(Ordering::Relaxed) == before).then_some(bits as i64)
    }

    /// The value together with the version it belongs to.
    pub(crate) fn get_versioned(&self) -> (Option<Value>, u64) {
        let value = self.value.read();
        (value.clone(), self.stamp.load(Ordering::Relaxed))
    }

    /// Changes with every assignment. Acquire pairs with the release in
    /// `set`: seeing a version means seeing the value stored with it.
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.stamp.load(Ordering::Acquire)
    }

    pub fn set(&self, value: Value) {
        let mut slot = self.value.write();
        self.store(&mut slot, value);
    }

    /// Assign to a defined global; `false` (and no change) if it is not
    /// defined yet. One lock round for the check and the store.
    #[inline]
    pub fn assign(&self, value: Value) -> bool {
        let mut slot = self.value.write();
        if slot.is_none() {
            return false;
        }
        self.store(&mut slot, value);
        true
    }

    /// Under the write lock: only one writer at a time touches `stamp`.
    #[inline]
    fn store(&self, slot: &mut Option<Value>, value: Value) {
        let (kind, bits) = scalar_of(&value);
        let stamp = self.stamp.load(Ordering::Relaxed);
        self.stamp.store(stamp | WRITING, Ordering::Relaxed);
        fence(Ordering::Release);
        self.scalar.store(bits, Ordering::Relaxed);
        let count = (stamp >> COUNT_SHIFT) + 1;
        self.stamp.store(
            (count << COUNT_SHIFT) | (kind << KIND_SHIFT),
            Ordering::Release,
        );
        // The old value is dropped under the lock, as a reader may be
        // cloning it.
        *slot = Some(value);
    }

    pub fn is_defined(&self) -> bool {
        (self.stamp.load(Ordering::Acquire) >> KIND_SHIFT) & KIND_MASK != NOT_SCALAR
            || self.value.read().is_some()
    }
}

/// The table of a process's globals by name. Resolving a program adds a cell
/// for every global name it mentions, defined or not, so later definitions
/// (and later REPL entries) are seen by code resolved earlier.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    cells: Arc<Mutex<HashMap<Name, GlobalRef>>>,
}

impl Globals {
    pub fn cell(&self, name: &Name) -> GlobalRef {
        self.cells
            .lock()
            .entry(name.clone())
            .or_insert_with(|| Arc::new(GlobalCell::new(name.clone())))
            .clone()
    }

    pub fn define(&self, name: &str, value: Value) {
        self.cell(&Name::from(name)).set(value);
    }

    /// Every defined global, sorted by name (REPL completion, process copies).
    pub fn defined(&self) -> Vec<(Name, Value)> {
        let cells = self.cells.lock();
        let mut out: Vec<_> = cells
            .iter()
            .filter_map(|(name, cell)| cell.get().map(|v| (name.clone(), v)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
