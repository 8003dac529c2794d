//! `event()`, `condition(m)` and `barrier(n)`: things a thread `wait`s on.

use super::locks::{Lock, LockKind};
use super::waits::{block_until, BlockOn, ThreadId, WaitQueue};
use super::{next_object_id, Context, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;

struct EventState {
    set: bool,
    waiters: WaitQueue,
}

pub struct Event {
    pub id: u64,
    state: Mutex<EventState>,
}

impl Event {
    pub fn new() -> Arc<Event> {
        Arc::new(Event {
            id: next_object_id(),
            state: Mutex::new(EventState {
                set: false,
                waiters: WaitQueue::default(),
            }),
        })
    }

    pub fn label(&self) -> String {
        format!("event#{}", self.id)
    }

    /// `wait e [timeout t]`: true once set, false on timeout.
    pub fn wait(&self, ctx: &Context, me: &ThreadRef, on: BlockOn) -> Result<bool, RuntimeError> {
        let mut s = self.state.lock();
        let done = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| s.set.then_some(()),
        )?;
        Ok(done.is_some())
    }

    pub fn set(&self, ctx: &Context) {
        let mut s = self.state.lock();
        s.set = true;
        s.waiters.wake_all(&ctx.registry);
    }

    pub fn clear(&self) {
        self.state.lock().set = false;
    }

    pub fn is_set(&self) -> bool {
        self.state.lock().set
    }
}

struct ConditionState {
    /// Threads inside `wait c`, oldest first; `notify` moves them to `notified`.
    pending: Vec<ThreadId>,
    notified: HashSet<ThreadId>,
    waiters: WaitQueue,
}

pub struct Condition {
    pub id: u64,
    pub lock: Arc<Lock>,
    state: Mutex<ConditionState>,
}

impl Condition {
    pub fn new(lock: Option<Arc<Lock>>) -> Result<Arc<Condition>, RuntimeError> {
        let lock = lock.unwrap_or_else(|| Lock::new(LockKind::Reentrant, 0));
        if lock.kind == LockKind::Semaphore {
            return Err(RuntimeError::new(
                kind::TYPE,
                "condition() needs a lock or rlock, not a semaphore",
            ));
        }
        Ok(Arc::new(Condition {
            id: next_object_id(),
            lock,
            state: Mutex::new(ConditionState {
                pending: Vec::new(),
                notified: HashSet::new(),
                waiters: WaitQueue::default(),
            }),
        }))
    }

    pub fn label(&self) -> String {
        format!("condition#{}", self.id)
    }

    /// `wait c`: release the lock, wait for a notify, take the lock back.
    /// Gives false if the timeout passed first.
    pub fn wait(&self, ctx: &Context, me: &ThreadRef, on: BlockOn) -> Result<bool, RuntimeError> {
        if !self.lock.held_by(me) {
            return Err(RuntimeError::new(
                kind::LOCK,
                format!("wait on {} without holding its lock", self.label()),
            )
            .with_help("wait inside `lock m { ... }` where m is the condition's lock"));
        }
        self.state.lock().pending.push(me.id);
        let depth = self.lock.release_all(ctx, me)?;
        let mut s = self.state.lock();
        let waited = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| s.notified.remove(&me.id).then_some(()),
        );
        s.pending.retain(|id| *id != me.id);
        drop(s);
        let relock = BlockOn::new(
            format!(
                "{} to re-acquire the lock after a condition wait",
                self.lock.label()
            ),
            on.span,
            None,
        );
        self.lock.reacquire(ctx, me, depth, relock)?;
        Ok(waited?.is_some())
    }

    /// Wake up to `n` waiters (all when `None`). The caller must hold the lock.
    pub fn notify(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        n: Option<usize>,
    ) -> Result<(), RuntimeError> {
        if !self.lock.held_by(me) {
            return Err(RuntimeError::new(
                kind::LOCK,
                format!("notify on {} without holding its lock", self.label()),
            ));
        }
        let mut s = self.state.lock();
        let count = n.unwrap_or(s.pending.len()).min(s.pending.len());
        let chosen: Vec<ThreadId> = s.pending.drain(..count).collect();
        s.notified.extend(chosen);
        s.waiters.wake_all(&ctx.registry);
        Ok(())
    }
}

struct BarrierState {
    arrived: usize,
    generation: u64,
    waiters: WaitQueue,
}

pub struct Barrier {
    pub id: u64,
    pub parties: usize,
    state: Mutex<BarrierState>,
}

impl Barrier {
    pub fn new(parties: usize) -> Arc<Barrier> {
        Arc::new(Barrier {
            id: next_object_id(),
            parties,
            state: Mutex::new(BarrierState {
                arrived: 0,
                generation: 0,
                waiters: WaitQueue::default(),
            }),
        })
    }

    pub fn label(&self) -> String {
        format!("barrier#{}", self.id)
    }

    /// `wait b`: the arrival index (0 for the first); `None` on timeout, in
    /// which case this thread's arrival is withdrawn.
    pub fn wait(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        on: BlockOn,
    ) -> Result<Option<usize>, RuntimeError> {
        let mut s = self.state.lock();
        let index = s.arrived;
        s.arrived += 1;
        if s.arrived == self.parties {
            s.arrived = 0;
            s.generation += 1;
            s.waiters.wake_all(&ctx.registry);
            return Ok(Some(index));
        }
        let generation = s.generation;
        let done = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| (s.generation != generation).then_some(()),
        );
        if !matches!(done, Ok(Some(()))) && s.generation == generation {
            s.arrived -= 1;
        }
        Ok(done?.map(|_| index))
    }

    pub fn waiting(&self) -> usize {
        self.state.lock().arrived
    }
}
