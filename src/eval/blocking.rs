//! The blocking operations of the language and the threads and processes
//! it starts: `spawn`, `join`, `get`, `put`, `wait`, `submit`, `lock X { }`
//! and `select`, each on operands already evaluated (the compiled nodes in
//! `compile/concurrency.rs` evaluate them). Each calls one runtime
//! operation with a `BlockOn` saying what is waited for and where.

use super::builtins::expect_seconds;
use super::value::Value;
use super::{Interp, R};
use crate::ast::SpawnKind;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::Time;
use crate::runtime::locks::Lock;
use crate::runtime::pools::{Future, Job, Pool};
use crate::runtime::process::Remote;
use crate::runtime::queues::{self, Arm, Queue};
use crate::runtime::waits::BlockOn;
use crate::runtime::{threads, Context, Handle};
use crate::span::Span;
use std::sync::Arc;

/// Where a blocking operation is written: the whole expression (the
/// report's location) and its operand (named in reports by its source text).
#[derive(Clone, Copy)]
pub(super) struct Site {
    pub span: Span,
    pub target: Span,
}

fn wrong_kind(what: &str, v: &Value, span: Span, help: &str) -> Box<RuntimeError> {
    Box::new(
        RuntimeError::new(
            kind::TYPE,
            format!("cannot {} {}", what, super::describe(v)),
        )
        .at(span)
        .with_help(help.to_string()),
    )
}

pub(super) fn timeout_error(what: String, span: Span) -> Box<RuntimeError> {
    Box::new(RuntimeError::new(kind::TIMEOUT, what).at(span))
}

/// `timeout v` as an absolute deadline (`at`: where `v` is written).
pub(super) fn deadline_of(ctx: &Context, v: &Value, at: Span) -> R<Time> {
    let d = expect_seconds("a timeout", v).map_err(|err| Box::new(err.at(at)))?;
    Ok(ctx.deadline_after(d))
}

