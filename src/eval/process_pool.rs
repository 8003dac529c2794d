//! `process_pool(n [, hosts])`: the pool of `thread_pool` (submit, map,
//! then, shutdown), but each of its n worker threads hands its jobs to a
//! child process of its own, which runs them one at a time. With hosts (one
//! host or a list), the children run there, dealt out in turn.
//!
//! A worker and its child talk through two queues the worker owns: jobs go
//! out as `[callee, args, span]` (copied, like any process argument), results come
//! back as `["ok", value]` or `["err", error]`. If the child dies during a
//! job, the job fails with a ProcessError and the worker starts a new child.
//! The worker waits for a result without a timeout: the child's death puts
//! `nil` into the results queue, so a job stuck on the parent's objects is
//! a deadlock the registry can see.

use super::builtins::{arity, Builtin};
use super::value::Value;
use super::Interp;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::pools::{Job, Pool};
use crate::runtime::process::ssh::Host;
use crate::runtime::process::wire::Op;
use crate::runtime::process::{self, codec};
use crate::runtime::queues::{Order, Queue};
use crate::runtime::value::args::positive;
use crate::runtime::waits::BlockOn;
use crate::runtime::{threads, Handle, ThreadHandle};
use crate::span::Span;
use std::sync::Arc;

type Res = Result<Value, RuntimeError>;

pub fn new_process_pool(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("process_pool", &args, 0, 2)?;
    let hosts = match args.get(1) {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::List(l)) => {
            let hosts = l
                .lock()
                .iter()
                .map(Host::from_value)
                .collect::<Result<Vec<_>, _>>()?;
            if hosts.is_empty() {
                return Err(RuntimeError::new(
                    kind::VALUE,
                    "process_pool(n, hosts) needs at least one host",
                ));
            }
            hosts
        }
        Some(one) => vec![Host::from_value(one)?],
    };
    let size = positive(
        "process_pool",
        args.first(),
        it.ctx.engine().cpu_count() as i64,
        1,
    )?;
    let most = max_process_pool(it);
    if size > most {
        return Err(RuntimeError::new(
            kind::VALUE,
            format!(
                "process_pool({}) is too many processes: at most {} here \
                 (the larger of {} and 4 x cpu_count())",
                size, most, MIN_MAX_PROCESSES
            ),
        )
        .with_help(
            "more processes than cores rarely speeds up work; for many jobs that mostly \
             wait, use a thread_pool",
        ));
    }
    let pool = Pool::new(&it.ctx, size as usize, "process-pool");
    for n in 1..=size {
        let host = (!hosts.is_empty()).then(|| hosts[(n as usize - 1) % hosts.len()].clone());
        if let Err(e) = start_worker(it, &pool, n, host) {
            // The workers already started stop (and stop their children).
            let _ = pool.shutdown(&it.ctx, &it.thread, None);
            return Err(e);
        }
    }
    it.ctx.pools.lock().push(Arc::downgrade(&pool));
    Ok(Value::Handle(Handle::Pool(pool)))
}

/// A process pool starts all its processes at once: an absurd size would
/// start thousands (and run into the OS's process and thread limits).
const MIN_MAX_PROCESSES: i64 = 256;

fn max_process_pool(it: &Interp) -> i64 {
    MIN_MAX_PROCESSES.max(4 * it.ctx.engine().cpu_count() as i64)
}

struct Worker {
    jobs: Arc<Queue>,
    results: Arc<Queue>,
    child: Arc<ThreadHandle>,
    /// Where its child runs (a replacement too).
    host: Option<Host>,
}

fn start_worker(
    it: &Interp,
    pool: &Arc<Pool>,
    n: i64,
    host: Option<Host>,
) -> Result<(), RuntimeError> {
    let name = format!("{}-worker-{}", pool.label(), n);
    let mut worker = spawn_child(it, &name, host)?;
    let (ctx, pool2) = (it.ctx.clone(), pool.clone());
    let body = Box::new(move |record| {
        let mut interp = Interp::new(ctx.clone(), record);
        while let Some(job) = pool2.next_job(&ctx, &interp.thread)? {
            let result = interp.run_in_child(&mut worker, &name, &job);
            for callback in job.future.complete(&ctx, result.clone()) {
                interp.run_callback(&callback, &result);
            }
            pool2.job_done(&ctx);
        }
        // Shut down: tell the child to stop, and wait for it.
        let _ = worker.jobs.put(&ctx, &interp.thread, Value::Nil, None, || {
            BlockOn::new("room for the stop signal", None, None)
        });
        let _ = worker
            .child
            .join(&ctx, &interp.thread, None, Span::default());
        Ok(Value::Nil)
    });
    threads::spawn(&it.ctx, format!("{}-thread", pool.label()), true, body)?;
    Ok(())
}

