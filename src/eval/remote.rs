//! Shared objects across processes, evaluator side. A script's `get`,
//! `put`, `wait`, `lock`, `select` and methods on a proxy (`Handle::Remote`)
//! become one `Op` sent to the owner (`call_*`); the owner's stand-in thread
//! performs it on the real object with the same runtime calls a local
//! thread would make (`serve`).

use super::blocking::{queue_of, timeout_error, Direction};
use super::value::Value;
use super::{Interp, R};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::Time;
use crate::runtime::process::wire::{Op, Packet};
use crate::runtime::process::{codec, Link, Remote};
use crate::runtime::queues::{self, Arm, Queue};
use crate::runtime::threads::Held;
use crate::runtime::waits::BlockOn;
use crate::runtime::Context;
use crate::runtime::Handle;
use crate::span::Span;
use std::sync::Arc;
use std::time::Duration;

type Res = Result<Value, RuntimeError>;

/// How many items a get on another process's queue takes at most, when
/// they are already waiting: one round trip then serves the next ones.
const TAKE_AHEAD: u32 = 1024;

impl Interp {
    fn call_remote(&self, r: &Remote, op: Op, on: &BlockOn) -> Result<Vec<Value>, RuntimeError> {
        r.call(&self.ctx, &self.thread, op, on)
    }

    pub(super) fn remote_get(&self, r: &Remote, on: BlockOn, span: Span) -> R<Value> {
        if let Some(v) = r.ahead.lock().pop_front() {
            return Ok(v);
        }
        let timeout = self.ctx.seconds_left(on.deadline);
        let op = if r.can_take_ahead() {
            Op::Take {
                timeout,
                max: TAKE_AHEAD,
            }
        } else {
            Op::Get { timeout }
        };
        let mut got = self
            .call_remote(r, op, &on)
            .map_err(|e| Box::new(e.at(span)))?
            .into_iter();
        let first = got.next();
        r.keep_ahead(got.collect());
        first.ok_or_else(|| {
            timeout_error(format!("{} stayed empty until the timeout", r.label), span)
        })
    }

    pub(super) fn remote_put(&self, r: &Remote, item: Value, on: BlockOn, span: Span) -> R<()> {
        let put = || -> Result<bool, RuntimeError> {
            let op = Op::Put {
                item: codec::encode(&r.link, &[item])?,
                timeout: self.ctx.seconds_left(on.deadline),
            };
            Ok(matches!(
                self.call_remote(r, op, &on)?.first(),
                Some(Value::Bool(true))
            ))
        };
        if put().map_err(|e| Box::new(e.at(span)))? {
            Ok(())
        } else {
            Err(timeout_error(
                format!("{} stayed full until the timeout", r.label),
                span,
            ))
        }
    }

    /// `wait` on a remote event, condition or barrier.
    pub(super) fn remote_wait(&self, r: &Remote, on: BlockOn) -> Res {
        let op = Op::Wait {
            timeout: self.ctx.seconds_left(on.deadline),
        };
        let got = self.call_remote(r, op, &on)?;
        got.into_iter().next().ok_or_else(|| {
            RuntimeError::new(
                kind::TIMEOUT,
                format!("{} was not reached by all its parties in time", r.label),
            )
        })
    }

    pub(super) fn remote_acquire(
        &self,
        r: &Remote,
        on: BlockOn,
        at: Option<Span>,
    ) -> Result<bool, RuntimeError> {
        let op = Op::Acquire {
            timeout: self.ctx.seconds_left(on.deadline),
        };
        let got = matches!(
            self.call_remote(r, op, &on)?.first(),
            Some(Value::Bool(true))
        );
        if got {
            self.thread.add_held(Held {
                kind: r.kind,
                id: r.id,
                span: at,
            });
        }
        Ok(got)
    }