impl Interp {
    /// The source text of an expression, to name objects in reports.
    fn source_text(&self, span: Span) -> String {
        self.ctx
            .sources
            .get(span.src)
            .and_then(|s| {
                s.text
                    .get(span.start as usize..span.end as usize)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    fn block_on(&self, label: String, site: Site, deadline: Option<Time>) -> BlockOn {
        let text = self.source_text(site.target);
        let what = if text.is_empty() {
            label
        } else {
            format!("{} ({})", label, text)
        };
        BlockOn::new(what, Some(site.span), deadline)
    }

    /// Run `callee(args)` on a new thread or process named `name`.
    pub(super) fn start(
        &mut self,
        (kind, daemon): (SpawnKind, bool),
        callee: Value,
        args: Vec<Value>,
        name: String,
        span: Span,
    ) -> R<Value> {
        if kind == SpawnKind::Process {
            let handle =
                crate::runtime::process::spawn(&self.ctx, name, daemon, &callee, &args, span)
                    .map_err(|e| Box::new(e.at(span)))?;
            return Ok(Value::Handle(Handle::Thread(handle)));
        }
        let ctx = self.ctx.clone();
        let body = Box::new(move |record| {
            let mut it = Interp::new(ctx, record);
            it.call_value(&callee, args, span).map_err(|e| *e)
        });
        let handle =
            threads::spawn(&self.ctx, name, daemon, body).map_err(|e| Box::new(e.at(span)))?;
        Ok(Value::Handle(Handle::Thread(handle)))
    }

    /// `join t`: a thread's, process's, timer's or future's result.
    pub(super) fn join_value(&mut self, t: &Value, deadline: Option<Time>, site: Site) -> R<Value> {
        let span = site.span;
        let result = match t {
            Value::Handle(Handle::Thread(h)) => h.join(&self.ctx, &self.thread, deadline, span),
            Value::Handle(Handle::Timer(timer)) => {
                timer.thread.join(&self.ctx, &self.thread, deadline, span)
            }
            Value::Handle(Handle::Future(f)) => {
                let on = self.block_on(f.label(), site, deadline);
                f.join(&self.ctx, &self.thread, on)
            }
            other => {
                return Err(wrong_kind(
                    "join",
                    other,
                    site.target,
                    "join takes a thread, a timer or a future",
                ))
            }
        };
        result.map_err(|e| Box::new(e.at(span)))
    }

    /// `get t`: an item from a queue or a pipe end.
    pub(super) fn get_from(&mut self, t: &Value, deadline: Option<Time>, site: Site) -> R<Value> {
        let span = site.span;
        if let Value::Handle(Handle::Remote(r)) = t {
            let on = self.block_on(format!("an item from {}", r.label), site, deadline);
            return self.remote_get(r, on, span);
        }
        let q = queue_of(t, Direction::Get).ok_or_else(|| {
            wrong_kind(
                "get from",
                t,
                site.target,
                "get takes a queue or a pipe end",
            )
        })?;
        let describe = || {
            let label = end_label(t);
            self.block_on(format!("an item from {}", label), site, deadline)
        };
        match q
            .get(&self.ctx, &self.thread, describe)
            .map_err(|e| Box::new(e.at(span)))?
        {
            Some(v) => Ok(v),
            None => Err(timeout_error(
                format!("{} stayed empty until the timeout", end_label(t)),
                span,
            )),
        }
    }

    /// `put t, v`: into a queue or a pipe end.
    pub(super) fn put_into(
        &mut self,
        t: &Value,
        v: Value,
        deadline: Option<Time>,
        site: Site,
    ) -> R<()> {
        let span = site.span;
        if let Value::Handle(Handle::Remote(r)) = t {
            let on = self.block_on(format!("room in {}", r.label), site, deadline);
            return self.remote_put(r, v, on, span);
        }
        let q = queue_of(t, Direction::Put).ok_or_else(|| {
            wrong_kind(
                "put into",
                t,
                site.target,
                "put takes a queue or a pipe end",
            )
        })?;
        let describe = || {
            let label = end_label(t);
            self.block_on(format!("room in {}", label), site, deadline)
        };
        if q.put(&self.ctx, &self.thread, v, describe)
            .map_err(|e| Box::new(e.at(span)))?
        {
            Ok(())
        } else {
            Err(timeout_error(
                format!("{} stayed full until the timeout", end_label(t)),
                span,
            ))
        }
    }

    /// `wait t`: on an event, a condition or a barrier.
    pub(super) fn wait_on(&mut self, t: &Value, deadline: Option<Time>, site: Site) -> R<Value> {
        let (ctx, me) = (self.ctx.clone(), self.thread.clone());
        let result = match t {
            Value::Handle(Handle::Remote(r)) => {
                let on = self.block_on(r.label.clone(), site, deadline);
                self.remote_wait(r, on)
            }
            Value::Handle(Handle::Event(e)) => {
                let on = self.block_on(format!("{} to be set", e.label()), site, deadline);
                e.wait(&ctx, &me, on).map(Value::Bool)
            }
            Value::Handle(Handle::Condition(c)) => {
                let on = self.block_on(format!("{} to be notified", c.label()), site, deadline);
                c.wait(&ctx, &me, on).map(Value::Bool)
            }
            Value::Handle(Handle::Barrier(b)) => {
                let label = format!("{} ({} parties)", b.label(), b.parties);
                let on = self.block_on(label, site, deadline);
                match b.wait(&ctx, &me, on) {
                    Ok(Some(i)) => Ok(Value::Int(i as i64)),
                    Ok(None) => Err(RuntimeError::new(
                        kind::TIMEOUT,
                        format!(
                            "{} was not reached by {} parties in time",
                            b.label(),
                            b.parties
                        ),
                    )),
                    Err(e) => Err(e),
                }
            }
            other => {
                return Err(wrong_kind(
                    "wait on",
                    other,
                    site.target,
                    "wait takes an event, a condition or a barrier",
                ))
            }
        };
        result.map_err(|e| Box::new(e.at(site.span)))
    }

    /// `submit p, f(args)`: `pool` is the value of `p`, written at `at`.
    pub(super) fn submit_to(
        &mut self,
        pool: &Value,
        at: Span,
        callee: Value,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        let Value::Handle(Handle::Pool(p)) = pool else {
            return Err(wrong_kind(
                "submit to",
                pool,
                at,
                "submit takes a pool: submit p, work(x)",
            ));
        };
        self.submit_job(p, callee, args, span)
    }

    pub(super) fn submit_job(
        &mut self,
        p: &Arc<Pool>,
        callee: Value,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        check_callable(&callee, span)?;
        let future = Future::new();
        let job = Job {
            future: future.clone(),
            callee,
            args,
            span,
        };
        p.submit(&self.ctx, job).map_err(|e| Box::new(e.at(span)))?;
        Ok(Value::Handle(Handle::Future(future)))
    }

    /// Acquire what `lock X { }` names (`t`, the value of `X`, written at `at`).
    pub(super) fn lock_enter(&mut self, t: &Value, at: Span) -> R<HeldLock> {
        match t {
            Value::Handle(Handle::Remote(r)) => {
                let on = self.block_on(r.label.clone(), lock_site(at), None);
                self.remote_acquire(r, on, Some(at))
                    .map_err(|e| Box::new(e.at(at)))?;
                Ok(HeldLock::Remote(r.clone()))
            }
            Value::Handle(Handle::Lock(l)) => self.acquire_local(l.clone(), at),
            Value::Handle(Handle::Condition(c)) => self.acquire_local(c.lock.clone(), at),
            other => Err(wrong_kind(
                "lock",
                other,
                at,
                "`lock X { }` takes a lock, rlock, semaphore or condition",
            )),
        }
    }

    fn acquire_local(&mut self, lock: Arc<Lock>, at: Span) -> R<HeldLock> {
        self.acquire_for_block(&lock, &at)?;
        Ok(HeldLock::Local(lock))
    }

    /// Take `lock` for the block of `lock X { }` (`at`: a reference, as
    /// the hot `lock m { }` node passes it without copying).
    pub(super) fn acquire_for_block(&mut self, lock: &Lock, at: &Span) -> R<()> {
        let describe = || self.block_on(lock.label(), lock_site(*at), None);
        lock.acquire(&self.ctx, &self.thread, None, Some(*at), describe)
            .map(|_| ())
            .map_err(|e| Box::new(e.at(*at)))
    }

    pub(super) fn release_for_block(&mut self, lock: &Lock, at: &Span) -> R<()> {
        lock.release(&self.ctx, &self.thread)
            .map_err(|e| Box::new(e.at(*at)))
    }

    /// Release at the end of `lock X { }`, however the block ended.
    pub(super) fn lock_exit(&mut self, held: &HeldLock, at: Span) -> R<()> {
        match held {
            HeldLock::Local(l) => l.release(&self.ctx, &self.thread),
            HeldLock::Remote(r) => self.remote_release(r, at, true),
        }
        .map_err(|e| Box::new(e.at(at)))
    }

    /// Wait until one of the cases of `select` can go, or until `deadline`.
    /// Gives the case (its index among the get and put cases) and what a get
    /// got; `None` on timeout.
    pub(super) fn select_wait(
        &mut self,
        cases: SelectArms,
        deadline: Option<Time>,
        span: Span,
    ) -> R<Option<(usize, Option<Value>)>> {
        let SelectArms {
            mut arms,
            remote,
            labels,
        } = cases;
        let on = BlockOn::new(
            format!("select over {}", labels.join(", ")),
            Some(span),
            deadline,
        );
        match (arms.is_empty(), remote.is_empty()) {
            (_, true) => queues::select(&self.ctx, &self.thread, &mut arms, &on),
            (true, false) => self.remote_select(remote, &on),
            (false, false) => Err(super::remote::mixed_select()),
        }
        .map_err(|e| Box::new(e.at(span)))
    }
}

/// A lock block names its lock by the lock expression, and is reported there.
fn lock_site(at: Span) -> Site {
    Site {
        span: at,
        target: at,
    }
}

/// Only functions can be spawned or submitted.
pub(super) fn check_callable(callee: &Value, span: Span) -> R<()> {
    match callee {
        Value::Func(_) | Value::Builtin(_) => Ok(()),
        other => Err(super::not_callable(other, span)),
    }
}

/// The get and put cases of a `select`, in order, with their operands.
#[derive(Default)]
pub(super) struct SelectArms {
    arms: Vec<Arm>,
    remote: Vec<(Arc<Remote>, Option<Value>)>,
    labels: Vec<String>,
}

impl SelectArms {
    /// `case get q`, where `q` (written at `at`) has the value `t`.
    pub(super) fn get(&mut self, t: Value, at: Span) -> R<()> {
        if let Value::Handle(Handle::Remote(r)) = &t {
            self.labels.push(format!("get {}", r.label));
            self.remote.push((r.clone(), None));
        } else {
            let q = select_queue(&t, at, Direction::Get)?;
            self.labels.push(format!("get {}", q.label()));
            self.arms.push(Arm::Get(q));
        }
        Ok(())
    }

    /// `case put q, v`.
    pub(super) fn put(&mut self, t: Value, v: Value, at: Span) -> R<()> {
        if let Value::Handle(Handle::Remote(r)) = &t {
            self.labels.push(format!("put {}", r.label));
            self.remote.push((r.clone(), Some(v)));
        } else {
            let q = select_queue(&t, at, Direction::Put)?;
            self.labels.push(format!("put {}", q.label()));
            self.arms.push(Arm::Put(q, v));
        }
        Ok(())
    }
}

/// What a `lock X { }` statement holds while its block runs.
pub(super) enum HeldLock {
    Local(Arc<Lock>),
    Remote(Arc<Remote>),
}

#[derive(Clone, Copy)]
pub(super) enum Direction {
    Get,
    Put,
}

fn select_queue(v: &Value, span: Span, way: Direction) -> R<Arc<Queue>> {
    match queue_of(v, way) {
        Some(q) => Ok(q.clone()),
        None => Err(wrong_kind(
            "select on",
            v,
            span,
            "select cases take queues or pipe ends",
        )),
    }
}

/// The queue a `get`/`put` on `v` works on (a pipe end reads from one
/// queue and writes to the other), without naming it (names cost an
/// allocation, and only reports need them: `end_label`).
pub(super) fn queue_of(v: &Value, way: Direction) -> Option<&Arc<Queue>> {
    match (v, way) {
        (Value::Handle(Handle::Queue(q)), _) => Some(q),
        (Value::Handle(Handle::Pipe(p)), Direction::Get) => Some(&p.recv),
        (Value::Handle(Handle::Pipe(p)), Direction::Put) => Some(&p.send),
        _ => None,
    }
}

/// How reports name the queue or pipe end `v`.
fn end_label(v: &Value) -> String {
    match v {
        Value::Handle(Handle::Queue(q)) => q.label(),
        Value::Handle(Handle::Pipe(p)) => p.label(),
        other => other.to_repr(),
    }
}

/// What a thread spawned to run `f` is called by default (and a counter).
pub(super) fn function_name(f: &Value) -> String {
    match f {
        Value::Func(c) => c
            .func
            .decl
            .name
            .as_ref()
            .map_or("thread".to_string(), |n| n.name.to_string()),
        Value::Builtin(b) => b.name.to_string(),
        _ => "thread".to_string(),
    }
}
