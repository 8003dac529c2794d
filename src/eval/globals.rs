//! Global variables: one individually locked cell per name, shared by every
//! thread of a process. A read or an assignment is atomic; `n = n - 1` is a
//! read followed by an assignment, so it can lose updates, as in any language.

use crate::ast::Name;
use crate::eval::value::Value;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub type GlobalRef = Arc<GlobalCell>;

#[derive(Debug)]
pub struct GlobalCell {
    pub name: Name,
    /// Process-wide and small: indexes each thread's cache of callees.
    pub(crate) id: u32,
    /// `None` until a `let`/`fn` defines it: reading it then is a NameError.
    value: RwLock<Option<Value>>,
    /// Bumped (under the write lock) by every assignment, so a thread can
    /// trust its cached copy of the value while the version is unchanged.
    version: AtomicU64,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

impl GlobalCell {
    fn new(name: Name) -> GlobalCell {
        GlobalCell {
            name,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value: RwLock::new(None),
            version: AtomicU64::new(0),
        }
    }

    pub fn get(&self) -> Option<Value> {
        self.value.read().clone()
    }

    /// The value together with the version it belongs to.
    pub(crate) fn get_versioned(&self) -> (Option<Value>, u64) {
        let value = self.value.read();
        (value.clone(), self.version.load(Ordering::Relaxed))
    }

    /// Acquire pairs with the release in `set`: seeing a version means
    /// seeing the value stored with it (and everything before that store).
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn set(&self, value: Value) {
        let mut slot = self.value.write();
        *slot = Some(value);
        // Only writers change it, and they hold the lock: no read-modify-write needed.
        let next = self.version.load(Ordering::Relaxed) + 1;
        self.version.store(next, Ordering::Release);
    }

    pub fn is_defined(&self) -> bool {
        self.value.read().is_some()
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
