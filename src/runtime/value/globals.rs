//! Global variables: one cell per name, shared by every thread of a
//! process. A read or an assignment is atomic; `n = n - 1` is a
//! read followed by an assignment, so it can lose updates, as in any language.

use super::Value;
use crate::ast::{GlobalId, Name};
use crate::runtime::int_hash::IntMap;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

pub type GlobalRef = Arc<GlobalCell>;

/// Globals and objects share one space of ids at scheduling points: a
/// global's has this bit set.
pub const GLOBAL_OBJECT: u64 = 1 << 63;

#[derive(Debug)]
pub struct GlobalCell {
    pub name: Name,
    /// Its place in the table: small, so it indexes each thread's cache of
    /// callees.
    pub(crate) id: u32,
    /// The value while it is not a scalar (a list, a function, a handle...);
    /// `None` while it is one or not defined. Readers clone it under the
    /// read lock; a write that puts a value here or takes one out holds the
    /// write lock.
    heap: RwLock<Option<Value>>,
    /// A sequence lock: bit 0 is set while an assignment is being written
    /// (it is also what keeps writers apart), bits 1-3 say which kind of
    /// scalar the value is (0: not a scalar, see `heap`), and the rest
    /// counts assignments (0: not defined yet, reading it is a NameError).
    /// So it also serves as the version a thread's cache of callees checks.
    stamp: AtomicU64,
    /// The value's payload when it is nil, a bool, an int or a float: the
    /// common read (a shared counter or flag) takes no lock and writes no
    /// shared cache line, and one scalar over another is one
    /// compare-and-swap and two stores.
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

fn kind_of(stamp: u64) -> u64 {
    (stamp >> KIND_SHIFT) & KIND_MASK
}

fn defined(stamp: u64) -> bool {
    stamp >> COUNT_SHIFT != 0
}

/// The stamp after an assignment of a `kind` over `stamp`.
fn next_stamp(stamp: u64, kind: u64) -> u64 {
    (((stamp >> COUNT_SHIFT) + 1) << COUNT_SHIFT) | (kind << KIND_SHIFT)
}

impl GlobalCell {
    fn new(name: Name, id: u32) -> GlobalCell {
        GlobalCell {
            name,
            id,
            heap: RwLock::new(None),
            stamp: AtomicU64::new(0),
            scalar: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn get(&self) -> Option<Value> {
        self.get_scalar().or_else(|| self.get_versioned().0)
    }

    /// The value without taking the lock, if it is a scalar and no
    /// assignment is half-written (the classic sequence-lock read).
    #[inline]
    fn get_scalar(&self) -> Option<Value> {
        let before = self.stamp.load(Ordering::Acquire);
        if before & WRITING != 0 || !defined(before) {
            return None;
        }
        self.payload_at(before)
            .and_then(|bits| value_of(kind_of(before), bits))
    }

    /// The value if it is an int, without taking the lock.
    #[inline]
    pub(crate) fn get_int(&self) -> Option<i64> {
        let before = self.stamp.load(Ordering::Acquire);
        if before & ((KIND_MASK << KIND_SHIFT) | WRITING) != INT << KIND_SHIFT {
            return None;
        }
        self.payload_at(before).map(|bits| bits as i64)
    }

    /// The scalar payload, if the stamp (loaded with Acquire, and not
    /// WRITING) is still `stamp` after reading it: no assignment overlapped.
    #[inline]
    fn payload_at(&self, stamp: u64) -> Option<u64> {
        let bits = self.scalar.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (self.stamp.load(Ordering::Relaxed) == stamp).then_some(bits)
    }

    /// The value together with the version it belongs to.
    pub(crate) fn get_versioned(&self) -> (Option<Value>, u64) {
        loop {
            let heap = self.heap.read();
            let stamp = self.stamp.load(Ordering::Acquire);
            if stamp & WRITING == 0 {
                if !defined(stamp) {
                    return (None, stamp);
                }
                // Only a writer holding the write lock changes the heap value.
                if kind_of(stamp) == NOT_SCALAR {
                    return (heap.clone(), stamp);
                }
                if let Some(bits) = self.payload_at(stamp) {
                    return (value_of(kind_of(stamp), bits), stamp);
                }
            }
            drop(heap);
            std::hint::spin_loop();
        }
    }

    /// Changes with every assignment. Acquire pairs with the release in
    /// `publish`: seeing a version means seeing the value stored with it.
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.stamp.load(Ordering::Acquire)
    }

    /// Define (or redefine) it: `let`, `fn`.
    pub fn set(&self, value: Value) {
        self.write(value, false);
    }

    /// Assign to a defined global; `false` (and no change) if it is not
    /// defined yet.
    #[inline]
    pub fn assign(&self, value: Value) -> bool {
        self.write(value, true)
    }

    #[inline]
    fn write(&self, value: Value, must_be_defined: bool) -> bool {
        let (kind, bits) = scalar_of(&value);
        if kind != NOT_SCALAR {
            let stamp = self.stamp.load(Ordering::Relaxed);
            // A scalar over a scalar: no lock (the common `n = n + 1`).
            if defined(stamp) && kind_of(stamp) != NOT_SCALAR && self.begin(stamp) {
                self.publish(stamp, kind, bits);
                // A scalar owns nothing: no call to drop it.
                std::mem::forget(value);
                return true;
            }
        }
        self.write_locked(value, kind, bits, must_be_defined)
    }

    /// Become the one writer, if the stamp is still `stamp` (and nobody is
    /// writing).
    #[inline]
    fn begin(&self, stamp: u64) -> bool {
        let ok = stamp & WRITING == 0
            && self
                .stamp
                .compare_exchange(stamp, stamp | WRITING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        if ok {
            // Readers that see the new payload must also see WRITING.
            fence(Ordering::Release);
        }
        ok
    }

    #[inline]
    fn publish(&self, stamp: u64, kind: u64, bits: u64) {
        self.scalar.store(bits, Ordering::Relaxed);
        self.stamp.store(next_stamp(stamp, kind), Ordering::Release);
    }

    /// Any write that puts a value into `heap` or takes one out of it.
    #[cold]
    fn write_locked(&self, value: Value, kind: u64, bits: u64, must_be_defined: bool) -> bool {
        let old = {
            let mut heap = self.heap.write();
            let stamp = loop {
                let stamp = self.stamp.load(Ordering::Relaxed);
                if self.begin(stamp) {
                    break stamp;
                }
                // Only a scalar writer, a few instructions from done.
                std::hint::spin_loop();
            };
            if must_be_defined && !defined(stamp) {
                self.stamp.store(stamp, Ordering::Release);
                return false;
            }
            let old = std::mem::replace(&mut *heap, (kind == NOT_SCALAR).then_some(value));
            self.publish(stamp, kind, bits);
            old
        };
        // Out of the lock: nobody can reach it any more.
        drop(old);
        true
    }

    /// The one write, `how` the statement asks for.
    #[inline]
    pub fn write_as(&self, value: Value, how: GlobalWrite) -> bool {
        match how {
            GlobalWrite::Define => {
                self.set(value);
                true
            }
            GlobalWrite::Assign => self.assign(value),
        }
    }

    /// How the scheduler names this global among objects (`Step::object`).
    pub fn object_id(&self) -> u64 {
        GLOBAL_OBJECT | u64::from(self.id)
    }

    pub fn is_defined(&self) -> bool {
        defined(self.stamp.load(Ordering::Acquire))
    }
}

/// How a write treats a global that is not defined yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GlobalWrite {
    /// `let`, `fn`: defines it.
    Define,
    /// `=`: refused (the write gives `false`), a NameError for the caller.
    Assign,
}

/// The table of a process's globals. Resolving a program gives every
/// global name it mentions an id (and a cell, defined or not), so later
/// definitions (and later REPL entries) are seen by code resolved earlier;
/// the compiler turns each id into its cell once.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    table: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    ids: IntMap<Name, GlobalId>,
    cells: Vec<GlobalRef>,
    /// In a child process: globals of the parent that could not be copied
    /// (a thread handle, a pool ...), with why, so reading one says so.
    left_out: IntMap<Name, String>,
}

impl Table {
    fn id(&mut self, name: &Name) -> GlobalId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = GlobalId(self.cells.len() as u32);
        self.cells
            .push(Arc::new(GlobalCell::new(name.clone(), id.0)));
        self.ids.insert(name.clone(), id);
        id
    }
}

