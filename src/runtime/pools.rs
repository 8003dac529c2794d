//! `thread_pool(n)`, futures (`submit`), and their completion callbacks.
//! The pool owns the job queue; the worker loop that runs script code lives
//! in the evaluator (`eval::concurrency`), which starts the workers.

use super::waits::{block_until, BlockOn, WaitQueue};
use super::{next_object_id, Context, ThreadRef};
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
    pub fn new() -> Arc<Future> {
        Arc::new(Future {
            id: next_object_id(),
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
    pub fn new(size: usize, kind: &'static str) -> Arc<Pool> {
        Arc::new(Pool {
            id: next_object_id(),
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