fn spawn_child(it: &Interp, name: &str, host: Option<Host>) -> Result<Worker, RuntimeError> {
    let jobs = Queue::new(&it.ctx, Order::Fifo, None);
    let results = Queue::new(&it.ctx, Order::Fifo, None);
    let args = [
        Value::Handle(Handle::Queue(jobs.clone())),
        Value::Handle(Handle::Queue(results.clone())),
    ];
    let child = process::spawn(
        &it.ctx,
        name.to_string(),
        false,
        &Value::Builtin(&POOL_WORKER),
        &args,
        Span::default(),
        host.clone(),
    )?;
    // Results are always lists: `nil` says the child is gone.
    if let Some(info) = &child.record.process {
        let (ctx, results) = (it.ctx.clone(), results.clone());
        // After any result it sent (the queue is unbounded: this never fails).
        info.on_exit(Box::new(move || {
            results.put_now(&ctx, Value::Nil);
        }));
    }
    Ok(Worker {
        jobs,
        results,
        child,
        host,
    })
}

impl Interp {
    /// Send one job to the worker's child and wait for its result; a dead
    /// child fails the job and is replaced.
    fn run_in_child(
        &mut self,
        w: &mut Worker,
        name: &str,
        job: &Job,
    ) -> Result<Value, RuntimeError> {
        let (ctx, me) = (self.ctx.clone(), self.thread.clone());
        let span = Value::list(vec![
            Value::Int(job.span.src.0 as i64),
            Value::Int(job.span.start as i64),
            Value::Int(job.span.end as i64),
        ]);
        let item = Value::list(vec![
            job.callee.clone(),
            Value::list(job.args.clone()),
            span,
        ]);
        w.jobs.put(&ctx, &me, item, None, || {
            BlockOn::new("room for a job", None, None)
        })?;
        // No timeout: the child's death puts `nil` here (see `spawn_child`),
        // and a job stuck on this process's objects is a deadlock like any other.
        let on = || BlockOn::new(format!("{} to finish a job", name), Some(job.span), None);
        match w.results.get(&ctx, &me, None, on)? {
            Some(Value::Nil) | None => {
                let died = w
                    .child
                    .join(&ctx, &me, None, job.span)
                    .err()
                    .unwrap_or_else(|| RuntimeError::new(kind::PROCESS, "it exited"));
                *w = spawn_child(self, name, w.host.clone())?;
                Err(RuntimeError::new(
                    kind::PROCESS,
                    format!(
                        "the pool's worker process died during this job: {}",
                        died.message
                    ),
                ))
            }
            Some(result) => unpack(result),
        }
    }
}

fn unpack(result: Value) -> Result<Value, RuntimeError> {
    let Value::List(l) = result else {
        return Err(RuntimeError::new(
            kind::PROCESS,
            "a pool worker sent a damaged result",
        ));
    };
    let items = l.lock().clone();
    match items.as_slice() {
        [Value::Str(tag), v] if tag.as_str() == "ok" => Ok(v.clone()),
        [_, Value::Error(e)] => Err((**e).clone()),
        _ => Err(RuntimeError::new(
            kind::PROCESS,
            "a pool worker sent a damaged result",
        )),
    }
}

/// What a pool's child process runs: take jobs until told to stop.
/// Not a global; it reaches children by name only.
pub static POOL_WORKER: Builtin = crate::builtin!("<process pool worker>", pool_worker);

fn pool_worker(it: &mut Interp, args: Vec<Value>) -> Res {
    let [Value::Handle(Handle::Remote(jobs)), Value::Handle(Handle::Remote(results))] =
        args.as_slice()
    else {
        return Err(RuntimeError::new(
            kind::TYPE,
            "the pool worker needs its two queues",
        ));
    };
    let (ctx, me) = (it.ctx.clone(), it.thread.clone());
    loop {
        let on = BlockOn::new("the next job", None, None);
        let outcome = match jobs.call(&ctx, &me, Op::Get { timeout: None }, &on) {
            Ok(got) => match got.into_iter().next() {
                Some(Value::List(job)) => run_job(it, &job.lock().clone()),
                _ => return Ok(Value::Nil),
            },
            // The connection is gone, or the program is over (a deadlock
            // ended it): nothing more to do.
            Err(e) if e.is(kind::PROCESS) || e.ends_the_run() => return Err(e),
            // The job could not be copied here (say, a thread handle in it).
            Err(e) => Err(e),
        };
        let reply = match outcome {
            Ok(v) => vec![Value::str("ok"), v],
            Err(e) => vec![Value::str("err"), Value::Error(Arc::new(e))],
        };
        let item = codec::encode(&results.link, &[Value::list(reply)]).or_else(|e| {
            let failed = Value::list(vec![Value::str("err"), Value::Error(Arc::new(e))]);
            codec::encode(&results.link, &[failed])
        })?;
        let on = BlockOn::new("room for a result", None, None);
        results.call(
            &ctx,
            &me,
            Op::Put {
                item,
                timeout: None,
            },
            &on,
        )?;
    }
}

fn run_job(it: &mut Interp, job: &[Value]) -> Result<Value, RuntimeError> {
    let [callee, Value::List(args), Value::List(span)] = job else {
        return Err(RuntimeError::new(kind::PROCESS, "a damaged job"));
    };
    // Where the job was submitted: its errors are reported from there.
    let span = match span.lock().as_slice() {
        [Value::Int(src), Value::Int(start), Value::Int(end)] => Span::new(
            crate::span::SourceId(*src as u32),
            *start as usize,
            *end as usize,
        ),
        _ => Span::default(),
    };
    let args = args.lock().clone();
    it.call_value(callee, args, span).map_err(|e| *e)
}
