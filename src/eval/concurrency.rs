//! Where the evaluator meets the runtime: `spawn`, `join`, `lock`, `wait`,
//! `put`, `get`, `select`, `submit`, constructors, handle fields and methods.
//! Everything here evaluates operands, then calls one runtime operation with
//! a `BlockOn` saying what is waited for and where.

use super::builtins::{arity, expect_int, expect_seconds, Builtin};
use super::value::Value;
use super::{Flow, Frame, Interp, R};
use crate::ast::*;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::Time;
use crate::runtime::locks::{Lock, LockKind};
use crate::runtime::pools::{Future, Job, Pool, Timer};
use crate::runtime::queues::{self, Arm, Order, PipeEnd, Queue};
use crate::runtime::signals::{Barrier, Condition, Event};
use crate::runtime::waits::BlockOn;
use crate::runtime::{threads, Handle, ThreadHandle};
use crate::span::Span;
use std::sync::Arc;

type Res = Result<Value, RuntimeError>;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "current",
        call: current,
    },
    Builtin {
        name: "lock",
        call: new_lock,
    },
    Builtin {
        name: "rlock",
        call: new_rlock,
    },
    Builtin {
        name: "semaphore",
        call: new_semaphore,
    },
    Builtin {
        name: "event",
        call: new_event,
    },
    Builtin {
        name: "condition",
        call: new_condition,
    },
    Builtin {
        name: "barrier",
        call: new_barrier,
    },
    Builtin {
        name: "queue",
        call: new_queue,
    },
    Builtin {
        name: "lifo",
        call: new_lifo,
    },
    Builtin {
        name: "priority",
        call: new_priority,
    },
    Builtin {
        name: "pipe",
        call: new_pipe,
    },
    Builtin {
        name: "thread_pool",
        call: new_thread_pool,
    },
    Builtin {
        name: "timer",
        call: new_timer,
    },
    Builtin {
        name: "process_pool",
        call: super::process_pool::new_process_pool,
    },
    Builtin {
        name: "threads",
        call: list_threads,
    },
];

fn handle(h: Handle) -> Res {
    Ok(Value::Handle(h))
}

fn current(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("current", &args, 0, 0)?;
    handle(Handle::Thread(ThreadHandle::for_record(
        &it.thread, &it.ctx,
    )))
}

fn new_lock(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("lock", &args, 0, 0)?;
    handle(Handle::Lock(Lock::new(LockKind::Plain, 0)))
}

fn new_rlock(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("rlock", &args, 0, 0)?;
    handle(Handle::Lock(Lock::new(LockKind::Reentrant, 0)))
}

pub(super) fn positive(
    name: &str,
    v: Option<&Value>,
    default: i64,
    min: i64,
) -> Result<i64, RuntimeError> {
    let n = match v {
        Some(v) => expect_int(name, v)?,
        None => default,
    };
    if n < min {
        return Err(RuntimeError::new(
            kind::VALUE,
            format!("{}() needs a number of at least {}, not {}", name, min, n),
        ));
    }
    Ok(n)
}

fn new_semaphore(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("semaphore", &args, 0, 1)?;
    let n = positive("semaphore", args.first(), 1, 0)?;
    handle(Handle::Lock(Lock::new(LockKind::Semaphore, n as u64)))
}

fn new_event(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("event", &args, 0, 0)?;
    handle(Handle::Event(Event::new()))
}

fn new_condition(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("condition", &args, 0, 1)?;
    let lock = match args.first() {
        None => None,
        Some(Value::Handle(Handle::Lock(l))) => Some(l.clone()),
        Some(other) => {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!(
                    "condition() needs a lock or rlock, not {}",
                    super::describe(other)
                ),
            ))
        }
    };
    handle(Handle::Condition(Condition::new(lock)?))
}

fn new_barrier(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("barrier", &args, 1, 1)?;
    let n = positive("barrier", args.first(), 1, 1)?;
    handle(Handle::Barrier(Barrier::new(n as usize)))
}

