//! What a script can do with an object of the runtime, defined once per
//! kind.
//!
//! Each kind (lock, queue, event, ... and the proxy for another process's
//! objects) implements [`Object`] in its own file: its name, its fields,
//! its methods (a table, which the reference is checked against) and the
//! statements that work on it (`get`, `put`, `wait`, `join`, `lock`).
//! `Handle` (in `mod.rs`) lists the kinds; `ops.rs` is the one entry point
//! per operation, which picks the implementation, local or remote, through
//! this trait.

use super::engine::{Op, Time};
use super::value::args::arity;
use super::value::Value;
use super::waits::BlockOn;
use super::{Context, ThreadRef};
use crate::diagnostics::RuntimeError;
use crate::span::Span;
use std::sync::Arc;

/// Who performs an operation, and where it is written.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    pub ctx: &'a Arc<Context>,
    pub me: &'a ThreadRef,
    /// The whole operation: errors and waits are reported here.
    pub at: Span,
    /// The operand, whose source text names the object in reports.
    pub target: Span,
    /// How another process described this wait, when a stand-in performs
    /// it (the text is the requester's: its names, its source).
    pub told: Option<&'a str>,
}

impl<'a> Cx<'a> {
    pub fn new(ctx: &'a Arc<Context>, me: &'a ThreadRef, at: Span, target: Span) -> Cx<'a> {
        Cx {
            ctx,
            me,
            at,
            target,
            told: None,
        }
    }

    /// Announce a visible operation on `object` (see `Engine::point`).
    #[inline(always)]
    pub fn point(&self, op: Op, object: u64) {
        self.ctx
            .engine()
            .point_on(self.me, op, object, Some(self.at));
    }

    /// What this thread waits for, named as the script names the object:
    /// "an item from queue#3 (q)".
    pub fn block_on(&self, label: String, deadline: Option<Time>) -> BlockOn {
        if let Some(told) = self.told {
            return BlockOn::new(told, Some(self.at), deadline);
        }
        let text = self.ctx.source_text(self.target);
        let what = if text.is_empty() {
            label
        } else {
            format!("{} ({})", label, text)
        };
        BlockOn::new(what, Some(self.at), deadline)
    }

    /// A timeout argument (`m.acquire(0.5)`) as a deadline.
    pub fn deadline(&self, what: &str, v: Option<&Value>) -> Res<Option<Time>> {
        match v {
            None => Ok(None),
            Some(v) => {
                let d = super::value::args::expect_seconds(what, v)?;
                Ok(Some(self.ctx.deadline_after(d)))
            }
        }
    }
}

/// What a method gives back.
pub enum Reply {
    Value(Value),
    /// Run this callback with this argument now, then give nil (a future
    /// that is already done runs a `then` callback at once). Only the
    /// evaluator can call script functions.
    Callback(Value, Value),
}

impl From<Value> for Reply {
    fn from(v: Value) -> Reply {
        Reply::Value(v)
    }
}

pub type Res<T> = Result<T, RuntimeError>;

/// A method of kind `T`: its name, how many arguments it takes, and what
/// it does.
pub struct Method<T: ?Sized> {
    pub name: &'static str,
    pub args: (usize, usize),
    pub call: fn(&T, &Cx, Vec<Value>) -> Res<Reply>,
}

/// `name` from `table`, its arguments counted: `None` if the kind has no
/// such method (the evaluator then names the habit it may come from).
pub fn call_method<T: ?Sized>(
    table: &[Method<T>],
    obj: &T,
    cx: &Cx,
    name: &str,
    args: Vec<Value>,
) -> Option<Res<Reply>> {
    let m = table.iter().find(|m| m.name == name)?;
    Some(arity(name, &args, m.args.0, m.args.1).and_then(|_| (m.call)(obj, cx, args)))
}

/// The names in a method table, for the reference.
pub fn names<T: ?Sized>(table: &[Method<T>]) -> Vec<&'static str> {
    table.iter().map(|m| m.name).collect()
}

/// One kind of object. An operation a kind does not support gives `None`;
/// `ops.rs` turns that into the error that says what the statement takes.
pub trait Object: Send + Sync {
    /// What `type(v)` gives.
    fn kind(&self) -> &'static str;

    /// Its number in this session, shown in reports (`lock#3`).
    fn id(&self) -> u64;

    fn label(&self) -> String {
        format!("{}#{}", self.kind(), self.id())
    }

    /// `str(v)`.
    fn describe(&self) -> String;

    fn field(&self, _cx: &Cx, _name: &str) -> Option<Value> {
        None
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>>;

    /// Every method and field, for the reference.
    fn members(&self) -> Members;

    /// `get x`: an item, or `None` on timeout.
    fn get(&self, _cx: &Cx, _deadline: Option<Time>) -> Option<Res<Option<Value>>> {
        None
    }

    /// `put x, v`: false if it stayed full until the deadline.
    fn put(&self, _cx: &Cx, _v: Value, _deadline: Option<Time>) -> Option<Res<bool>> {
        None
    }

    /// `wait x`: what the wait gives (a bool, a barrier's arrival index).
    fn wait(&self, _cx: &Cx, _deadline: Option<Time>) -> Option<Res<Value>> {
        None
    }

    /// `join x`: its result, or its error re-raised.
    fn join(&self, _cx: &Cx, _deadline: Option<Time>) -> Option<Res<Value>> {
        None
    }

    /// Take it for `lock x { }`: false if the deadline came first.
    fn acquire(&self, _cx: &Cx, _deadline: Option<Time>) -> Option<Res<bool>> {
        None
    }

    /// Let it go at the end of `lock x { }` (`held`: the block knows it
    /// holds it, so a remote release need not wait for its answer).
    fn release(&self, _cx: &Cx, _held: bool) -> Option<Res<()>> {
        None
    }

    /// `len(x)`.
    fn len(&self, _cx: &Cx) -> Option<Res<usize>> {
        None
    }
}

/// The methods and fields of one kind.
pub struct Members {
    pub methods: Vec<&'static str>,
    pub fields: &'static [&'static str],
}
