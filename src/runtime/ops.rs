//! One entry point per operation of the language on a runtime object:
//! `get`, `put`, `wait`, `join`, `lock X { }`, methods, fields, `len`,
//! `select`. Each takes the operand as a value, finds what it is through
//! `Object` (so a local queue and another process's queue are served by
//! the same call), and words the error when the operand cannot do that.

use super::engine::Time;
use super::object::{Cx, Reply, Res};
use super::process::proxy;
use super::queues::{self, Arm, Queue};
use super::value::{describe, Value};
use super::Handle;
use crate::diagnostics::{kind, RuntimeError};
use crate::span::Span;
use std::sync::Arc;

fn handle(v: &Value) -> Option<&Handle> {
    match v {
        Value::Handle(h) => Some(h),
        _ => None,
    }
}

/// "cannot get from a list", at the operand, with what the statement takes.
fn wrong_kind(what: &str, v: &Value, at: Span, help: &str) -> RuntimeError {
    RuntimeError::new(kind::TYPE, format!("cannot {} {}", what, describe(v)))
        .at(at)
        .with_help(help.to_string())
}

fn timeout(what: String, at: Span) -> RuntimeError {
    RuntimeError::new(kind::TIMEOUT, what).at(at)
}

/// `get t [timeout]`: an item from a queue or a pipe end.
pub fn get(cx: &Cx, t: &Value, deadline: Option<Time>) -> Res<Value> {
    // The commonest case called directly (what `Object::get` calls too):
    // no trait object, no wrapped result, for the hot path of a queue.
    if let Value::Handle(Handle::Queue(q)) = t {
        return match q.get_op(cx, || q.label(), deadline) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(timeout(
                format!("{} stayed empty until the timeout", q.label()),
                cx.at,
            )),
            Err(e) => Err(e.at(cx.at)),
        };
    }
    let got = handle(t).and_then(|h| Some((h, h.object().get(cx, deadline)?)));
    let Some((h, got)) = got else {
        return Err(wrong_kind(
            "get from",
            t,
            cx.target,
            "get takes a queue or a pipe end",
        ));
    };
    match got.map_err(|e| e.at(cx.at))? {
        Some(v) => Ok(v),
        None => Err(timeout(
            format!("{} stayed empty until the timeout", h.object().label()),
            cx.at,
        )),
    }
}

/// `put t, v [timeout]`: into a queue or a pipe end.
pub fn put(cx: &Cx, t: &Value, v: Value, deadline: Option<Time>) -> Res<()> {
    // As in `get`: a queue directly.
    if let Value::Handle(Handle::Queue(q)) = t {
        return match q.put_op(cx, || q.label(), v, deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(timeout(
                format!("{} stayed full until the timeout", q.label()),
                cx.at,
            )),
            Err(e) => Err(e.at(cx.at)),
        };
    }
    let Some(h) = handle(t) else {
        return Err(wrong_kind(
            "put into",
            t,
            cx.target,
            "put takes a queue or a pipe end",
        ));
    };
    let Some(put) = h.object().put(cx, v, deadline) else {
        return Err(wrong_kind(
            "put into",
            t,
            cx.target,
            "put takes a queue or a pipe end",
        ));
    };
    if put.map_err(|e| e.at(cx.at))? {
        Ok(())
    } else {
        Err(timeout(
            format!("{} stayed full until the timeout", h.object().label()),
            cx.at,
        ))
    }
}

/// `wait t [timeout]`: on an event, a condition or a barrier.
pub fn wait(cx: &Cx, t: &Value, deadline: Option<Time>) -> Res<Value> {
    match handle(t).and_then(|h| h.object().wait(cx, deadline)) {
        Some(done) => done.map_err(|e| e.at(cx.at)),
        None => Err(wrong_kind(
            "wait on",
            t,
            cx.target,
            "wait takes an event, a condition or a barrier",
        )),
    }
}

/// `join t [timeout]`: a thread's, process's, timer's or future's result.
pub fn join(cx: &Cx, t: &Value, deadline: Option<Time>) -> Res<Value> {
    match handle(t).and_then(|h| h.object().join(cx, deadline)) {
        Some(done) => done.map_err(|e| e.at(cx.at)),
        None => Err(wrong_kind(
            "join",
            t,
            cx.target,
            "join takes a thread, a timer or a future",
        )),
    }
}