fn make_queue(name: &str, order: Order, args: &[Value]) -> Res {
    arity(name, args, 0, 1)?;
    let capacity = match args.first() {
        None | Some(Value::Nil) => None,
        Some(v) => match positive(name, Some(v), 0, 0)? {
            0 => None,
            n => Some(n as usize),
        },
    };
    handle(Handle::Queue(Queue::new(order, capacity)))
}

fn new_queue(_: &mut Interp, args: Vec<Value>) -> Res {
    make_queue("queue", Order::Fifo, &args)
}

fn new_lifo(_: &mut Interp, args: Vec<Value>) -> Res {
    make_queue("lifo", Order::Lifo, &args)
}

fn new_priority(_: &mut Interp, args: Vec<Value>) -> Res {
    make_queue("priority", Order::Priority, &args)
}

fn new_pipe(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("pipe", &args, 0, 0)?;
    let (a, b) = PipeEnd::pair();
    Ok(Value::list(vec![
        Value::Handle(Handle::Pipe(a)),
        Value::Handle(Handle::Pipe(b)),
    ]))
}

fn new_thread_pool(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("thread_pool", &args, 0, 1)?;
    let size = positive(
        "thread_pool",
        args.first(),
        it.ctx.engine().cpu_count() as i64,
        1,
    )?;
    let pool = Pool::new(size as usize, "thread-pool");
    for i in 0..size {
        start_pool_worker(it, &pool, i + 1)?;
    }
    it.ctx.pools.lock().push(Arc::downgrade(&pool));
    handle(Handle::Pool(pool))
}

/// A pool worker: a daemon thread taking jobs until the pool is shut down.
fn start_pool_worker(it: &Interp, pool: &Arc<Pool>, n: i64) -> Result<(), RuntimeError> {
    let ctx = it.ctx.clone();
    let pool2 = pool.clone();
    let body = Box::new(move |record| {
        let mut worker = Interp::new(ctx.clone(), record);
        while let Some(job) = pool2.next_job(&ctx, &worker.thread)? {
            worker.run_job(job);
            pool2.job_done(&ctx);
        }
        Ok(Value::Nil)
    });
    let name = format!("pool{}-worker-{}", pool.id, n);
    threads::spawn(&it.ctx, name, true, body)?;
    Ok(())
}

fn new_timer(it: &mut Interp, args: Vec<Value>) -> Res {
    if args.len() < 2 {
        return Err(RuntimeError::new(
            kind::TYPE,
            "timer() needs seconds and a function: timer(3, f, args...)",
        ));
    }
    let mut args = args.into_iter();
    let delay = expect_seconds("timer()", &args.next().unwrap_or_default())?;
    let callee = args.next().unwrap_or_default();
    let rest: Vec<Value> = args.collect();
    let cancel = Event::new();
    let (ctx, cancel2) = (it.ctx.clone(), cancel.clone());
    let body = Box::new(move |record| {
        let mut runner = Interp::new(ctx.clone(), record);
        let on = BlockOn::new("the timer's delay", None, Some(ctx.deadline_after(delay)));
        if cancel2.wait(&ctx, &runner.thread, on)? {
            return Ok(Value::Nil);
        }
        runner
            .call_value(&callee, rest, Span::default())
            .map_err(|e| *e)
    });
    let name = it.ctx.next_name("timer");
    let thread = threads::spawn(&it.ctx, name, false, body)?;
    let id = crate::runtime::next_object_id();
    handle(Handle::Timer(Arc::new(Timer { id, thread, cancel })))
}

