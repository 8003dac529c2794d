//! Values to and from the wire. Data is copied (a child sees a snapshot);
//! shared objects are not: each crosses as a reference its owner serves.
//! Lists, maps and captured variables go into a table by identity, so a
//! value that contains itself, or two values naming one list, copy intact.

use super::link::Link;
use super::wire::{Packet, SharedValue, WireError, WireValue};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::footprint::Shared;
use crate::runtime::value::{Closure, Entries, Items, Key, Value};
use crate::runtime::{Context, Handle};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;

pub fn encode(link: &Arc<Link>, values: &[Value]) -> Result<Packet, RuntimeError> {
    let mut enc = Encoder::new(link);
    let values = values
        .iter()
        .map(|v| enc.value(v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(enc.finish(values))
}

pub struct Encoder<'a> {
    link: &'a Arc<Link>,
    table: Vec<SharedValue>,
    seen: HashMap<usize, u32>,
    /// How deep inside containers the value being encoded is.
    depth: usize,
}

/// Containers nested deeper than this do not cross (every stage of a copy
/// recurses once per level; this keeps each of them far from the end of
/// any thread's stack).
const MAX_NESTING: usize = 2_000;

impl<'a> Encoder<'a> {
    pub fn new(link: &'a Arc<Link>) -> Self {
        Encoder {
            link,
            table: Vec::new(),
            seen: HashMap::new(),
            depth: 0,
        }
    }

    pub fn finish(self, values: Vec<WireValue>) -> Packet {
        Packet {
            table: self.table,
            values,
        }
    }

    /// Encode `v`, or leave the encoder as it was if it cannot cross (so a
    /// half-copied list is never reused by a later value naming it).
    pub fn value_or_undo(&mut self, v: &Value) -> Result<WireValue, RuntimeError> {
        let mark = self.table.len();
        self.value(v).inspect_err(|_| {
            self.table.truncate(mark);
            self.seen.retain(|_, i| (*i as usize) < mark);
        })
    }

    /// A table slot for the object at `ptr`, and whether it is new (to fill).
    fn slot(&mut self, ptr: usize, empty: SharedValue) -> (u32, bool) {
        if let Some(&i) = self.seen.get(&ptr) {
            return (i, false);
        }
        let i = self.table.len() as u32;
        self.table.push(empty);
        self.seen.insert(ptr, i);
        (i, true)
    }

    pub fn value(&mut self, v: &Value) -> Result<WireValue, RuntimeError> {
        if !matches!(
            v,
            Value::List(_) | Value::Map(_) | Value::Cell(_) | Value::Func(_)
        ) {
            return self.flat(v);
        }
        if self.depth >= MAX_NESTING {
            return Err(RuntimeError::new(
                kind::VALUE,
                format!(
                    "a value nested more than {} levels deep cannot be copied into another process",
                    MAX_NESTING
                ),
            ));
        }
        self.depth += 1;
        let out = self.flat(v);
        self.depth -= 1;
        out
    }

    fn flat(&mut self, v: &Value) -> Result<WireValue, RuntimeError> {
        Ok(match v {
            Value::Nil => WireValue::Nil,
            Value::Bool(b) => WireValue::Bool(*b),
            Value::Int(i) => WireValue::Int(*i),
            Value::Float(f) => WireValue::Float(*f),
            Value::Str(s) => WireValue::Str(s.to_string()),
            Value::List(l) => {
                let (i, new) = self.slot(Arc::as_ptr(l) as usize, SharedValue::List(Vec::new()));
                if new {
                    let items = l.lock().clone();
                    let items = items
                        .iter()
                        .map(|x| self.value(x))
                        .collect::<Result<_, _>>()?;
                    self.table[i as usize] = SharedValue::List(items);
                }
                WireValue::Shared(i)
            }
            Value::Map(m) => {
                let (i, new) = self.slot(Arc::as_ptr(m) as usize, SharedValue::Map(Vec::new()));
                if new {
                    let entries = m.lock().clone();
                    let mut out = Vec::with_capacity(entries.len());
                    for (k, x) in entries.iter() {
                        out.push((self.value(&k.to_value())?, self.value(x)?));
                    }
                    self.table[i as usize] = SharedValue::Map(out);
                }
                WireValue::Shared(i)
            }
            Value::Cell(c) => WireValue::Shared(self.cell(c)?),
            Value::Func(f) => {
                let upvals = f
                    .upvals
                    .iter()
                    .map(|c| self.cell(c))
                    .collect::<Result<_, _>>()?;
                WireValue::Func {
                    src: f.func.decl.span.src.0,
                    start: f.func.decl.span.start,
                    upvals,
                }
            }
            Value::Builtin(b) => WireValue::Builtin(b.name.to_string()),
            Value::Error(e) => WireValue::Error(Box::new(WireError::from(&**e))),
            Value::Handle(h) => self.handle(h, v)?,
        })
    }

    fn cell(&mut self, c: &crate::runtime::value::Cell) -> Result<u32, RuntimeError> {
        let (i, new) = self.slot(Arc::as_ptr(c) as usize, SharedValue::Cell(WireValue::Nil));
        if new {
            let inner = c.lock().clone();
            self.table[i as usize] = SharedValue::Cell(self.value(&inner)?);
        }
        Ok(i)
    }

    fn handle(&mut self, h: &Handle, v: &Value) -> Result<WireValue, RuntimeError> {
        let (id, label, unbounded) = match h {
            Handle::Lock(l) => (l.id, l.label(), false),
            Handle::Event(e) => (e.id, e.label(), false),
            Handle::Condition(c) => (c.id, c.label(), false),
            Handle::Barrier(b) => (b.id, b.label(), false),
            Handle::Queue(q) => (q.id, q.label(), q.capacity.is_none()),
            Handle::Pipe(p) => (p.id, p.label(), true),
            Handle::Remote(r) if Arc::ptr_eq(&r.link, self.link) => {
                return Ok(WireValue::Yours(r.remote_id))
            }
            Handle::Remote(r) => (r.id, r.label.clone(), r.unbounded),
            Handle::Thread(_) | Handle::Pool(_) | Handle::Future(_) | Handle::Timer(_) => {
                return Err(cannot_cross(v))
            }
        };
        if self.link.to_parent && !matches!(h, Handle::Remote(_)) {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!(
                    "{} was made in this process and cannot be sent to its parent",
                    label
                ),
            )
            .with_help("make shared objects in the parent and pass them down"));
        }
        self.link.export(id, h.clone());
        // A plain lock of ours: a child may take and free it in our arena;
        // an unbounded FIFO queue: a child may hand items over there
        // (a pipe end: the queue it sends into, then the one it gets from).
        let words = match (h, self.link.arena()) {
            (Handle::Lock(l), Some(_)) => l.shared_block(),
            (Handle::Queue(q), Some(arena)) => q.share(arena),
            (Handle::Pipe(p), Some(arena)) => pipe_blocks(p.send.share(arena), p.recv.share(arena)),
            _ => None,
        };
        Ok(WireValue::Object {
            id,
            kind: h.kind().to_string(),
            label,
            unbounded,
            words,
        })
    }
}

