//! `thread_pool(n)`, futures (`submit`), and their completion callbacks.
//! The pool owns the job queue; the worker loop that runs script code lives
//! in the evaluator (`eval::concurrency`), which starts the workers.

use super::engine::{Op, Time};
use super::object::{call_method, names, Cx, Members, Method, Object, Reply, Res};
use super::value::args::{check_callable, iteration_items};
use super::waits::{block_until, BlockOn, WaitQueue};
use super::{Context, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::value::Value;
use crate::span::Span;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

struct FutureState {
    outcome: Option<Result<Value, RuntimeError>>,
    waiters: WaitQueue,
    callbacks: Vec<Value>,
}

pub struct Future {
    pub id: u64,
    state: Mutex<FutureState>,
}

impl Future {
    pub fn new(ctx: &Context) -> Arc<Future> {
        Arc::new(Future {
            id: ctx.registry.next_object_id(),
            state: Mutex::new(FutureState {
                outcome: None,
                waiters: WaitQueue::default(),
                callbacks: Vec::new(),
            }),
        })
    }

    pub fn label(&self) -> String {
        format!("future#{}", self.id)
    }

    pub fn done(&self) -> bool {
        self.state.lock().outcome.is_some()
    }

    /// `join f [timeout t]`: the result, its error, or Timeout.
    pub fn join(&self, ctx: &Context, me: &ThreadRef, on: BlockOn) -> Result<Value, RuntimeError> {
        let mut s = self.state.lock();
        let outcome = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| s.outcome.clone(),
        )?;
        match outcome {
            Some(result) => result,
            None => Err(RuntimeError::new(
                kind::TIMEOUT,
                format!("{} is not done yet", self.label()),
            )),
        }
    }

    /// Store the result; gives the callbacks to run now.
    pub fn complete(&self, ctx: &Context, result: Result<Value, RuntimeError>) -> Vec<Value> {
        let mut s = self.state.lock();
        s.outcome = Some(result);
        s.waiters.wake_all(&ctx.registry);
        std::mem::take(&mut s.callbacks)
    }

    /// Register a callback; if already done, gives the result to call it with now.
    pub fn then(&self, callback: Value) -> Option<Result<Value, RuntimeError>> {
        let mut s = self.state.lock();
        match &s.outcome {
            Some(result) => Some(result.clone()),
            None => {
                s.callbacks.push(callback);
                None
            }
        }
    }

    pub fn outcome(&self) -> Option<Result<Value, RuntimeError>> {
        self.state.lock().outcome.clone()
    }
}

/// A unit of pool work: call `callee(args)` and complete `future`.
pub struct Job {
    pub future: Arc<Future>,
    pub callee: Value,
    pub args: Vec<Value>,
    pub span: Span,
}

struct PoolState {
    jobs: VecDeque<Job>,
    active: usize,
    shutdown: bool,
    workers_waiting: WaitQueue,
    idle_waiters: WaitQueue,
}

pub struct Pool {
    pub id: u64,
    pub size: usize,
    /// "thread-pool" or "process-pool".
    pub kind: &'static str,
    state: Mutex<PoolState>,
}

impl Pool {
    pub fn new(ctx: &Context, size: usize, kind: &'static str) -> Arc<Pool> {
        Arc::new(Pool {
            id: ctx.registry.next_object_id(),
            size,
            kind,
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                active: 0,
                shutdown: false,
                workers_waiting: WaitQueue::default(),
                idle_waiters: WaitQueue::default(),
            }),
        })
    }

    pub fn label(&self) -> String {
        format!("{}#{}", self.kind, self.id)
    }

    pub fn submit(&self, ctx: &Context, job: Job) -> Result<(), RuntimeError> {
        let mut s = self.state.lock();
        if s.shutdown {
            return Err(RuntimeError::new(
                kind::VALUE,
                format!("{} is shut down and takes no more work", self.label()),
            ));
        }
        s.jobs.push_back(job);
        s.workers_waiting.wake_one(&ctx.registry);
        Ok(())
    }

    /// A worker's next job; `None` once the pool is shut down and drained.
    pub fn next_job(&self, ctx: &Context, me: &ThreadRef) -> Result<Option<Job>, RuntimeError> {
        let on = BlockOn::new(format!("work from {}", self.label()), None, None);
        let mut s = self.state.lock();
        let next = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.workers_waiting,
            |s| match s.jobs.pop_front() {
                Some(job) => {
                    s.active += 1;
                    Some(Some(job))
                }
                None if s.shutdown => Some(None),
                None => None,
            },
        )?;
        Ok(next.flatten())
    }

    pub fn job_done(&self, ctx: &Context) {
        let mut s = self.state.lock();
        s.active -= 1;
        if s.jobs.is_empty() && s.active == 0 {
            s.idle_waiters.wake_all(&ctx.registry);
        }
    }

    /// Stop taking work and wait until everything queued has run.
    pub fn shutdown(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        span: Option<Span>,
    ) -> Result<(), RuntimeError> {
        let mut s = self.state.lock();
        s.shutdown = true;
        s.workers_waiting.wake_all(&ctx.registry);
        let on = BlockOn::new(
            format!("{} to finish its queued work", self.label()),
            span,
            None,
        );
        block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.idle_waiters,
            |s| (s.jobs.is_empty() && s.active == 0).then_some(()),
        )?;
        Ok(())
    }

    pub fn describe(&self) -> String {
        let s = self.state.lock();
        format!(
            "<{} #{} size {}, {} running, {} queued>",
            self.kind,
            self.id,
            self.size,
            s.active,
            s.jobs.len()
        )
    }
}

