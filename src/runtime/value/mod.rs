//! Runtime values. Everything is `Send + Sync`: lists and maps are shared,
//! mutable and individually locked; handles point at runtime objects.

pub mod args;
mod deep;
mod free;
pub mod function;
pub mod globals;
pub mod ops;
pub mod plain;

pub use free::{Entries, Items};
pub use function::{Builtin, Closure, Function};

use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::footprint::Shared;
use crate::runtime::Handle;
use indexmap::IndexMap;
use std::fmt::{self, Write};
use std::sync::Arc;

pub type List = Arc<Shared<Items>>;
pub type Str = Arc<String>;
pub type Map = Arc<Shared<Entries>>;
/// A captured variable shared between a frame and its closures.
pub type Cell = Arc<Shared<Value>>;

#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A thin pointer (not `Arc<str>`), so a `Value` is 16 bytes.
    Str(Str),
    List(List),
    Map(Map),
    Func(Arc<Closure>),
    Builtin(&'static Builtin),
    Error(Arc<RuntimeError>),
    Handle(Handle),
    /// Only ever stored in a frame slot of a captured local, never seen by code.
    Cell(Cell),
}

/// A map key: the hashable subset of values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Bool(bool),
    Int(i64),
    Str(Str),
}

impl Key {
    pub fn from_value(v: &Value) -> Result<Key, RuntimeError> {
        match v {
            Value::Bool(b) => Ok(Key::Bool(*b)),
            Value::Int(i) => Ok(Key::Int(*i)),
            Value::Str(s) => Ok(Key::Str(s.clone())),
            other => Err(RuntimeError::new(
                kind::TYPE,
                format!(
                    "a map key must be a string, int or bool, not {}",
                    other.type_name()
                ),
            )),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Bool(b) => Value::Bool(*b),
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::Str(s.clone()),
        }
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::new(s.to_string()))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(Shared::new(Items(items))))
    }

    pub fn map(entries: IndexMap<Key, Value>) -> Value {
        Value::Map(Arc::new(Shared::new(Entries(entries))))
    }

    /// The name `type(v)` gives.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Func(_) | Value::Builtin(_) => "function",
            Value::Error(_) => "error",
            Value::Handle(h) => h.kind(),
            Value::Cell(_) => "cell",
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.lock().is_empty(),
            Value::Map(m) => !m.lock().is_empty(),
            _ => true,
        }
    }

    /// `==`: deep equality on data, identity on handles and functions.
    pub fn equals(&self, other: &Value) -> bool {
        deep::equals(self, other)
    }

    /// The same entry without looking inside (equal plain values, or the
    /// very same container): takes no lock.
    pub fn same_entry(&self, other: &Value) -> bool {
        deep::same_entry(self, other)
    }

    /// Text as `print` and `str()` show it: strings bare.
    pub fn to_display(&self) -> String {
        match self {
            Value::Str(s) => s.to_string(),
            other => other.to_repr(),
        }
    }

    /// Text as shown inside containers and by the REPL: strings quoted.
    pub fn to_repr(&self) -> String {
        let mut out = String::new();
        write_repr(&mut out, self, &mut Vec::new());
        out
    }
}

/// Containers nested deeper than this print as `[...]` (the printing
/// recurses, and data may nest deeper than the native stack could follow).
const MAX_DEPTH: usize = 64;

pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else if f == f.trunc() && f.abs() < 1e16 {
        format!("{:.1}", f)
    } else {
        let s = format!("{}", f);
        if s.contains('.') || s.contains('e') {
            s
        } else {
            format!("{}.0", s)
        }
    }
}

pub fn quote_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `open`: the containers being printed around `v`, by address. A list or
/// map met again inside itself prints as `[...]` or `{...}`, as in Python:
/// a depth limit alone would end, but a list holding itself twice would
/// print 2^64 times. (The snapshots taken on the way down keep every
/// container in `open` alive, so no address is reused meanwhile.)
fn write_repr(out: &mut String, v: &Value, open: &mut Vec<usize>) {
    match v {
        Value::Nil => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{}", i);
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::Str(s) => quote_str(out, s),
        Value::List(l) => {
            let at = deep::address(v);
            if open.len() > MAX_DEPTH || open.contains(&at) {
                out.push_str("[...]");
                return;
            }
            let items = l.lock().clone();
            open.push(at);
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, open);
            }
            out.push(']');
            open.pop();
        }
        Value::Map(m) => {
            let at = deep::address(v);
            if open.len() > MAX_DEPTH || open.contains(&at) {
                out.push_str("{...}");
                return;
            }
            let entries = m.lock().clone();
            open.push(at);
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &k.to_value(), open);
                out.push_str(": ");
                write_repr(out, item, open);
            }
            out.push('}');
            open.pop();
        }
        Value::Func(c) => {
            let _ = write!(out, "<fn {}>", c.func.decl.display_name());
        }
        Value::Builtin(b) => {
            let _ = write!(out, "<builtin {}>", b.name);
        }
        Value::Error(e) => {
            let _ = write!(out, "<{}: {}>", e.kind, e.message);
        }
        Value::Handle(h) => {
            let _ = write!(out, "{}", h);
        }
        Value::Cell(c) => write_repr(out, &c.lock().clone(), open),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_display())
    }
}

/// "a list", "the int 5": how a value is named in messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "nil".to_string(),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            format!("{} {}", v.type_name(), v.to_repr())
        }
        Value::Str(s) if s.chars().count() <= 20 => format!("string {}", v.to_repr()),
        other => {
            let name = other.type_name();
            let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            format!("{} {}", article, name)
        }
    }
}