impl Globals {
    /// A table with room for `n` globals (a session defines its builtins
    /// at once: growing the table builtin by builtin cost 1.7 % of the
    /// instructions of a dpor search, which makes a session per run).
    pub fn with_room(n: usize) -> Globals {
        let table = Table {
            ids: IntMap::with_capacity_and_hasher(n, Default::default()),
            cells: Vec::with_capacity(n),
            left_out: IntMap::default(),
        };
        Globals {
            table: Arc::new(Mutex::new(table)),
        }
    }

    /// The id of the global `name`, made on its first mention.
    pub fn id(&self, name: &Name) -> GlobalId {
        self.table.lock().id(name)
    }

    /// The cell behind an id this table gave.
    pub fn cell(&self, id: GlobalId) -> Option<GlobalRef> {
        self.table.lock().cells.get(id.0 as usize).cloned()
    }

    pub fn define(&self, name: &str, value: Value) {
        let cell = {
            let mut table = self.table.lock();
            let id = table.id(&Name::from(name));
            table.cells.get(id.0 as usize).cloned()
        };
        if let Some(cell) = cell {
            cell.set(value);
        }
    }

    /// `name` was not copied into this process: why (see `left_out`).
    pub fn leave_out(&self, name: &str, why: String) {
        self.table.lock().left_out.insert(Name::from(name), why);
    }