/// `timer(s, f, args...)`: a thread that waits `s` seconds (unless
/// cancelled) and then calls `f(args...)`.
pub struct Timer {
    pub id: u64,
    pub thread: Arc<super::ThreadHandle>,
    pub cancel: Arc<super::signals::Event>,
}

impl Timer {
    pub fn label(&self) -> String {
        format!("timer#{}", self.id)
    }
}

impl Pool {
    /// `submit p, f(args)`: queue the call; its future.
    pub fn submit_call(&self, cx: &Cx, callee: Value, args: Vec<Value>) -> Res<Value> {
        check_callable(&callee)?;
        cx.point(Op::Signal, self.id);
        let future = Future::new(cx.ctx);
        let job = Job {
            future: future.clone(),
            callee,
            args,
            span: cx.at,
        };
        self.submit(cx.ctx, job)?;
        Ok(Value::Handle(super::Handle::Future(future)))
    }
}

/// `p.map(f, xs)`: `f` of every item, in order, each on the pool.
fn map_method(p: &Pool, cx: &Cx, args: Vec<Value>) -> Res<Reply> {
    let items = iteration_items(&args[1])?;
    let futures = items
        .into_iter()
        .map(|item| p.submit_call(cx, args[0].clone(), vec![item]))
        .collect::<Res<Vec<_>>>()?;
    let mut results = Vec::with_capacity(futures.len());
    for f in futures {
        if let Value::Handle(super::Handle::Future(f)) = f {
            let on = BlockOn::new(format!("{} (in map)", f.label()), Some(cx.at), None);
            results.push(f.join(cx.ctx, cx.me, on)?);
        }
    }
    Ok(Value::list(results).into())
}

fn submit_method(p: &Pool, cx: &Cx, args: Vec<Value>) -> Res<Reply> {
    let mut args = args.into_iter();
    let callee = args.next().unwrap_or_default();
    p.submit_call(cx, callee, args.collect()).map(Reply::Value)
}

fn shutdown_method(p: &Pool, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Wait, p.id);
    p.shutdown(cx.ctx, cx.me, Some(cx.at))?;
    Ok(Value::Nil.into())
}

static POOL_METHODS: &[Method<Pool>] = &[
    Method {
        name: "map",
        args: (2, 2),
        call: map_method,
    },
    Method {
        name: "submit",
        args: (0, usize::MAX),
        call: submit_method,
    },
    Method {
        name: "shutdown",
        args: (0, 0),
        call: shutdown_method,
    },
];

impl Object for Pool {
    fn kind(&self) -> &'static str {
        "pool"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn label(&self) -> String {
        Pool::label(self)
    }

    fn describe(&self) -> String {
        Pool::describe(self)
    }

    fn field(&self, _cx: &Cx, name: &str) -> Option<Value> {
        (name == "size").then(|| Value::Int(self.size as i64))
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(POOL_METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(POOL_METHODS),
            fields: &["size"],
        }
    }
}

/// `f.then(cb)`: `cb(result)` once done (now, if it is).
fn then_method(f: &Future, cx: &Cx, args: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Signal, f.id);
    let callback = args.into_iter().next().unwrap_or_default();
    Ok(match f.then(callback.clone()) {
        None => Value::Nil.into(),
        Some(Ok(v)) => Reply::Callback(callback, v),
        Some(Err(e)) => Reply::Callback(callback, Value::Error(Arc::new(e))),
    })
}

fn done_method(f: &Future, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, f.id);
    Ok(Value::Bool(f.done()).into())
}

fn result_method(f: &Future, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Wait, f.id);
    let on = BlockOn::new(f.label(), Some(cx.at), None);
    f.join(cx.ctx, cx.me, on).map(Reply::Value)
}

static FUTURE_METHODS: &[Method<Future>] = &[
    Method {
        name: "then",
        args: (1, 1),
        call: then_method,
    },
    Method {
        name: "done",
        args: (0, 0),
        call: done_method,
    },
    Method {
        name: "result",
        args: (0, 0),
        call: result_method,
    },
];

impl Object for Future {
    fn kind(&self) -> &'static str {
        "future"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        let state = match self.outcome() {
            None => "pending",
            Some(Ok(_)) => "done",
            Some(Err(_)) => "failed",
        };
        format!("<future #{} {}>", self.id, state)
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(FUTURE_METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(FUTURE_METHODS),
            fields: &[],
        }
    }

    fn join(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        cx.point(Op::Wait, self.id);
        let on = cx.block_on(self.label(), deadline);
        Some(Future::join(self, cx.ctx, cx.me, on))
    }
}

fn cancel_method(t: &Timer, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Signal, t.id);
    t.cancel.set(cx.ctx);
    Ok(Value::Nil.into())
}

fn timer_alive_method(t: &Timer, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, t.id);
    Ok(Value::Bool(t.thread.record.alive()).into())
}

static TIMER_METHODS: &[Method<Timer>] = &[
    Method {
        name: "cancel",
        args: (0, 0),
        call: cancel_method,
    },
    Method {
        name: "alive",
        args: (0, 0),
        call: timer_alive_method,
    },
    Method {
        name: "is_alive",
        args: (0, 0),
        call: timer_alive_method,
    },
];

impl Object for Timer {
    fn kind(&self) -> &'static str {
        "timer"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        let state = if self.cancel.is_set() {
            "cancelled"
        } else if self.thread.record.alive() {
            "pending"
        } else {
            "fired"
        };
        format!("<timer #{} {}>", self.id, state)
    }

    fn field(&self, _cx: &Cx, name: &str) -> Option<Value> {
        (name == "name").then(|| Value::str(&self.thread.record.name))
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(TIMER_METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(TIMER_METHODS),
            fields: &["name"],
        }
    }

    fn join(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        Some(self.thread.join(cx.ctx, cx.me, deadline, cx.at))
    }
}
