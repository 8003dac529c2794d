//! `lock()`, `rlock()` and `semaphore(n)`.
//!
//! A lock is an owner record plus a wait queue, not a guard: it can be held
//! across statements (`m.acquire()` ... `m.release()`) and released by the
//! `lock m { }` statement on every way out of the block. The owner is also
//! kept in an atomic so deadlock detection can follow lock cycles.

use super::threads::Held;
use super::waits::{block_until, BlockOn, WaitQueue};
use super::{next_object_id, Context, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::span::Span;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How often a contended acquire yields and retries before it parks.
const RETRIES_BEFORE_PARKING: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Plain,
    Reentrant,
    Semaphore,
}

struct LockState {
    /// Lock/rlock: the owning thread (0 = free) and its recursion count.
    /// Semaphore: `count` is the number of free permits.
    owner: u64,
    count: u64,
    waiters: WaitQueue,
    /// Its holder was a process that died: the next acquirer is told once.
    dead_owner: Option<String>,
}

pub struct Lock {
    pub id: u64,
    pub kind: LockKind,
    state: Mutex<LockState>,
    owner: Arc<AtomicU64>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.label())
    }
}

impl Lock {
    pub fn new(kind: LockKind, permits: u64) -> Arc<Lock> {
        Arc::new(Lock {
            id: next_object_id(),
            kind,
            state: Mutex::new(LockState {
                owner: 0,
                count: if kind == LockKind::Semaphore {
                    permits
                } else {
                    0
                },
                waiters: WaitQueue::default(),
                dead_owner: None,
            }),
            owner: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            LockKind::Plain => "lock",
            LockKind::Reentrant => "rlock",
            LockKind::Semaphore => "semaphore",
        }
    }

    pub fn label(&self) -> String {
        format!("{}#{}", self.type_name(), self.id)
    }

    /// Take the lock if that is possible right now.
    fn try_take(&self, s: &mut LockState, me: u64) -> bool {
        match self.kind {
            LockKind::Semaphore => {
                if s.count == 0 {
                    return false;
                }
                s.count -= 1;
            }
            LockKind::Reentrant if s.owner == me => s.count += 1,
            _ => {
                if s.owner != 0 {
                    return false;
                }
                s.owner = me;
                s.count = 1;
                self.owner.store(me, Ordering::Release);
            }
        }
        true
    }

    /// Locks are mostly held for a few statements: before registering a
    /// wait and parking, let the holder run a moment and try again.
    fn retry_briefly(&self, s: &mut parking_lot::MutexGuard<'_, LockState>, me: u64) -> bool {
        for _ in 0..RETRIES_BEFORE_PARKING {
            parking_lot::MutexGuard::unlocked(s, std::thread::yield_now);
            if self.try_take(s, me) {
                return true;
            }
        }
        false
    }

    /// Acquire; `Ok(false)` when the deadline passed first. `at` is where
    /// (for reports); `describe` is only called if the thread must block.
    pub fn acquire(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        deadline: Option<Instant>,
        at: Option<Span>,
        describe: impl FnOnce() -> BlockOn,
    ) -> Result<bool, RuntimeError> {
        let mut s = self.state.lock();
        // A zero timeout (a try) never waits, not even briefly.
        let may_wait = deadline.is_none_or(|d| super::clock::now() < d);
        let acquired =
            if self.try_take(&mut s, me.id) || (may_wait && self.retry_briefly(&mut s, me.id)) {
                true
            } else {
                let on = BlockOn {
                    deadline,
                    owner: (self.kind != LockKind::Semaphore).then(|| self.owner.clone()),
                    ..describe()
                };
                block_until(
                    &ctx.registry,
                    me,
                    &mut s,
                    &on,
                    |s| &mut s.waiters,
                    |s| self.try_take(s, me.id).then_some(()),
                )?
                .is_some()
            };
        if acquired {
            if let Some(who) = s.dead_owner.take() {
                self.give_back(&mut s, ctx);
                return Err(self.owner_died(&who));
            }
        }
        drop(s);
        if acquired {
            me.add_held(Held {
                kind: self.type_name(),
                id: self.id,
                span: at,
            });
        }
        Ok(acquired)
    }

    pub fn release(&self, ctx: &Context, me: &ThreadRef) -> Result<(), RuntimeError> {
        let mut s = self.state.lock();
        match self.kind {
            LockKind::Semaphore => s.count += 1,
            _ => {
                if s.owner != me.id {
                    return Err(self.not_held(me));
                }
                s.count -= 1;
                if s.count == 0 {
                    self.clear_owner(&mut s);
                }
            }
        }
        s.waiters.wake_one(&ctx.registry);
        drop(s);
        me.remove_held(self.id);
        Ok(())
    }

    /// Nobody holds it now (the atomic copy is what deadlock detection reads).
    fn clear_owner(&self, s: &mut LockState) {
        s.owner = 0;
        s.count = 0;
        self.owner.store(0, Ordering::Release);
    }

    /// Undo a take (the acquirer is told the owner died instead).
    fn give_back(&self, s: &mut LockState, ctx: &Context) {
        match self.kind {
            LockKind::Semaphore => s.count += 1,
            _ => self.clear_owner(s),
        }
        s.waiters.wake_one(&ctx.registry);
    }

    fn owner_died(&self, who: &str) -> RuntimeError {
        RuntimeError::new(
            kind::LOCK,
            format!(
                "{} was held by {}, which died while holding it (owner died)",
                self.label(),
                who
            ),
        )
        .with_help(
            "the lock is free again, but what it protected may be half-updated: \
             check it, then acquire again",
        )
    }

    /// `holder` (the stand-in of a process that died) held this lock:
    /// free it, and tell the next acquirer.
    pub fn release_dead(&self, ctx: &Context, holder: &ThreadRef, who: &str) {
        let mut s = self.state.lock();
        match self.kind {
            LockKind::Semaphore => s.count += 1,
            _ if s.owner == holder.id => self.clear_owner(&mut s),
            _ => return,
        }
        s.dead_owner = Some(who.to_string());
        s.waiters.wake_one(&ctx.registry);
    }

    fn not_held(&self, me: &ThreadRef) -> RuntimeError {
        RuntimeError::new(
            kind::LOCK,
            format!(
                "thread {} released {}, which it does not hold",
                me.name,
                self.label()
            ),
        )
        .with_help("only the thread that acquired a lock can release it")
    }

    /// Give the lock up completely (a condition wait), returning the
    /// recursion depth to restore afterwards.
    pub fn release_all(&self, ctx: &Context, me: &ThreadRef) -> Result<u64, RuntimeError> {
        let mut s = self.state.lock();
        if self.kind == LockKind::Semaphore || s.owner != me.id {
            return Err(self.not_held(me));
        }
        let depth = s.count;
        self.clear_owner(&mut s);
        s.waiters.wake_one(&ctx.registry);
        drop(s);
        me.remove_held(self.id);
        Ok(depth)
    }

    /// Re-take after a condition wait, with the saved recursion depth.
    pub fn reacquire(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        depth: u64,
        on: BlockOn,
    ) -> Result<(), RuntimeError> {
        let at = on.span;
        self.acquire(ctx, me, None, at, || on)?;
        self.state.lock().count = depth.max(1);
        Ok(())
    }

    pub fn held_by(&self, me: &ThreadRef) -> bool {
        self.state.lock().owner == me.id
    }

    pub fn locked(&self) -> bool {
        let s = self.state.lock();
        match self.kind {
            LockKind::Semaphore => s.count == 0,
            _ => s.owner != 0,
        }
    }

    pub fn describe(&self) -> String {
        let s = self.state.lock();
        match self.kind {
            LockKind::Semaphore => format!("<semaphore #{} {} free>", self.id, s.count),
            _ if s.owner == 0 => format!("<{} #{} unlocked>", self.type_name(), self.id),
            _ => format!("<{} #{} locked>", self.type_name(), self.id),
        }
    }
}