    /// Why the parent's global `name` is missing here, if it was left out.
    pub fn left_out(&self, name: &str) -> Option<String> {
        self.table.lock().left_out.get(name).cloned()
    }

    /// Every defined global, sorted by name (REPL completion, process copies).
    pub fn defined(&self) -> Vec<(Name, Value)> {
        let cells = self.table.lock().cells.clone();
        let mut out: Vec<_> = cells
            .iter()
            .filter_map(|cell| cell.get().map(|v| (cell.name.clone(), v)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_then_defined_then_assigned() {
        let cell = GlobalCell::new("g".into(), 0);
        assert!(cell.get().is_none() && !cell.is_defined());
        assert!(!cell.assign(Value::Int(1)), "assigning an undefined global");
        cell.set(Value::Int(1));
        assert!(cell.assign(Value::Float(2.5)));
        assert!(matches!(cell.get(), Some(Value::Float(f)) if f == 2.5));
        cell.set(Value::list(vec![Value::Int(3)]));
        assert!(matches!(cell.get(), Some(Value::List(_))));
        cell.set(Value::Nil);
        assert!(matches!(cell.get(), Some(Value::Nil)));
    }

    /// The sequence lock: readers racing a writer that switches between
    /// scalar kinds and heap values see one of the values written, whole.
    #[test]
    fn racing_readers_never_see_a_torn_value() {
        let cell = Arc::new(GlobalCell::new("g".into(), 0));
        cell.set(Value::Int(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (cell, stop) = (cell.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut k: i64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    cell.assign(Value::Int(k * 1000));
                    cell.assign(Value::Float(k as f64 + 0.5));
                    cell.assign(Value::Bool(k % 2 == 0));
                    cell.assign(Value::list(vec![Value::Int(k), Value::Int(k)]));
                    k += 1;
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let cell = cell.clone();
                std::thread::spawn(move || {
                    let mut bad = 0;
                    for _ in 0..200_000 {
                        match cell.get() {
                            Some(Value::Int(i)) if i % 1000 == 0 => {}
                            Some(Value::Float(f)) if f.fract() == 0.5 => {}
                            Some(Value::Bool(_)) => {}
                            Some(Value::List(l)) => {
                                let items = l.lock();
                                let whole = items.len() == 2
                                    && matches!((&items[0], &items[1]),
                                        (Value::Int(a), Value::Int(b)) if a == b);
                                bad += usize::from(!whole);
                            }
                            _ => bad += 1,
                        }
                    }
                    bad
                })
            })
            .collect();
        let bad: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert_eq!(bad, 0);
    }

    #[test]
    fn every_assignment_moves_the_version() {
        let cell = GlobalCell::new("g".into(), 0);
        cell.set(Value::Int(1));
        let (_, first) = cell.get_versioned();
        cell.assign(Value::Int(1));
        let (_, second) = cell.get_versioned();
        assert_ne!(first, second);
    }
}