    /// `held`: the caller knows it holds the lock (the end of `lock m { }`),
    /// so the release cannot fail and is sent without waiting for a reply.
    pub(super) fn remote_release(
        &self,
        r: &Remote,
        span: Span,
        held: bool,
    ) -> Result<(), RuntimeError> {
        let on = BlockOn::new(format!("{} to be released", r.label), Some(span), None);
        if held {
            r.link.post(&self.thread, r.remote_id, Op::Release, &on)?;
        } else {
            self.call_remote(r, Op::Release, &on)?;
        }
        self.thread.remove_held(r.id);
        Ok(())
    }

    pub(super) fn remote_method(
        &mut self,
        r: &Remote,
        name: &str,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        let result = match name {
            "acquire" => match args.as_slice() {
                [] => self.remote_acquire(
                    r,
                    BlockOn::new(r.label.clone(), Some(span), None),
                    Some(span),
                ),
                [t] => super::builtins::expect_seconds("acquire()", t).and_then(|d| {
                    let on = BlockOn::new(
                        r.label.clone(),
                        Some(span),
                        Some(self.ctx.deadline_after(d)),
                    );
                    self.remote_acquire(r, on, Some(span))
                }),
                _ => Err(RuntimeError::new(
                    kind::TYPE,
                    "acquire() takes at most one argument (a timeout)",
                )),
            }
            .map(Value::Bool),
            "release" => self.remote_release(r, span, false).map(|_| Value::Nil),
            // Items taken ahead are still in the queue as far as a user can tell.
            "size" | "qsize" => self.remote_len(r),
            "empty" => self
                .remote_len(r)
                .map(|n| Value::Bool(matches!(n, Value::Int(0)))),
            _ => self.remote_call_method(r, name.to_string(), args, span),
        };
        result.map_err(|e| Box::new(e.at(span)))
    }

    fn remote_call_method(&self, r: &Remote, name: String, args: Vec<Value>, span: Span) -> Res {
        Ok(self.remote_answer(r, name, args, span)?.unwrap_or_default())
    }

    /// The owner's answer to a method or field: `None` for no answer (a
    /// field the object does not have).
    fn remote_answer(
        &self,
        r: &Remote,
        name: String,
        args: Vec<Value>,
        span: Span,
    ) -> Result<Option<Value>, RuntimeError> {
        let op = Op::Method {
            name,
            args: codec::encode(&r.link, &args)?,
        };
        let on = BlockOn::new(format!("{} to answer", r.label), Some(span), None);
        Ok(self.call_remote(r, op, &on)?.into_iter().next())
    }

    /// `len(q)` of a queue or pipe end another process owns.
    pub(super) fn remote_len(&self, r: &Remote) -> Res {
        self.remote_call_method(r, "size".to_string(), Vec::new(), Span::default())
    }

    /// A field of a remote object (`.capacity`, `.parties`); `None` if it has none.
    pub(super) fn remote_field(&self, r: &Remote, name: &str, span: Span) -> Option<Value> {
        self.remote_answer(r, format!(".{}", name), Vec::new(), span)
            .ok()
            .flatten()
    }

    /// `select` whose arms are all on objects of one other process: the
    /// owner runs the whole select. Gives the arm and the value got.
    pub(super) fn remote_select(
        &self,
        arms: Vec<(Arc<Remote>, Option<Value>)>,
        on: &BlockOn,
    ) -> Result<Option<(usize, Option<Value>)>, RuntimeError> {
        let Some(link) = arms.first().map(|(r, _)| r.link.clone()) else {
            return Ok(None);
        };
        // An item already taken ahead settles it at once.
        for (i, (r, put)) in arms.iter().enumerate() {
            if put.is_none() {
                if let Some(v) = r.ahead.lock().pop_front() {
                    return Ok(Some((i, Some(v))));
                }
            }
        }
        let mut wire_arms = Vec::with_capacity(arms.len());
        for (r, put) in &arms {
            if !Arc::ptr_eq(&r.link, &link) {
                return Err(mixed_select());
            }
            let put = match put {
                Some(v) => Some(codec::encode(&link, std::slice::from_ref(v))?),
                None => None,
            };
            wire_arms.push((r.remote_id, put));
        }
        let op = Op::Select {
            arms: wire_arms,
            timeout: self.ctx.seconds_left(on.deadline),
        };
        let packet = link.call(&self.ctx, &self.thread, 0, op, on)?;
        let mut got = codec::decode(&link, &self.ctx, packet)?.into_iter();
        match got.next() {
            Some(Value::Int(i)) => Ok(Some((i as usize, got.next()))),
            _ => Ok(None),
        }
    }

