//! `==` and ordering of nested data, on an explicit stack of levels rather
//! than the native stack: data may nest far deeper than native recursion
//! could follow (a list built by `x = [x]` a million times), and may
//! contain itself.
//!
//! Each level is a snapshot of two containers (each taken under its own
//! lock, one after the other, so two threads comparing `a == b` and `b == a`
//! cannot deadlock, and no lock is held while the walk goes on).
//!
//! A pair of containers that could be met again is remembered when the walk
//! starts on it, and a pair met again counts as equal: for a pair still
//! being compared that is the coinductive answer (two lists that contain
//! themselves and have the same shape are equal, and the walk ends); for a
//! pair already finished it can only have been equal, or the walk would
//! have stopped. So data that contains itself ends, and shared sub-lists are
//! not walked exponentially often. A container can only be met again if
//! something besides its one parent refers to it: while the walk holds its
//! parent's snapshot, a container that only that parent holds has two
//! references, and such pairs (ordinary nested data) are not hashed at all.
//! Past `TRACK_DEPTH` every pair is remembered anyway, so the walk ends
//! even if another thread changes the data meanwhile.

use super::{Key, List, Value};
use crate::diagnostics::RuntimeError;
use crate::runtime::int_hash::IntSet;
use indexmap::IndexMap;
use std::cmp::Ordering;
use std::sync::Arc;

/// Pairs at least this deep are remembered whether shared or not.
const TRACK_DEPTH: usize = 256;

/// Which pairs were started on. The values are kept so that no address in
/// `pairs` can be freed and reused by another container during the walk.
#[derive(Default)]
struct Seen {
    pairs: IntSet<(usize, usize)>,
    alive: Vec<(Value, Value)>,
}

impl Seen {
    /// Whether to walk the pair `a`, `b` (two lists or two maps) met at
    /// `depth`: false if it was started on before.
    fn start(&mut self, a: &Value, b: &Value, depth: usize) -> bool {
        if depth < TRACK_DEPTH && !shared(a) && !shared(b) {
            return true;
        }
        if !self.pairs.insert((address(a), address(b))) {
            return false;
        }
        self.alive.push((a.clone(), b.clone()));
        true
    }
}

/// Referred to by more than its parent and the walk's snapshot of it.
fn shared(v: &Value) -> bool {
    match v {
        Value::List(l) => Arc::strong_count(l) > 2,
        Value::Map(m) => Arc::strong_count(m) > 2,
        _ => false,
    }
}

/// A list's or map's address (0 for anything else).
pub(super) fn address(v: &Value) -> usize {
    match v {
        Value::List(l) => Arc::as_ptr(l) as *const u8 as usize,
        Value::Map(m) => Arc::as_ptr(m) as *const u8 as usize,
        _ => 0,
    }
}

/// What one look at a pair tells: the answer, or that both are lists (or
/// both maps) whose contents decide.
enum Look {
    Equal(bool),
    Contents,
}

/// `a` and `b` are the same entry without looking inside: equal plain
/// values, or the very same container. Takes no lock.
pub fn same_entry(a: &Value, b: &Value) -> bool {
    matches!(look(a, b), Look::Equal(true))
}

fn look(a: &Value, b: &Value) -> Look {
    Look::Equal(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) if !Arc::ptr_eq(x, y) => return Look::Contents,
        (Value::Map(x), Value::Map(y)) if !Arc::ptr_eq(x, y) => return Look::Contents,
        (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) => true,
        (Value::Func(x), Value::Func(y)) => Arc::ptr_eq(x, y),
        (Value::Builtin(x), Value::Builtin(y)) => std::ptr::eq(*x, *y),
        (Value::Error(x), Value::Error(y)) => x.kind == y.kind && x.message == y.message,
        (Value::Handle(x), Value::Handle(y)) => x.same(y),
        _ => false,
    })
}

/// Two containers being compared for `==`, entry by entry.
enum EqLevel {
    Lists(Vec<Value>, Vec<Value>, usize),
    Maps(IndexMap<Key, Value>, IndexMap<Key, Value>, usize),
}

/// Snapshots of two lists or two maps; `None` if their sizes already differ.
fn eq_level(a: &Value, b: &Value) -> Option<EqLevel> {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            let xs = x.lock().clone();
            let ys = y.lock().clone();
            (xs.len() == ys.len()).then_some(EqLevel::Lists(xs, ys, 0))
        }
        (Value::Map(x), Value::Map(y)) => {
            let xs = x.lock().clone();
            let ys = y.lock().clone();
            (xs.len() == ys.len()).then_some(EqLevel::Maps(xs, ys, 0))
        }
        _ => None,
    }
}

/// `==`: deep equality on data, identity on handles and functions.
pub fn equals(a: &Value, b: &Value) -> bool {
    if let Look::Equal(answer) = look(a, b) {
        return answer;
    }
    let mut seen = Seen::default();
    let Some(first) = eq_level(a, b) else {
        return false;
    };
    let mut stack = vec![first];
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else {
            return true;
        };
        let (p, q) = match top {
            EqLevel::Lists(xs, ys, next) => match (xs.get(*next), ys.get(*next)) {
                (Some(p), Some(q)) => {
                    *next += 1;
                    (p, q)
                }
                _ => {
                    stack.pop();
                    continue;
                }
            },
            EqLevel::Maps(xs, ys, next) => match xs.get_index(*next) {
                Some((k, p)) => {
                    *next += 1;
                    match ys.get(k) {
                        Some(q) => (p, q),
                        None => return false,
                    }
                }
                None => {
                    stack.pop();
                    continue;
                }
            },
        };
        match look(p, q) {
            Look::Equal(true) => continue,
            Look::Equal(false) => return false,
            Look::Contents => {}
        }
        if !seen.start(p, q, depth) {
            continue;
        }
        match eq_level(p, q) {
            Some(level) => stack.push(level),
            None => return false,
        }
    }
}

/// Two lists being ordered, element by element.
struct Level {
    xs: Vec<Value>,
    ys: Vec<Value>,
    next: usize,
}

fn snapshot(x: &List, y: &List) -> Level {
    let xs = x.lock().clone();
    let ys = y.lock().clone();
    Level { xs, ys, next: 0 }
}

/// Lexicographic order of two lists; `leaf` orders anything that is not a
/// pair of lists.
pub fn compare_lists(
    x: &List,
    y: &List,
    leaf: impl Fn(&Value, &Value) -> Result<Ordering, RuntimeError>,
) -> Result<Ordering, RuntimeError> {
    // Never lock a list twice: `a < a` must not wait for itself.
    if Arc::ptr_eq(x, y) {
        return Ok(Ordering::Equal);
    }
    let mut seen = Seen::default();
    let mut stack = vec![snapshot(x, y)];
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else {
            return Ok(Ordering::Equal);
        };
        let i = top.next;
        let (Some(p), Some(q)) = (top.xs.get(i), top.ys.get(i)) else {
            match top.xs.len().cmp(&top.ys.len()) {
                Ordering::Equal => {
                    stack.pop();
                    continue;
                }
                other => return Ok(other),
            }
        };
        top.next += 1;
        let level = match (p, q) {
            (Value::List(a), Value::List(b)) => {
                if Arc::ptr_eq(a, b) {
                    continue;
                }
                if !seen.start(p, q, depth) {
                    continue;
                }
                snapshot(a, b)
            }
            _ => match leaf(p, q)? {
                Ordering::Equal => continue,
                other => return Ok(other),
            },
        };
        stack.push(level);
    }
}
