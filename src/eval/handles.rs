//! Fields and methods of handles (`t.name`, `q.size()`, `m.acquire()`,
//! `p.map(f, xs)`, `f.then(cb)`, ...).

use super::builtins::{arity, expect_seconds, iteration_items};
use super::methods::no_method;
use super::objects::positive;
use super::value::Value;
use super::{Interp, R};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::locks::Lock;
use crate::runtime::pools::{Future, Pool, Timer};
use crate::runtime::queues::Queue;
use crate::runtime::signals::{Condition, Event};
use crate::runtime::waits::BlockOn;
use crate::runtime::{Handle, ThreadHandle};
use crate::span::Span;
use std::sync::Arc;

type Res = Result<Value, RuntimeError>;

impl Interp {
    pub(super) fn handle_field(&mut self, h: &Handle, name: &str) -> Option<Value> {
        match (h, name) {
            (Handle::Remote(r), _) => self.remote_field(r, name, Span::default()),
            (Handle::Thread(t), "pid") => {
                t.record.process.as_ref().map(|p| Value::Int(p.pid as i64))
            }
            (Handle::Thread(t), "exitcode") => t
                .record
                .process
                .as_ref()
                .map(|p| p.exitcode().map_or(Value::Nil, |c| Value::Int(c as i64))),
            (Handle::Thread(t), "name") => Some(Value::str(&t.record.name)),
            (Handle::Thread(t), "ident") => Some(Value::Int(t.record.id as i64)),
            (Handle::Thread(t), "native_id") => Some(Value::Int(t.record.os_id() as i64)),
            (Handle::Thread(t), "daemon") => Some(Value::Bool(t.record.daemon)),
            (Handle::Timer(t), "name") => Some(Value::str(&t.thread.record.name)),
            (Handle::Pool(p), "size") => Some(Value::Int(p.size as i64)),
            (Handle::Barrier(b), "parties") => Some(Value::Int(b.parties as i64)),
            (Handle::Queue(q), "capacity") => {
                Some(q.capacity.map_or(Value::Nil, |c| Value::Int(c as i64)))
            }
            _ => None,
        }
    }

    pub(super) fn handle_method(
        &mut self,
        h: &Handle,
        name: &str,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        let result = match h {
            Handle::Remote(r) => return self.remote_method(r, name, args, span),
            Handle::Thread(t) => thread_method(t, name, &args),
            Handle::Lock(l) => self.lock_method(l, name, &args, span),
            Handle::Event(e) => self.event_method(e, name, &args),
            Handle::Condition(c) => self.condition_method(c, name, &args, span),
            Handle::Queue(q) => queue_method(q, name, &args),
            Handle::Pipe(p) => queue_method(&p.recv, name, &args),
            Handle::Pool(p) => return self.pool_method(p, name, args, span),
            Handle::Future(f) => return self.future_method(f, name, args, span),
            Handle::Timer(t) => timer_method(t, name, &args, &self.ctx),
            Handle::Barrier(b) => match name {
                "waiting" => arity(name, &args, 0, 0).map(|_| Value::Int(b.waiting() as i64)),
                _ => Err(no_method(&Value::Handle(h.clone()), name)),
            },
        };
        result.map_err(|e| Box::new(e.at(span)))
    }

    fn lock_method(&mut self, l: &Arc<Lock>, name: &str, args: &[Value], span: Span) -> Res {
        match name {
            "acquire" => {
                arity(name, args, 0, 1)?;
                let deadline = match args.first() {
                    Some(v) => Some(self.ctx.deadline_after(expect_seconds("acquire()", v)?)),
                    None => None,
                };
                let describe = || BlockOn::new(l.label(), Some(span), deadline);
                l.acquire(&self.ctx, &self.thread, deadline, Some(span), describe)
                    .map(Value::Bool)
            }
            "release" => arity(name, args, 0, 0)
                .and_then(|_| l.release(&self.ctx, &self.thread))
                .map(|_| Value::Nil),
            "locked" => arity(name, args, 0, 0).map(|_| Value::Bool(l.locked())),
            _ => Err(no_method(&Value::Handle(Handle::Lock(l.clone())), name)),
        }
    }

    fn event_method(&mut self, e: &Arc<Event>, name: &str, args: &[Value]) -> Res {
        arity(name, args, 0, 0)?;
        match name {
            "set" => {
                e.set(&self.ctx);
                Ok(Value::Nil)
            }
            "clear" => {
                e.clear();
                Ok(Value::Nil)
            }
            "is_set" => Ok(Value::Bool(e.is_set())),
            _ => Err(no_method(&Value::Handle(Handle::Event(e.clone())), name)),
        }
    }

