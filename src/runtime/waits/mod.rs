//! The one place every blocking operation goes through.
//!
//! Before a thread blocks it records, in the process's `Registry`, what it
//! waits for, where (span) and until when; a waker marks it woken under the
//! same registry lock before unparking it. So "every live thread is blocked
//! and nothing can wake any of them" is an exact question the registry can
//! answer the moment the last thread blocks, and a lock cycle can be followed
//! through lock owners (`deadlock.rs`). Parking and the clock are the
//! engine's (`runtime::engine`): this loop never touches an OS primitive.

mod deadlock;
mod registry;
mod table;

pub use registry::{DeadlockHandler, DeadlockPolicy, QuietHook, Registry, ThreadInfo};

use super::engine::Time;
use super::threads::{ThreadRecord, ThreadRef};
use crate::diagnostics::RuntimeError;
use crate::span::Span;
use parking_lot::MutexGuard;
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub type ThreadId = u64;

/// What a blocked thread waits for, as shown in reports and `:threads`.
#[derive(Clone)]
pub struct BlockOn {
    pub what: String,
    pub span: Option<Span>,
    pub deadline: Option<Time>,
    /// The word of the lock waited for (`locks::owner_of` gives its owner),
    /// to follow lock cycles.
    pub owner: Option<Arc<crate::runtime::arena::Words>>,
    /// The thread a `join` waits for, to follow cycles of joins (and of
    /// joins and locks): a definite deadlock whatever else runs.
    pub joins: Option<ThreadId>,
    /// Something outside this process's threads can end the wait (a reply
    /// from another process): never part of a deadlock.
    pub external: bool,
    /// For a child process seen from its parent: set while every thread of
    /// the child is blocked on something only this process can end. The
    /// wait counts as stuck only then.
    pub quiet: Option<Arc<AtomicBool>>,
}

impl BlockOn {
    pub fn new(what: impl Into<String>, span: Option<Span>, deadline: Option<Time>) -> Self {
        BlockOn {
            what: what.into(),
            span,
            deadline,
            owner: None,
            joins: None,
            external: false,
            quiet: None,
        }
    }
}

/// The waiting threads of one object, oldest first. Lives inside the
/// object's own state, under the object's mutex.
#[derive(Default)]
pub struct WaitQueue {
    queue: VecDeque<ThreadRef>,
}

impl WaitQueue {
    pub fn enlist(&mut self, thread: ThreadRef) {
        self.queue.push_back(thread);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn leave(&mut self, id: ThreadId) {
        self.queue.retain(|t| t.id != id);
    }

    pub fn wake_one(&mut self, registry: &Registry) -> bool {
        self.wake_one_id(registry).is_some()
    }

    /// Wake the oldest waiter; which one it was.
    pub fn wake_one_id(&mut self, registry: &Registry) -> Option<ThreadId> {
        let t = self.queue.pop_front()?;
        registry.wake(&t);
        Some(t.id)
    }

    pub fn wake_all(&mut self, registry: &Registry) {
        while self.wake_one(registry) {}
    }
}

/// Something a thread can wait on: one object's state under its lock, the
/// arms of a `select`, or nothing at all (`sleep`).
pub trait WaitSite {
    type Done;

    /// Try to complete. If it cannot, leave `me` enlisted wherever a change
    /// that could let it complete will wake it, in the same critical
    /// section as the try, so no change in between is missed.
    fn attempt(&mut self, me: &ThreadRef) -> Option<Self::Done>;

    /// Stop being woken by this site (after a park, or when giving up).
    fn leave(&mut self, me: &ThreadRecord);

    /// Run `park` with every guard this site holds released.
    fn parked(&mut self, park: &mut dyn FnMut()) {
        park()
    }
}

/// Block until the site's attempt succeeds (`Ok(Some)`), the deadline
/// passes (`Ok(None)`), or the thread is interrupted or deadlocked (`Err`).
pub fn block<S: WaitSite>(
    registry: &Registry,
    me: &ThreadRef,
    on: &BlockOn,
    site: &mut S,
) -> Result<Option<S::Done>, RuntimeError> {
    let engine = registry.engine();
    loop {
        // An interrupt comes first: once a deadlock has ended the run, a
        // thread woken by a lock that the unwinding freed must not take it.
        if let Some(err) = me.take_interrupt() {
            site.leave(me);
            return Err(err);
        }
        if let Some(done) = site.attempt(me) {
            return Ok(Some(done));
        }
        if engine.passed(on.deadline) {
            site.leave(me);
            return Ok(None);
        }
        if let Err(e) = registry.begin_wait(me, on) {
            site.leave(me);
            return Err(e);
        }
        site.parked(&mut || engine.park(me, on.deadline));
        // Out of every wait queue before the registry forgets the wait, so
        // no wake can land between the two and count for a later wait.
        site.leave(me);
        registry.end_wait(me);
    }
}

/// One object's state, locked by the caller, with its wait queue and the
/// attempt to make under that lock: the common case of `block`.
struct Guarded<'g, 'm, S, A> {
    guard: &'g mut MutexGuard<'m, S>,
    queue: fn(&mut S) -> &mut WaitQueue,
    attempt: A,
}

impl<S, T, A: FnMut(&mut S) -> Option<T>> WaitSite for Guarded<'_, '_, S, A> {
    type Done = T;

    fn attempt(&mut self, me: &ThreadRef) -> Option<T> {
        let done = (self.attempt)(self.guard);
        if done.is_none() {
            (self.queue)(self.guard).enlist(me.clone());
        }
        done
    }

    fn leave(&mut self, me: &ThreadRecord) {
        (self.queue)(self.guard).leave(me.id);
    }

    fn parked(&mut self, park: &mut dyn FnMut()) {
        MutexGuard::unlocked(self.guard, park)
    }
}

/// Block until `attempt` succeeds on the state behind `guard` (held by the
/// caller, released while parked). Whoever changes the state so that
/// `attempt` may succeed must wake the object's `WaitQueue` under that
/// same lock.
pub fn block_until<S, T>(
    registry: &Registry,
    me: &ThreadRef,
    guard: &mut MutexGuard<'_, S>,
    on: &BlockOn,
    queue: fn(&mut S) -> &mut WaitQueue,
    attempt: impl FnMut(&mut S) -> Option<T>,
) -> Result<Option<T>, RuntimeError> {
    let mut site = Guarded {
        guard,
        queue,
        attempt,
    };
    block(registry, me, on, &mut site)
}

/// Nothing wakes a sleeper but its deadline (or an interrupt).
struct Nothing;

impl WaitSite for Nothing {
    type Done = ();

    fn attempt(&mut self, _: &ThreadRef) -> Option<()> {
        None
    }

    fn leave(&mut self, _: &ThreadRecord) {}
}

/// `sleep`: a timed wait on nothing, interruptible.
pub fn sleep_until(registry: &Registry, me: &ThreadRef, on: &BlockOn) -> Result<(), RuntimeError> {
    if on.deadline.is_none() {
        return Ok(());
    }
    block(registry, me, on, &mut Nothing).map(|_| ())
}