/// `threads()`: the live threads of this process, as `<thread name state>`
/// handles (like `threading.enumerate()`: child processes and the stand-ins
/// for their threads are not among them).
fn list_threads(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("threads", &args, 0, 0)?;
    let all = it
        .ctx
        .registry
        .snapshot()
        .into_iter()
        .filter(|info| info.thread.is_own_thread())
        .map(|info| {
            Value::Handle(Handle::Thread(ThreadHandle::for_record(
                &info.thread,
                &it.ctx,
            )))
        })
        .collect();
    Ok(Value::list(all))
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

impl Interp {
    /// `timeout EXPR` as an absolute deadline.
    fn deadline(&mut self, timeout: Option<&Expr>, frame: Frame) -> R<Option<Time>> {
        let Some(e) = timeout else { return Ok(None) };
        let v = self.eval(e, frame)?;
        let d = expect_seconds("a timeout", &v).map_err(|err| Box::new(err.at(e.span)))?;
        Ok(Some(self.ctx.deadline_after(d)))
    }

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

    fn block_on(
        &self,
        label: String,
        target: &Expr,
        span: Span,
        deadline: Option<Time>,
    ) -> BlockOn {
        let text = self.source_text(target.span);
        let what = if text.is_empty() {
            label
        } else {
            format!("{} ({})", label, text)
        };
        BlockOn::new(what, Some(span), deadline)
    }

    /// Run one pool job on this (worker) thread, then its callbacks.
    fn run_job(&mut self, job: Job) {
        let result = self
            .call_value(&job.callee, job.args, job.span)
            .map_err(|e| *e);
        for callback in job.future.complete(&self.ctx, result.clone()) {
            self.run_callback(&callback, &result);
        }
    }

    pub(super) fn run_callback(&mut self, callback: &Value, result: &Result<Value, RuntimeError>) {
        let arg = match result {
            Ok(v) => v.clone(),
            Err(e) => Value::Error(Arc::new(e.clone())),
        };
        if let Err(e) = self.call_value(callback, vec![arg], Span::default()) {
            self.ctx.report_unjoined("callback", &e);
        }
    }

    pub(super) fn eval_spawn(&mut self, spawn: &Spawn, span: Span, frame: Frame) -> R<Value> {
        let (callee, args, base_name) = match &spawn.body {
            SpawnBody::Call { callee, args } => {
                let f = self.eval(callee, frame)?;
                let args = self.eval_args(args, frame)?;
                let name = function_name(&f);
                (f, args, name)
            }
            SpawnBody::Block(decl) => (
                self.make_closure(decl, frame),
                Vec::new(),
                "thread".to_string(),
            ),
        };
        if !matches!(callee, Value::Func(_) | Value::Builtin(_)) {
            return Err(super::not_callable(&callee, span));
        }
        let name = match &spawn.name {
            Some(e) => self.eval(e, frame)?.to_display(),
            None => self.ctx.next_name(&base_name),
        };
        if spawn.kind == SpawnKind::Process {
            let handle =
                crate::runtime::process::spawn(&self.ctx, name, spawn.daemon, &callee, &args, span)
                    .map_err(|e| Box::new(e.at(span)))?;
            return Ok(Value::Handle(Handle::Thread(handle)));
        }
        let ctx = self.ctx.clone();
        let body = Box::new(move |record| {
            let mut it = Interp::new(ctx, record);
            it.call_value(&callee, args, span).map_err(|e| *e)
        });
        let handle = threads::spawn(&self.ctx, name, spawn.daemon, body)
            .map_err(|e| Box::new(e.at(span)))?;
        Ok(Value::Handle(Handle::Thread(handle)))
    }

    pub(super) fn eval_join(
        &mut self,
        target: &Expr,
        timeout: Option<&Expr>,
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let t = self.eval(target, frame)?;
        let deadline = self.deadline(timeout, frame)?;
        let result = match &t {
            Value::Handle(Handle::Thread(h)) => h.join(&self.ctx, &self.thread, deadline, span),
            Value::Handle(Handle::Timer(timer)) => {
                timer.thread.join(&self.ctx, &self.thread, deadline, span)
            }
            Value::Handle(Handle::Future(f)) => {
                let on = self.block_on(f.label(), target, span, deadline);
                f.join(&self.ctx, &self.thread, on)
            }
            other => {
                return Err(wrong_kind(
                    "join",
                    other,
                    target.span,
                    "join takes a thread, a timer or a future",
                ))
            }
        };
        result.map_err(|e| Box::new(e.at(span)))
    }

    pub(super) fn eval_get(
        &mut self,
        target: &Expr,
        timeout: Option<&Expr>,
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let t = self.eval(target, frame)?;
        let deadline = self.deadline(timeout, frame)?;
        self.get_from(&t, target, deadline, span)
    }

    /// `get` on the value of `target`.
    pub(super) fn get_from(
        &mut self,
        t: &Value,
        target: &Expr,
        deadline: Option<Time>,
        span: Span,
    ) -> R<Value> {
        if let Value::Handle(Handle::Remote(r)) = t {
            let on = self.block_on(format!("an item from {}", r.label), target, span, deadline);
            return self.remote_get(r, on, span);
        }
        let q = queue_of(t, Direction::Get).ok_or_else(|| {
            wrong_kind(
                "get from",
                t,
                target.span,
                "get takes a queue or a pipe end",
            )
        })?;
        let describe = || {
            let label = end_label(t);
            self.block_on(format!("an item from {}", label), target, span, deadline)
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

    pub(super) fn exec_put(
        &mut self,
        target: &Expr,
        value: &Expr,
        timeout: Option<&Expr>,
        span: Span,
        frame: Frame,
    ) -> R<()> {
        let t = self.eval(target, frame)?;
        let v = self.eval(value, frame)?;
        let deadline = self.deadline(timeout, frame)?;
        self.put_into(&t, v, target, deadline, span)
    }

    /// `put` of `v` into the value of `target`.
    pub(super) fn put_into(
        &mut self,
        t: &Value,
        v: Value,
        target: &Expr,
        deadline: Option<Time>,
        span: Span,
    ) -> R<()> {
        if let Value::Handle(Handle::Remote(r)) = t {
            let on = self.block_on(format!("room in {}", r.label), target, span, deadline);
            return self.remote_put(r, v, on, span);
        }
        let q = queue_of(t, Direction::Put).ok_or_else(|| {
            wrong_kind(
                "put into",
                t,
                target.span,
                "put takes a queue or a pipe end",
            )
        })?;
        let describe = || {
            let label = end_label(t);
            self.block_on(format!("room in {}", label), target, span, deadline)
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

    pub(super) fn eval_wait(
        &mut self,
        target: &Expr,
        timeout: Option<&Expr>,
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let t = self.eval(target, frame)?;
        let deadline = self.deadline(timeout, frame)?;
        let (ctx, me) = (self.ctx.clone(), self.thread.clone());
        let result = match &t {
            Value::Handle(Handle::Remote(r)) => {
                let on = self.block_on(r.label.clone(), target, span, deadline);
                self.remote_wait(r, on)
            }
            Value::Handle(Handle::Event(e)) => {
                let on = self.block_on(format!("{} to be set", e.label()), target, span, deadline);
                e.wait(&ctx, &me, on).map(Value::Bool)
            }
            Value::Handle(Handle::Condition(c)) => {
                let on = self.block_on(
                    format!("{} to be notified", c.label()),
                    target,
                    span,
                    deadline,
                );
                c.wait(&ctx, &me, on).map(Value::Bool)
            }
            Value::Handle(Handle::Barrier(b)) => {
                let on = self.block_on(
                    format!("{} ({} parties)", b.label(), b.parties),
                    target,
                    span,
                    deadline,
                );
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
                    target.span,
                    "wait takes an event, a condition or a barrier",
                ))
            }
        };
        result.map_err(|e| Box::new(e.at(span)))
    }

    pub(super) fn eval_submit(
        &mut self,
        pool: &Expr,
        callee: &Expr,
        args: &[Expr],
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let p = self.eval(pool, frame)?;
        let f = self.eval(callee, frame)?;
        let args = self.eval_args(args, frame)?;
        let Value::Handle(Handle::Pool(p)) = &p else {
            return Err(wrong_kind(
                "submit to",
                &p,
                pool.span,
                "submit takes a pool: submit p, work(x)",
            ));
        };
        self.submit_job(p, f, args, span)
    }

    fn submit_job(
        &mut self,
        p: &Arc<Pool>,
        callee: Value,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        if !matches!(callee, Value::Func(_) | Value::Builtin(_)) {
            return Err(super::not_callable(&callee, span));
        }
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

    pub(super) fn exec_lock(&mut self, target: &Expr, body: &Block, frame: Frame) -> R<Flow> {
        let t = self.eval(target, frame)?;
        let held = self.lock_enter(&t, target)?;
        let flow = self.exec_body(&body.stmts, frame);
        let released = self.lock_exit(&held, target);
        let flow = flow?;
        released?;
        Ok(flow)
    }

    /// Acquire what `lock X { }` names (`t`, the value of `target`).
    pub(super) fn lock_enter(&mut self, t: &Value, target: &Expr) -> R<HeldLock> {
        let at = target.span;
        match t {
            Value::Handle(Handle::Remote(r)) => {
                let on = self.block_on(r.label.clone(), target, at, None);
                self.remote_acquire(r, on, Some(at))
                    .map_err(|e| Box::new(e.at(at)))?;
                Ok(HeldLock::Remote(r.clone()))
            }
            Value::Handle(Handle::Lock(l)) => self.acquire_local(l.clone(), target),
            Value::Handle(Handle::Condition(c)) => self.acquire_local(c.lock.clone(), target),
            other => Err(wrong_kind(
                "lock",
                other,
                at,
                "`lock X { }` takes a lock, rlock, semaphore or condition",
            )),
        }
    }

    fn acquire_local(&mut self, lock: Arc<Lock>, target: &Expr) -> R<HeldLock> {
        self.acquire_for_block(&lock, target)?;
        Ok(HeldLock::Local(lock))
    }

    /// Take `lock` for the block of `lock X { }`.
    pub(super) fn acquire_for_block(&mut self, lock: &Lock, target: &Expr) -> R<()> {
        let describe = || self.block_on(lock.label(), target, target.span, None);
        lock.acquire(&self.ctx, &self.thread, None, Some(target.span), describe)
            .map(|_| ())
            .map_err(|e| Box::new(e.at(target.span)))
    }

    pub(super) fn release_for_block(&mut self, lock: &Lock, target: &Expr) -> R<()> {
        lock.release(&self.ctx, &self.thread)
            .map_err(|e| Box::new(e.at(target.span)))
    }

    /// Release at the end of `lock X { }`, however the block ended.
    pub(super) fn lock_exit(&mut self, held: &HeldLock, target: &Expr) -> R<()> {
        match held {
            HeldLock::Local(l) => l.release(&self.ctx, &self.thread),
            HeldLock::Remote(r) => self.remote_release(r, target.span, true),
        }
        .map_err(|e| Box::new(e.at(target.span)))
    }

    pub(super) fn exec_select(
        &mut self,
        cases: &[SelectCase],
        span: Span,
        frame: Frame,
    ) -> R<Flow> {
        let mut arms = Vec::new();
        let mut remote_arms = Vec::new();
        let mut arm_cases = Vec::new();
        let mut timeout_case = None;
        let mut labels = Vec::new();
        for case in cases {
            match &case.kind {
                SelectKind::Get { target, .. } => {
                    let t = self.eval(target, frame)?;
                    if let Value::Handle(Handle::Remote(r)) = &t {
                        labels.push(format!("get {}", r.label));
                        remote_arms.push((r.clone(), None));
                    } else {
                        let q = select_queue(&t, target.span, Direction::Get)?;
                        labels.push(format!("get {}", q.label()));
                        arms.push(Arm::Get(q));
                    }
                    arm_cases.push(case);
                }
                SelectKind::Put { target, value } => {
                    let t = self.eval(target, frame)?;
                    let v = self.eval(value, frame)?;
                    if let Value::Handle(Handle::Remote(r)) = &t {
                        labels.push(format!("put {}", r.label));
                        remote_arms.push((r.clone(), Some(v)));
                    } else {
                        let q = select_queue(&t, target.span, Direction::Put)?;
                        labels.push(format!("put {}", q.label()));
                        arms.push(Arm::Put(q, v));
                    }
                    arm_cases.push(case);
                }
                SelectKind::Timeout { seconds } => {
                    if timeout_case.is_none() {
                        let d = self.deadline(Some(seconds), frame)?;
                        timeout_case = Some((case, d));
                    }
                }
            }
        }
        let deadline = timeout_case.and_then(|(_, d)| d);
        let on = BlockOn::new(
            format!("select over {}", labels.join(", ")),
            Some(span),
            deadline,
        );
        let chosen = match (arms.is_empty(), remote_arms.is_empty()) {
            (_, true) => queues::select(&self.ctx, &self.thread, &mut arms, &on),
            (true, false) => self.remote_select(remote_arms, &on),
            (false, false) => Err(super::remote::mixed_select()),
        }
        .map_err(|e| Box::new(e.at(span)))?;
        match chosen {
            Some((i, got)) => {
                let case = arm_cases[i];
                if let (
                    SelectKind::Get {
                        name: Some(decl), ..
                    },
                    Some(v),
                ) = (&case.kind, got)
                {
                    self.declare(decl, v, frame);
                }
                self.exec_body(&case.body.stmts, frame)
            }
            None => match timeout_case {
                Some((case, _)) => self.exec_body(&case.body.stmts, frame),
                None => Ok(Flow::Normal),
            },
        }
    }

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
                _ => Err(super::methods::no_method(&Value::Handle(h.clone()), name)),
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
            _ => Err(super::methods::no_method(
                &Value::Handle(Handle::Lock(l.clone())),
                name,
            )),
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
            _ => Err(super::methods::no_method(
                &Value::Handle(Handle::Event(e.clone())),
                name,
            )),
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
            _ => Err(super::methods::no_method(
                &Value::Handle(Handle::Condition(c.clone())),
                name,
            )),
        }
    }

    fn pool_method(&mut self, p: &Arc<Pool>, name: &str, args: Vec<Value>, span: Span) -> R<Value> {
        match name {
            "map" => {
                arity(name, &args, 2, 2).map_err(|e| Box::new(e.at(span)))?;
                let items =
                    super::exec::iteration_items(&args[1]).map_err(|e| Box::new(e.at(span)))?;
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
                super::methods::no_method(&Value::Handle(Handle::Pool(p.clone())), name).at(span),
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
                super::methods::no_method(&Value::Handle(Handle::Future(f.clone())), name).at(span),
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
        _ => Err(super::methods::no_method(
            &Value::Handle(Handle::Thread(t.clone())),
            name,
        )),
    }
}

fn queue_method(q: &Arc<Queue>, name: &str, args: &[Value]) -> Res {
    arity(name, args, 0, 0)?;
    match name {
        "size" | "qsize" => Ok(Value::Int(q.size() as i64)),
        "empty" => Ok(Value::Bool(q.size() == 0)),
        "full" => Ok(Value::Bool(q.is_full())),
        _ => Err(super::methods::no_method(
            &Value::Handle(Handle::Queue(q.clone())),
            name,
        )),
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
        _ => Err(super::methods::no_method(
            &Value::Handle(Handle::Timer(t.clone())),
            name,
        )),
    }
}

/// What a `lock X { }` statement holds while its block runs.
pub(super) enum HeldLock {
    Local(Arc<Lock>),
    Remote(Arc<crate::runtime::process::Remote>),
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

fn function_name(f: &Value) -> String {
    match f {
        Value::Func(c) => c
            .decl
            .name
            .as_ref()
            .map_or("thread".to_string(), |n| n.name.to_string()),
        Value::Builtin(b) => b.name.to_string(),
        _ => "thread".to_string(),
    }
}