    fn condition_method(
        &mut self,
        c: &Arc<Condition>,
        name: &str,
        args: &[Value],
        span: Span,
    ) -> Res {
        match name {
            "notify" => {
                arity(name, args, 0, 1)?;
                let n = positive("notify", args.first(), 1, 0)?;
                c.notify(&self.ctx, &self.thread, Some(n as usize))
                    .map(|_| Value::Nil)
            }
            "notify_all" => arity(name, args, 0, 0)
                .and_then(|_| c.notify(&self.ctx, &self.thread, None))
                .map(|_| Value::Nil),
            "acquire" | "release" | "locked" => self.lock_method(&c.lock.clone(), name, args, span),
            _ => Err(no_method(
                &Value::Handle(Handle::Condition(c.clone())),
                name,
            )),
        }
    }

    fn pool_method(&mut self, p: &Arc<Pool>, name: &str, args: Vec<Value>, span: Span) -> R<Value> {
        match name {
            "map" => {
                arity(name, &args, 2, 2).map_err(|e| Box::new(e.at(span)))?;
                let items = iteration_items(&args[1]).map_err(|e| Box::new(e.at(span)))?;
                let futures = items
                    .into_iter()
                    .map(|item| self.submit_job(p, args[0].clone(), vec![item], span))
                    .collect::<R<Vec<_>>>()?;
                let mut results = Vec::with_capacity(futures.len());
                for f in futures {
                    if let Value::Handle(Handle::Future(f)) = f {
                        let on = BlockOn::new(format!("{} (in map)", f.label()), Some(span), None);
                        results.push(
                            f.join(&self.ctx, &self.thread, on)
                                .map_err(|e| Box::new(e.at(span)))?,
                        );
                    }
                }
                Ok(Value::list(results))
            }
            "submit" => {
                let mut args = args.into_iter();
                let callee = args.next().unwrap_or_default();
                self.submit_job(p, callee, args.collect(), span)
            }
            "shutdown" => {
                arity(name, &args, 0, 0).map_err(|e| Box::new(e.at(span)))?;
                p.shutdown(&self.ctx, &self.thread, Some(span))
                    .map_err(|e| Box::new(e.at(span)))?;
                Ok(Value::Nil)
            }
            _ => Err(Box::new(
                no_method(&Value::Handle(Handle::Pool(p.clone())), name).at(span),
            )),
        }
    }

    fn future_method(
        &mut self,
        f: &Arc<Future>,
        name: &str,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        match name {
            "then" => {
                arity(name, &args, 1, 1).map_err(|e| Box::new(e.at(span)))?;
                if let Some(result) = f.then(args[0].clone()) {
                    self.run_callback(&args[0], &result);
                }
                Ok(Value::Nil)
            }
            "done" => Ok(Value::Bool(f.done())),
            "result" => {
                let on = BlockOn::new(f.label(), Some(span), None);
                f.join(&self.ctx, &self.thread, on)
                    .map_err(|e| Box::new(e.at(span)))
            }
            _ => Err(Box::new(
                no_method(&Value::Handle(Handle::Future(f.clone())), name).at(span),
            )),
        }
    }
}

fn thread_method(t: &Arc<ThreadHandle>, name: &str, args: &[Value]) -> Res {
    match name {
        "alive" | "is_alive" => arity(name, args, 0, 0).map(|_| Value::Bool(t.record.alive())),
        "terminate" | "kill" if t.record.process.is_some() => {
            arity(name, args, 0, 0)?;
            if let Some(p) = &t.record.process {
                p.signal(if name == "kill" {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                });
            }
            Ok(Value::Nil)
        }
        "terminate" | "kill" => Err(RuntimeError::new(
            kind::TYPE,
            format!(
                "thread {} cannot be terminated: only processes can",
                t.record.name
            ),
        )
        .with_help("ask the thread to stop with an event it checks, or use `spawn process`")),
        _ => Err(no_method(&Value::Handle(Handle::Thread(t.clone())), name)),
    }
}

fn queue_method(q: &Arc<Queue>, name: &str, args: &[Value]) -> Res {
    arity(name, args, 0, 0)?;
    match name {
        "size" | "qsize" => Ok(Value::Int(q.size() as i64)),
        "empty" => Ok(Value::Bool(q.size() == 0)),
        "full" => Ok(Value::Bool(q.is_full())),
        _ => Err(no_method(&Value::Handle(Handle::Queue(q.clone())), name)),
    }
}

fn timer_method(t: &Arc<Timer>, name: &str, args: &[Value], ctx: &crate::runtime::Context) -> Res {
    arity(name, args, 0, 0)?;
    match name {
        "cancel" => {
            t.cancel.set(ctx);
            Ok(Value::Nil)
        }
        "alive" | "is_alive" => Ok(Value::Bool(t.thread.record.alive())),
        _ => Err(no_method(&Value::Handle(Handle::Timer(t.clone())), name)),
    }
}