    /// Perform `op` on one of this process's objects for a thread of another
    /// process (this interpreter runs on that thread's stand-in).
    pub fn serve(
        &mut self,
        link: &Arc<Link>,
        h: &Handle,
        op: Op,
        on: BlockOn,
    ) -> Result<Vec<Value>, RuntimeError> {
        if let Handle::Remote(r) = h {
            return self.forward(link, r, op, &on);
        }
        let (ctx, me) = (self.ctx.clone(), self.thread.clone());
        let target = Value::Handle(h.clone());
        match op {
            Op::Get { timeout } => {
                let q = end(&target, Direction::Get, "get from")?;
                let on = BlockOn {
                    deadline: deadline(&ctx, timeout),
                    ..on
                };
                Ok(q.get(&ctx, &me, || on)?.into_iter().collect())
            }
            Op::Take { timeout, max } => {
                let q = end(&target, Direction::Get, "get from")?;
                let on = BlockOn {
                    deadline: deadline(&ctx, timeout),
                    ..on
                };
                let Some(first) = q.get(&ctx, &me, || on)? else {
                    return Ok(Vec::new());
                };
                let more = q.take_more(&ctx, max.saturating_sub(1) as usize, link);
                Ok(std::iter::once(first).chain(more).collect())
            }
            Op::Return { items } => {
                let q = end(&target, Direction::Get, "get from")?;
                q.put_back(&ctx, codec::decode(link, &ctx, items)?);
                Ok(Vec::new())
            }
            Op::Put { item, timeout } => {
                let q = end(&target, Direction::Put, "put into")?;
                let item = codec::decode(link, &ctx, item)?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let on = BlockOn {
                    deadline: deadline(&ctx, timeout),
                    ..on
                };
                Ok(vec![Value::Bool(q.put(&ctx, &me, item, || on)?)])
            }
            Op::Acquire { timeout } => {
                let lock = h.lock().ok_or_else(|| cannot("acquire", &target))?;
                let d = deadline(&ctx, timeout);
                let at = on.span;
                Ok(vec![Value::Bool(lock.acquire(&ctx, &me, d, at, || {
                    BlockOn { deadline: d, ..on }
                })?)])
            }
            Op::Release => {
                let lock = h.lock().ok_or_else(|| cannot("release", &target))?;
                lock.release(&ctx, &me)?;
                Ok(Vec::new())
            }
            Op::Wait { timeout } => {
                let on = BlockOn {
                    deadline: deadline(&ctx, timeout),
                    ..on
                };
                match h {
                    Handle::Event(e) => Ok(vec![Value::Bool(e.wait(&ctx, &me, on)?)]),
                    Handle::Condition(c) => Ok(vec![Value::Bool(c.wait(&ctx, &me, on)?)]),
                    Handle::Barrier(b) => Ok(b
                        .wait(&ctx, &me, on)?
                        .map(|i| Value::Int(i as i64))
                        .into_iter()
                        .collect()),
                    _ => Err(cannot("wait on", &target)),
                }
            }
            Op::Select { .. } => Err(cannot("select on", &target)),
            Op::Method { name, args } => {
                let args = codec::decode(link, &ctx, args)?;
                self.serve_method(h, &name, args, on.span.unwrap_or_default())
            }
        }
    }