/// Take what `lock t { }` names; the handle to let go of at the end.
pub fn lock_enter(cx: &Cx, t: &Value) -> Res<Handle> {
    let taken = handle(t).and_then(|h| Some((h, h.object().acquire(cx, None)?)));
    match taken {
        Some((h, done)) => {
            done.map_err(|e| e.at(cx.at))?;
            Ok(h.clone())
        }
        None => Err(wrong_kind(
            "lock",
            t,
            cx.at,
            "`lock X { }` takes a lock, rlock, semaphore or condition",
        )),
    }
}

/// Let go at the end of `lock t { }`, however the block ended.
pub fn lock_exit(cx: &Cx, held: &Handle) -> Res<()> {
    match held.object().release(cx, true) {
        Some(done) => done.map_err(|e| e.at(cx.at)),
        None => Ok(()),
    }
}

/// `t.name(args)`: `None` if `t` has no such method.
pub fn method(cx: &Cx, h: &Handle, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
    let done = h.object().method(cx, name, args)?;
    Some(done.map_err(|e| e.at(cx.at)))
}

/// `t.name` without a call.
pub fn field(cx: &Cx, h: &Handle, name: &str) -> Option<Value> {
    h.object().field(cx, name)
}

/// `len(t)` of a handle that has a length.
pub fn len(cx: &Cx, h: &Handle) -> Option<Res<usize>> {
    h.object().len(cx)
}

/// The get and put cases of a `select`, in order, with their operands.
#[derive(Default)]
pub struct Select {
    arms: Vec<Arm>,
    remote: Vec<(Arc<proxy::Remote>, Option<Value>)>,
    labels: Vec<String>,
}

impl Select {
    /// `case get t`, where `t` is written at `at`.
    pub fn get(&mut self, t: Value, at: Span) -> Res<()> {
        if let Value::Handle(Handle::Remote(r)) = &t {
            self.labels.push(format!("get {}", r.label));
            self.remote.push((r.clone(), None));
        } else {
            let q = arm_queue(&t, at, true)?;
            self.labels.push(format!("get {}", q.label()));
            self.arms.push(Arm::Get(q));
        }
        Ok(())
    }

    /// `case put t, v`.
    pub fn put(&mut self, t: Value, v: Value, at: Span) -> Res<()> {
        if let Value::Handle(Handle::Remote(r)) = &t {
            self.labels.push(format!("put {}", r.label));
            self.remote.push((r.clone(), Some(v)));
        } else {
            let q = arm_queue(&t, at, false)?;
            self.labels.push(format!("put {}", q.label()));
            self.arms.push(Arm::Put(q, v));
        }
        Ok(())
    }

    /// Wait until one case can go, or until `deadline`: the case (its
    /// index among the get and put cases) and what a get got; `None` on
    /// timeout.
    pub fn wait(self, cx: &Cx, deadline: Option<Time>) -> Res<Option<(usize, Option<Value>)>> {
        let Select {
            mut arms,
            remote,
            labels,
        } = self;
        let what = format!("select over {}", labels.join(", "));
        let on = super::waits::BlockOn::new(what, Some(cx.at), deadline);
        match (arms.is_empty(), remote.is_empty()) {
            (_, true) => queues::select(cx.ctx, cx.me, &mut arms, &on),
            (true, false) => proxy::select(cx, &remote, &on),
            (false, false) => Err(proxy::mixed_select()),
        }
        .map_err(|e| e.at(cx.at))
    }
}

/// The queue a select case works on (a pipe end reads from one queue and
/// writes to the other).
fn arm_queue(v: &Value, at: Span, get: bool) -> Res<Arc<Queue>> {
    match (v, get) {
        (Value::Handle(Handle::Queue(q)), _) => Ok(q.clone()),
        (Value::Handle(Handle::Pipe(p)), true) => Ok(p.recv.clone()),
        (Value::Handle(Handle::Pipe(p)), false) => Ok(p.send.clone()),
        _ => Err(wrong_kind(
            "select on",
            v,
            at,
            "select cases take queues or pipe ends",
        )),
    }
}
