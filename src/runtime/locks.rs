//! `lock()`, `rlock()` and `semaphore(n)`.
//!
//! A lock is an owner word plus a wait queue, not a guard: it can be held
//! across statements (`m.acquire()` ... `m.release()`) and released by the
//! `lock m { }` statement on every way out of the block.
//!
//! Locks and rlocks keep their owner in one atomic word, so taking a free
//! lock and releasing one nobody waits for are a single compare-and-swap
//! each. A thread that has to wait sets `PARKED` in the word (under the
//! state mutex) before it registers its wait and parks, so the release that
//! could free it always takes the slow path and wakes it through the
//! registry: deadlock detection sees every wait as before, and follows the
//! same word to find lock cycles. Semaphores (many holders) use the state
//! mutex throughout.
//!
//! A lock's words live in the process's arena (`arena.rs`), which its
//! child processes map too: a child's thread takes a free plain lock by
//! writing its stand-in's id into the word (`process/proxy.rs`), and frees
//! it the same way unless a flag is set; anything else is a request to
//! this process, served by the stand-in with the code below. So every
//! waiter still waits here, where deadlocks are seen.

use super::arena::Words;
use super::engine::{Backoff, Op, Spin, Time};
use super::object::{call_method, names, Cx, Members, Method, Object, Reply, Res};
use super::threads::Held;
use super::value::Value;
use super::waits::{block_until, BlockOn, WaitQueue};
use super::{Context, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::span::{SourceId, Span};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Set in a lock's word while some thread waits in its queue.
const PARKED: u64 = 1 << 63;
/// Set while a woken waiter is on its way to try again: releases meanwhile
/// wake nobody else (a barging owner would only send them back to sleep).
const WOKEN: u64 = 1 << 62;
/// Set from the death of a holder (a process) until the next acquirer has
/// been told: a child's quick take, which expects a zero word, leaves it
/// to this process.
const DIED: u64 = 1 << 61;
/// Any of them: a word with one set is only changed by this process.
pub const FLAGS: u64 = PARKED | WOKEN | DIED;

/// The owning thread's id in a lock word (0 = free).
pub fn owner_of(word: u64) -> u64 {
    word & !FLAGS
}

/// A contended acquire first spins (2, 4, 8 pauses), then yields a few
/// times, and only then parks: locks are mostly held for a few statements,
/// and parking costs a system call on both sides.
const BACKOFF: Backoff = Backoff {
    spins: 3,
    yields: 7,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Plain,
    Reentrant,
    Semaphore,
}

struct LockState {
    /// Semaphore: the number of free permits.
    permits: u64,
    waiters: WaitQueue,
    /// Its holder was a process that died: the next acquirer is told once.
    dead_owner: Option<String>,
    /// The waiter woken last, while `WOKEN` is set in the word.
    woken: Option<u64>,
}

pub struct Lock {
    pub id: u64,
    pub kind: LockKind,
    state: Mutex<LockState>,
    /// Word 0: lock/rlock owner thread id | flags; words 1 and 2: where
    /// the owner took it, for reports (`pack_span`). Shared with
    /// `BlockOn::owner`, and with child processes.
    words: Arc<Words>,
    /// Rlock recursion depth; only the owner touches it.
    depth: AtomicU64,
    /// `dead_owner` is set: checked after every take, without the mutex.
    owner_died: AtomicBool,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.label())
    }
}

/// Record where a lock whose words these are was taken.
pub fn note_taken(words: &Words, at: Option<Span>) {
    let (a, b) = pack_span(at);
    words.get(1).store(a, Ordering::Relaxed);
    words.get(2).store(b, Ordering::Relaxed);
}

fn pack_span(at: Option<Span>) -> (u64, u64) {
    match at {
        Some(s) => (
            (u64::from(s.src.0) << 32) | u64::from(s.start),
            (1 << 32) | u64::from(s.end),
        ),
        None => (0, 0),
    }
}

fn unpack_span(a: u64, b: u64) -> Option<Span> {
    (b >> 32 == 1).then_some(Span {
        src: SourceId((a >> 32) as u32),
        start: a as u32,
        end: b as u32,
    })
}

