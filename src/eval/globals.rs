//! Global variables: one individually locked cell per name, shared by every
//! thread of a process. A read or an assignment is atomic; `n = n - 1` is a
//! read followed by an assignment, so it can lose updates, as in any language.

use crate::ast::Name;
use crate::eval::value::Value;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;

pub type GlobalRef = Arc<GlobalCell>;

#[derive(Debug)]
pub struct GlobalCell {
    pub name: Name,
    /// `None` until a `let`/`fn` defines it: reading it then is a NameError.
    value: RwLock<Option<Value>>,
}

impl GlobalCell {
    pub fn get(&self) -> Option<Value> {
        self.value.read().clone()
    }

    pub fn set(&self, value: Value) {
        *self.value.write() = Some(value);
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
            .or_insert_with(|| {
                Arc::new(GlobalCell {
                    name: name.clone(),
                    value: RwLock::new(None),
                })
            })
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