/// A pipe end's two handoff blocks in one word: arena block numbers are
/// below 2^16 (`arena::BLOCKS`).
pub fn pipe_blocks(send: Option<u32>, recv: Option<u32>) -> Option<u32> {
    let (send, recv) = (send?, recv?);
    (send < 1 << 16 && recv < 1 << 16).then_some(send | recv << 16)
}

/// `pipe_blocks` undone: (send, recv).
pub fn pipe_blocks_of(words: u32) -> (u32, u32) {
    (words & 0xffff, words >> 16)
}

pub fn cannot_cross(v: &Value) -> RuntimeError {
    let what = v.type_name();
    RuntimeError::new(
        kind::TYPE,
        format!(
            "a {} handle cannot cross into another process ({})",
            what,
            v.to_repr()
        ),
    )
    .with_help(
        "processes share queues, locks, events, conditions, barriers and pipes; \
         send data or one of those instead",
    )
}

pub fn decode(link: &Arc<Link>, ctx: &Context, packet: Packet) -> Result<Vec<Value>, RuntimeError> {
    let mut dec = Decoder::new(link, ctx, &packet.table);
    dec.fill(&packet.table)?;
    packet.values.iter().map(|v| dec.value(v)).collect()
}

struct Decoder<'a> {
    link: &'a Arc<Link>,
    ctx: &'a Context,
    shared: Vec<Value>,
}

