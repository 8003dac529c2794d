//! Constructors of shared objects and the builtins that need the runtime
//! (`lock()`, `queue()`, `thread_pool()`, `timer()`, `current()`,
//! `threads()`), and the pool workers and callbacks they start.

use super::builtins::{arity, expect_seconds, Builtin};
use super::value::Value;
use super::Interp;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::locks::{Lock, LockKind};
use crate::runtime::pools::{Job, Pool, Timer};
use crate::runtime::queues::{Order, PipeEnd, Queue};
use crate::runtime::signals::{Barrier, Condition, Event};
use crate::runtime::value::args::positive;
use crate::runtime::waits::BlockOn;
use crate::runtime::{threads, Handle, ThreadHandle};
use crate::span::Span;
use std::sync::Arc;

type Res = Result<Value, RuntimeError>;

pub static BUILTINS: &[Builtin] = &[
    crate::builtin!("current", current),
    crate::builtin!("lock", new_lock),
    crate::builtin!("rlock", new_rlock),
    crate::builtin!("semaphore", new_semaphore),
    crate::builtin!("event", new_event),
    crate::builtin!("condition", new_condition),
    crate::builtin!("barrier", new_barrier),
    crate::builtin!("queue", new_queue),
    crate::builtin!("lifo", new_lifo),
    crate::builtin!("priority", new_priority),
    crate::builtin!("pipe", new_pipe),
    crate::builtin!("thread_pool", new_thread_pool),
    crate::builtin!("timer", new_timer),
    crate::builtin!("process_pool", super::process_pool::new_process_pool),
    crate::builtin!("threads", list_threads),
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

fn new_lock(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("lock", &args, 0, 0)?;
    handle(Handle::Lock(Lock::new(&it.ctx, LockKind::Plain, 0)))
}

fn new_rlock(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("rlock", &args, 0, 0)?;
    handle(Handle::Lock(Lock::new(&it.ctx, LockKind::Reentrant, 0)))
}

fn new_semaphore(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("semaphore", &args, 0, 1)?;
    let n = positive("semaphore", args.first(), 1, 0)?;
    handle(Handle::Lock(Lock::new(
        &it.ctx,
        LockKind::Semaphore,
        n as u64,
    )))
}

fn new_event(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("event", &args, 0, 0)?;
    handle(Handle::Event(Event::new(&it.ctx)))
}

fn new_condition(it: &mut Interp, args: Vec<Value>) -> Res {
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
    handle(Handle::Condition(Condition::new(&it.ctx, lock)?))
}

fn new_barrier(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("barrier", &args, 1, 1)?;
    let n = positive("barrier", args.first(), 1, 1)?;
    handle(Handle::Barrier(Barrier::new(&it.ctx, n as usize)))
}

fn make_queue(it: &Interp, name: &str, order: Order, args: &[Value]) -> Res {
    arity(name, args, 0, 1)?;
    let capacity = match args.first() {
        None | Some(Value::Nil) => None,
        Some(v) => match positive(name, Some(v), 0, 0)? {
            0 => None,
            n => Some(n as usize),
        },
    };
    handle(Handle::Queue(Queue::new(&it.ctx, order, capacity)))
}

fn new_queue(it: &mut Interp, args: Vec<Value>) -> Res {
    make_queue(it, "queue", Order::Fifo, &args)
}

fn new_lifo(it: &mut Interp, args: Vec<Value>) -> Res {
    make_queue(it, "lifo", Order::Lifo, &args)
}

fn new_priority(it: &mut Interp, args: Vec<Value>) -> Res {
    make_queue(it, "priority", Order::Priority, &args)
}

fn new_pipe(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("pipe", &args, 0, 0)?;
    let (a, b) = PipeEnd::pair(&it.ctx);
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
    let pool = Pool::new(&it.ctx, size as usize, "thread-pool");
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
    let cancel = Event::new(&it.ctx);
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
    let id = it.ctx.registry.next_object_id();
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

impl Interp {
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
}
