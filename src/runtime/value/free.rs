//! The contents of lists and maps, and how they are freed. Dropping a
//! `Vec<Value>` drops each list inside it, which drops each list inside
//! that: one native frame per level, so freeing data nested a few hundred
//! thousand deep (`x = [x]` in a loop) would overflow the stack. Here the
//! children of a list or map that is freed for good are moved onto one
//! worklist and freed from there, so freeing never recurses.

use super::{Key, Value};
use indexmap::IndexMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A list's items. Not `Clone` itself: `list.lock().clone()` gives a plain
/// `Vec<Value>` snapshot.
#[derive(Debug, Default)]
pub struct Items(pub Vec<Value>);

/// A map's entries, in insertion order. `map.lock().clone()` gives a plain
/// `IndexMap` snapshot.
#[derive(Debug, Default)]
pub struct Entries(pub IndexMap<Key, Value>);

impl Deref for Items {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.0
    }
}

impl DerefMut for Items {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.0
    }
}

impl Deref for Entries {
    type Target = IndexMap<Key, Value>;
    fn deref(&self) -> &IndexMap<Key, Value> {
        &self.0
    }
}

impl DerefMut for Entries {
    fn deref_mut(&mut self) -> &mut IndexMap<Key, Value> {
        &mut self.0
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::List(_) | Value::Map(_))
}

impl Drop for Items {
    fn drop(&mut self) {
        // Most lists hold no containers: let the Vec drop as usual.
        if self.0.iter().any(is_container) {
            free(std::mem::take(&mut self.0));
        }
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        if self.0.values().any(is_container) {
            free(std::mem::take(&mut self.0).into_values().collect());
        }
    }
}

/// Free `work` and everything only it holds, one value at a time.
fn free(mut work: Vec<Value>) {
    while let Some(v) = work.pop() {
        match v {
            // Only the last reference takes the contents out (others keep
            // the list alive); what is left behind is empty and drops flat.
            Value::List(l) => {
                if let Some(items) = Arc::into_inner(l) {
                    work.append(&mut items.into_inner().0);
                }
            }
            Value::Map(m) => {
                if let Some(entries) = Arc::into_inner(m) {
                    let entries = std::mem::take(&mut entries.into_inner().0);
                    work.extend(entries.into_values());
                }
            }
            other => drop(other),
        }
    }
}