impl<'a> Decoder<'a> {
    /// Make every list, map and cell first (empty), so references between
    /// them, cycles included, can be tied up in one pass.
    fn new(link: &'a Arc<Link>, ctx: &'a Context, table: &[SharedValue]) -> Self {
        let shared = table
            .iter()
            .map(|s| match s {
                SharedValue::List(_) => Value::list(Vec::new()),
                SharedValue::Map(_) => Value::map(IndexMap::new()),
                SharedValue::Cell(_) => Value::Cell(Arc::new(Shared::new(Value::Nil))),
            })
            .collect();
        Decoder { link, ctx, shared }
    }

    fn fill(&mut self, table: &[SharedValue]) -> Result<(), RuntimeError> {
        for (i, entry) in table.iter().enumerate() {
            match (entry, &self.shared[i].clone()) {
                (SharedValue::List(items), Value::List(l)) => {
                    let items = items
                        .iter()
                        .map(|x| self.value(x))
                        .collect::<Result<Vec<_>, _>>()?;
                    *l.lock() = Items(items);
                }
                (SharedValue::Map(entries), Value::Map(m)) => {
                    let mut out = IndexMap::with_capacity(entries.len());
                    for (k, x) in entries {
                        out.insert(Key::from_value(&self.value(k)?)?, self.value(x)?);
                    }
                    *m.lock() = Entries(out);
                }
                (SharedValue::Cell(x), Value::Cell(c)) => *c.lock() = self.value(x)?,
                _ => return Err(corrupt("table")),
            }
        }
        Ok(())
    }

    fn value(&self, w: &WireValue) -> Result<Value, RuntimeError> {
        Ok(match w {
            WireValue::Nil => Value::Nil,
            WireValue::Bool(b) => Value::Bool(*b),
            WireValue::Int(i) => Value::Int(*i),
            WireValue::Float(f) => Value::Float(*f),
            WireValue::Str(s) => Value::str(s),
            WireValue::Shared(i) => match self.shared.get(*i as usize) {
                Some(v @ (Value::List(_) | Value::Map(_))) => v.clone(),
                _ => return Err(corrupt("reference")),
            },
            WireValue::Func { src, start, upvals } => self.function(*src, *start, upvals)?,
            WireValue::Builtin(name) => match self.ctx.builtin_named(name) {
                Some(b) => Value::Builtin(b),
                None => return Err(corrupt("builtin")),
            },
            WireValue::Error(e) => Value::Error(Arc::new(RuntimeError::from((**e).clone()))),
            WireValue::Object {
                id,
                kind,
                label,
                unbounded,
                words,
            } => Value::Handle(Handle::Remote(self.link.import(
                self.ctx,
                *id,
                kind,
                label.clone(),
                *unbounded,
                *words,
            ))),
            WireValue::Yours(id) => match self.link.exported(*id) {
                Some(h) => Value::Handle(h),
                None => return Err(corrupt("object")),
            },
        })
    }

    fn function(&self, src: u32, start: u32, upvals: &[u32]) -> Result<Value, RuntimeError> {
        let func = self.ctx.functions.find(src, start).ok_or_else(|| {
            RuntimeError::new(
                kind::PROCESS,
                "a function sent by another process is not in this program",
            )
        })?;
        let cells = upvals
            .iter()
            .map(|i| match self.shared.get(*i as usize) {
                Some(Value::Cell(c)) => Ok(c.clone()),
                _ => Err(corrupt("captured variable")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if cells.len() != func.decl.upvals.len() {
            return Err(corrupt("closure"));
        }
        Ok(Value::Func(Arc::new(Closure {
            func,
            upvals: cells.into_boxed_slice(),
        })))
    }
}

fn corrupt(what: &str) -> RuntimeError {
    RuntimeError::new(
        kind::PROCESS,
        format!("a value from another process is damaged (bad {})", what),
    )
}