impl Lock {
    pub fn new(ctx: &Context, kind: LockKind, permits: u64) -> Arc<Lock> {
        let lock = Arc::new(Lock {
            id: ctx.registry.next_object_id(),
            kind,
            state: Mutex::new(LockState {
                permits: if kind == LockKind::Semaphore {
                    permits
                } else {
                    0
                },
                waiters: WaitQueue::default(),
                dead_owner: None,
                woken: None,
            }),
            words: Arc::new(Words::new(if kind == LockKind::Semaphore {
                None
            } else {
                ctx.arena()
            })),
            depth: AtomicU64::new(0),
            owner_died: AtomicBool::new(false),
        });
        if kind != LockKind::Semaphore {
            ctx.registry.track_lock(&lock);
        }
        lock
    }

    /// What a report says `thread` holds here, if it owns this lock.
    pub fn holding(&self, thread: u64) -> Option<Held> {
        (self.owner() == thread).then(|| Held {
            kind: self.type_name(),
            id: self.id,
            span: unpack_span(
                self.words.get(1).load(Ordering::Relaxed),
                self.words.get(2).load(Ordering::Relaxed),
            ),
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

    #[inline]
    fn word(&self) -> &AtomicU64 {
        self.words.get(0)
    }

    /// Its words in this process's arena, for a child to use: plain locks
    /// only (an rlock's depth and a semaphore's permits stay here).
    pub fn shared_block(&self) -> Option<u32> {
        (self.kind == LockKind::Plain)
            .then(|| self.words.block())
            .flatten()
    }

    /// The owning thread (0 = free; always 0 for a semaphore).
    fn owner(&self) -> u64 {
        owner_of(self.word().load(Ordering::Acquire))
    }

    /// Lock/rlock: take it if it is free (or already ours, for an rlock).
    #[inline]
    fn try_take(&self, me: u64) -> bool {
        let mut seen = 0;
        loop {
            if owner_of(seen) != 0 {
                if self.kind == LockKind::Reentrant && owner_of(seen) == me {
                    let depth = self.depth.load(Ordering::Relaxed);
                    self.depth.store(depth + 1, Ordering::Relaxed);
                    return true;
                }
                return false;
            }
            match self.word().compare_exchange_weak(
                seen,
                me | (seen & FLAGS),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.depth.store(1, Ordering::Relaxed);
                    return true;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// Spin, then yield, while the holder is likely to let go soon; give
    /// up at once when others are already parked (join them in the queue).
    fn spin_then_take(&self, ctx: &Context, me: u64) -> bool {
        ctx.engine().spin(BACKOFF, || {
            let word = self.word().load(Ordering::Relaxed);
            if word & PARKED != 0 {
                Spin::Stop
            } else if owner_of(word) == 0 && self.try_take(me) {
                Spin::Done
            } else {
                Spin::Again
            }
        })
    }

    /// Under the state mutex: take the lock, or flag that a waiter is about
    /// to park (so the owner's release comes here to wake it).
    fn take_or_flag(&self, s: &mut LockState, me: u64) -> bool {
        // The woken waiter is here: the next release may wake another.
        let woken = if s.woken == Some(me) {
            s.woken = None;
            0
        } else {
            WOKEN
        };
        let mut seen = self.word().load(Ordering::Relaxed);
        loop {
            let (next, taken) = if owner_of(seen) == 0 {
                let others = if s.waiters.is_empty() { 0 } else { PARKED };
                (me | others | (seen & woken) | (seen & DIED), true)
            } else {
                ((seen & !WOKEN) | (seen & woken) | PARKED, false)
            };
            match self.word().compare_exchange_weak(
                seen,
                next,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if taken {
                        self.depth.store(1, Ordering::Relaxed);
                    }
                    return taken;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// Semaphore: take a permit if there is one.
    fn take_permit(s: &mut LockState) -> bool {
        if s.permits == 0 {
            return false;
        }
        s.permits -= 1;
        true
    }

    /// Semaphore: a permit comes back; the oldest waiter may take it.
    fn give_permit(s: &mut LockState, ctx: &Context) {
        s.permits += 1;
        s.waiters.wake_one(&ctx.registry);
    }

    /// Acquire; `Ok(false)` when the deadline passed first. `at` is where
    /// (for reports); `describe` is only called if the thread must block.
    #[inline]
    pub fn acquire(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        deadline: Option<Time>,
        at: Option<Span>,
        describe: impl FnOnce() -> BlockOn,
    ) -> Result<bool, RuntimeError> {
        ctx.engine().point_on(me, Op::Acquire, self.id, at);
        if self.kind == LockKind::Semaphore {
            return self.acquire_permit(ctx, me, deadline, at, describe);
        }
        if !self.try_take(me.id) && !self.acquire_contended(ctx, me, deadline, describe)? {
            return Ok(false);
        }
        if self.owner_died.load(Ordering::Acquire) {
            self.check_dead_owner(ctx, me)?;
        }
        if self.depth.load(Ordering::Relaxed) == 1 {
            note_taken(&self.words, at);
        }
        Ok(true)
    }

    #[inline(never)]
    fn acquire_contended(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        deadline: Option<Time>,
        describe: impl FnOnce() -> BlockOn,
    ) -> Result<bool, RuntimeError> {
        // A zero timeout (a try) never waits, not even briefly.
        if ctx.engine().passed(deadline) {
            return Ok(false);
        }
        if self.spin_then_take(ctx, me.id) {
            return Ok(true);
        }
        let on = BlockOn {
            deadline,
            owner: Some(self.words.clone()),
            ..describe()
        };
        let mut s = self.state.lock();
        let taken = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| self.take_or_flag(s, me.id).then_some(()),
        )?;
        Ok(taken.is_some())
    }

    fn acquire_permit(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        deadline: Option<Time>,
        at: Option<Span>,
        describe: impl FnOnce() -> BlockOn,
    ) -> Result<bool, RuntimeError> {
        let mut s = self.state.lock();
        if !Self::take_permit(&mut s) {
            if ctx.engine().passed(deadline) {
                return Ok(false);
            }
            let on = BlockOn {
                deadline,
                ..describe()
            };
            let taken = block_until(
                &ctx.registry,
                me,
                &mut s,
                &on,
                |s| &mut s.waiters,
                |s| Self::take_permit(s).then_some(()),
            )?;
            if taken.is_none() {
                return Ok(false);
            }
        }
        if let Some(who) = s.dead_owner.take() {
            self.owner_died.store(false, Ordering::Relaxed);
            Self::give_permit(&mut s, ctx);
            return Err(self.owner_died(&who));
        }
        drop(s);
        me.add_held(Held {
            kind: self.type_name(),
            id: self.id,
            span: at,
        });
        Ok(true)
    }

    /// Just taken a lock whose last holder died holding it: tell this
    /// acquirer (once) and give the lock back.
    #[cold]
    fn check_dead_owner(&self, ctx: &Context, me: &ThreadRef) -> Result<(), RuntimeError> {
        let who = {
            let mut s = self.state.lock();
            self.owner_died.store(false, Ordering::Relaxed);
            self.word().fetch_and(!DIED, Ordering::AcqRel);
            s.dead_owner.take()
        };
        match who {
            Some(who) => {
                self.depth.store(0, Ordering::Relaxed);
                self.let_go(ctx, me.id);
                Err(self.owner_died(&who))
            }
            None => Ok(()),
        }
    }

    #[inline]
    pub fn release(&self, ctx: &Context, me: &ThreadRef) -> Result<(), RuntimeError> {
        ctx.engine().point_on(me, Op::Release, self.id, None);
        if self.kind == LockKind::Semaphore {
            Self::give_permit(&mut self.state.lock(), ctx);
            me.remove_held(self.id);
            return Ok(());
        }
        if self.owner() != me.id {
            return Err(self.not_held(me));
        }
        let depth = self.depth.load(Ordering::Relaxed);
        if depth > 1 {
            self.depth.store(depth - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.depth.store(0, Ordering::Relaxed);
        self.let_go(ctx, me.id);
        Ok(())
    }

    /// The owner `me` frees the lock: one CAS, unless someone is parked and
    /// nobody is on the way to take it (then wake a waiter).
    #[inline]
    fn let_go(&self, ctx: &Context, me: u64) {
        let mut seen = me;
        loop {
            let next = if seen & WOKEN != 0 {
                // The woken waiter will try again anyway: just free it.
                seen & (PARKED | WOKEN)
            } else if seen & PARKED == 0 {
                0
            } else {
                return self.free_and_wake(&mut self.state.lock(), ctx, 0);
            };
            match self
                .word()
                .compare_exchange(seen, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => seen = now,
            }
        }
    }

    /// Free the lock (with the flags `extra`) and wake the oldest waiter
    /// (it takes the lock unless another thread gets there first, and then
    /// waits again), unless a woken one is still on its way.
    #[cold]
    fn free_and_wake(&self, s: &mut LockState, ctx: &Context, extra: u64) {
        if s.woken.is_some() {
            let bits = self.word().load(Ordering::Relaxed) & (PARKED | WOKEN);
            self.word().store(bits | extra, Ordering::Release);
            return;
        }
        let others = if s.waiters.len() > 1 { PARKED } else { 0 };
        match s.waiters.wake_one_id(&ctx.registry) {
            Some(id) => {
                s.woken = Some(id);
                self.word().store(others | WOKEN | extra, Ordering::Release);
            }
            None => self.word().store(extra, Ordering::Release),
        }
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
        let semaphore = self.kind == LockKind::Semaphore;
        if !semaphore && self.owner() != holder.id {
            return;
        }
        s.dead_owner = Some(who.to_string());
        // Before the lock is free: whoever takes it next must see this.
        self.owner_died.store(true, Ordering::Release);
        if semaphore {
            Self::give_permit(&mut s, ctx);
        } else {
            self.depth.store(0, Ordering::Relaxed);
            self.free_and_wake(&mut s, ctx, DIED);
        }
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
        if self.kind == LockKind::Semaphore || self.owner() != me.id {
            return Err(self.not_held(me));
        }
        let depth = self.depth.swap(0, Ordering::Relaxed);
        self.let_go(ctx, me.id);
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
        self.depth.store(depth.max(1), Ordering::Relaxed);
        Ok(())
    }

    pub fn held_by(&self, me: &ThreadRef) -> bool {
        self.kind != LockKind::Semaphore && self.owner() == me.id
    }

    pub fn locked(&self) -> bool {
        match self.kind {
            LockKind::Semaphore => self.state.lock().permits == 0,
            _ => self.owner() != 0,
        }
    }

    pub fn describe(&self) -> String {
        match self.kind {
            LockKind::Semaphore => format!(
                "<semaphore #{} {} free>",
                self.id,
                self.state.lock().permits
            ),
            _ if self.owner() == 0 => format!("<{} #{} unlocked>", self.type_name(), self.id),
            _ => format!("<{} #{} locked>", self.type_name(), self.id),
        }
    }
}

/// `m.acquire([timeout])`: true once taken, false on timeout.
fn acquire_method(l: &Lock, cx: &Cx, args: Vec<Value>) -> Res<Reply> {
    let deadline = cx.deadline("acquire()", args.first())?;
    let describe = || cx.block_on(l.label(), deadline);
    let taken = l.acquire(cx.ctx, cx.me, deadline, Some(cx.at), describe)?;
    Ok(Value::Bool(taken).into())
}

fn release_method(l: &Lock, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    l.release(cx.ctx, cx.me)?;
    Ok(Value::Nil.into())
}

fn locked_method(l: &Lock, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, l.id);
    Ok(Value::Bool(l.locked()).into())
}

/// The methods of a lock, an rlock and a semaphore (a condition has them
/// too, for its lock).
pub static METHODS: &[Method<Lock>] = &[
    Method {
        name: "acquire",
        args: (0, 1),
        call: acquire_method,
    },
    Method {
        name: "release",
        args: (0, 0),
        call: release_method,
    },
    Method {
        name: "locked",
        args: (0, 0),
        call: locked_method,
    },
];

impl Object for Lock {
    fn kind(&self) -> &'static str {
        self.type_name()
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        Lock::describe(self)
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(METHODS),
            fields: &[],
        }
    }

    fn acquire(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<bool>> {
        let describe = || cx.block_on(self.label(), deadline);
        Some(Lock::acquire(
            self,
            cx.ctx,
            cx.me,
            deadline,
            Some(cx.at),
            describe,
        ))
    }

    fn release(&self, cx: &Cx, _held: bool) -> Option<Res<()>> {
        Some(Lock::release(self, cx.ctx, cx.me))
    }
}