    fn serve_method(
        &mut self,
        h: &Handle,
        name: &str,
        args: Vec<Value>,
        span: Span,
    ) -> Result<Vec<Value>, RuntimeError> {
        if let Some(field) = name.strip_prefix('.') {
            return Ok(self.handle_field(h, field).into_iter().collect());
        }
        if name == "str" {
            return Ok(vec![Value::str(&h.to_string())]);
        }
        self.handle_method(h, name, args, span)
            .map(|v| vec![v])
            .map_err(|e| *e)
    }

    /// A `select` sent by another process over objects this one owns.
    pub fn serve_select(
        &mut self,
        link: &Arc<Link>,
        arms: Vec<(u64, Option<Packet>)>,
        timeout: Option<f64>,
        on: BlockOn,
    ) -> Result<Vec<Value>, RuntimeError> {
        let mut local = Vec::with_capacity(arms.len());
        for (id, put) in arms {
            let target = link.exported(id).map(Value::Handle).ok_or_else(|| {
                RuntimeError::new(kind::PROCESS, "select on an object that is not shared")
            })?;
            let arm = match put {
                None => Arm::Get(end(&target, Direction::Get, "select on")?),
                Some(p) => {
                    let v = codec::decode(link, &self.ctx, p)?
                        .into_iter()
                        .next()
                        .unwrap_or_default();
                    Arm::Put(end(&target, Direction::Put, "select on")?, v)
                }
            };
            local.push(arm);
        }
        let on = BlockOn {
            deadline: deadline(&self.ctx, timeout),
            ..on
        };
        Ok(
            match queues::select(&self.ctx, &self.thread, &mut local, &on)? {
                Some((i, got)) => std::iter::once(Value::Int(i as i64)).chain(got).collect(),
                None => Vec::new(),
            },
        )
    }

    /// Pass an operation on through this process's own proxy (an object
    /// handed down to a grandchild): re-encode its values for the next link.
    fn forward(
        &mut self,
        from: &Arc<Link>,
        r: &Remote,
        op: Op,
        on: &BlockOn,
    ) -> Result<Vec<Value>, RuntimeError> {
        let relink = |p: Packet| -> Result<Packet, RuntimeError> {
            let values = codec::decode(from, &self.ctx, p)?;
            codec::encode(&r.link, &values)
        };
        let op = match op {
            // Items taken ahead stay with the process that asked for them,
            // so a grandchild's gets are passed on one at a time.
            Op::Take { timeout, .. } => Op::Get { timeout },
            Op::Return { items } => Op::Return {
                items: relink(items)?,
            },
            Op::Put { item, timeout } => Op::Put {
                item: relink(item)?,
                timeout,
            },
            Op::Method { name, args } => Op::Method {
                name,
                args: relink(args)?,
            },
            Op::Select { .. } => {
                return Err(RuntimeError::new(
                    kind::TYPE,
                    "select over objects passed on from another process is not supported",
                ))
            }
            other => other,
        };
        self.call_remote(r, op, on)
    }
}

fn deadline(ctx: &Context, timeout: Option<f64>) -> Option<Time> {
    timeout.map(|s| ctx.deadline_after(Duration::from_secs_f64(s.max(0.0))))
}

/// The queue an operation `what` on `target` works on.
fn end(target: &Value, way: Direction, what: &str) -> Result<Arc<Queue>, RuntimeError> {
    queue_of(target, way)
        .cloned()
        .ok_or_else(|| cannot(what, target))
}

fn cannot(what: &str, v: &Value) -> RuntimeError {
    RuntimeError::new(
        kind::TYPE,
        format!("cannot {} {}", what, super::describe(v)),
    )
}

pub(super) fn mixed_select() -> RuntimeError {
    RuntimeError::new(
        kind::TYPE,
        "one select cannot mix objects owned by different processes",
    )
    .with_help("select over objects that all belong to one process")
}
