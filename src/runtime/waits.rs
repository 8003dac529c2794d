//! The one place every blocking operation goes through.
//!
//! Before a thread blocks it records, in the process's `Registry`, what it
//! waits for, where (span) and until when; a waker marks it woken under the
//! same registry lock before unparking it. So "every live thread is blocked
//! and nothing can wake any of them" is an exact question the registry can
//! answer the moment the last thread blocks, and a lock cycle can be followed
//! through lock owners. The same seam is where a deterministic scheduler with
//! virtual time will plug in.

use super::threads::{ThreadRecord, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::span::{SourceMap, Span};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub type ThreadId = u64;

/// A one-permit parking spot for one thread (like `std::thread::park`, but
/// ours, so an interrupt or a deadlock report can wake any blocked thread).
#[derive(Default)]
pub struct Parker {
    permit: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    /// Wait for a permit or the deadline. Callers re-check their condition:
    /// a stale permit may make this return early.
    pub fn park(&self, deadline: Option<Instant>) {
        let mut permit = self.permit.lock();
        while !*permit {
            match deadline {
                Some(d) => {
                    if self.cv.wait_until(&mut permit, d).timed_out() {
                        break;
                    }
                }
                None => self.cv.wait(&mut permit),
            }
        }
        *permit = false;
    }

    pub fn unpark(&self) {
        *self.permit.lock() = true;
        self.cv.notify_one();
    }
}

/// What a blocked thread waits for, as shown in reports and `:threads`.
#[derive(Clone)]
pub struct BlockOn {
    pub what: String,
    pub span: Option<Span>,
    pub deadline: Option<Instant>,
    /// The word of the lock waited for (`locks::owner_of` gives its owner),
    /// to follow lock cycles.
    pub owner: Option<Arc<AtomicU64>>,
    /// Something outside this process's threads can end the wait (a reply
    /// from another process): never part of a deadlock.
    pub external: bool,
    /// For a child process seen from its parent: set while every thread of
    /// the child is blocked on something only this process can end. The
    /// wait counts as stuck only then.
    pub quiet: Option<Arc<AtomicBool>>,
}

impl BlockOn {
    pub fn new(what: impl Into<String>, span: Option<Span>, deadline: Option<Instant>) -> Self {
        BlockOn {
            what: what.into(),
            span,
            deadline,
            owner: None,
            external: false,
            quiet: None,
        }
    }
}

struct Waiting {
    on: BlockOn,
    woken: bool,
}

impl Waiting {
    /// Blocked with nothing but another thread of ours able to wake it.
    fn stuck(&self) -> bool {
        !self.woken
            && self.on.deadline.is_none()
            && !self.on.external
            && self
                .on
                .quiet
                .as_ref()
                .is_none_or(|q| q.load(Ordering::Acquire))
    }

    /// Blocked until another process answers (a call on a shared object).
    fn on_other_process(&self) -> bool {
        !self.woken && self.on.external && self.on.deadline.is_none()
    }

    /// Nothing in this process but another thread or process can end it.
    fn blocked(&self) -> bool {
        self.stuck() || self.on_other_process()
    }
}

struct Entry {
    thread: ThreadRef,
    waiting: Option<Waiting>,
}

/// What to do when a deadlock is found: a script stops the whole program
/// (report, exit 3); the REPL interrupts the threads involved instead.
pub type DeadlockHandler = Box<dyn Fn(&RuntimeError) + Send + Sync>;

/// Told, after the parent asked (`probe`), as soon as this (child) process
/// is quiet: every thread waits and only the parent can wake any of them.
/// Gets what the threads wait for inside the child.
pub type QuietHook = Box<dyn Fn(Vec<String>) + Send + Sync>;

#[derive(Default)]
pub struct Registry {
    threads: Mutex<BTreeMap<ThreadId, Entry>>,
    on_deadlock: Mutex<Option<Arc<DeadlockHandler>>>,
    /// To name held locks as the script wrote them in reports.
    sources: Mutex<SourceMap>,
    quiet_hook: Mutex<Option<Arc<QuietHook>>>,
    /// The parent asked whether we are quiet and has had no answer yet
    /// (only ever set in a child: everyone else skips the check cheaply).
    probed: AtomicBool,
}

/// A snapshot line for `:threads` and reports.
pub struct ThreadInfo {
    pub thread: ThreadRef,
    pub waiting: Option<BlockOn>,
}

impl Registry {
    pub fn set_sources(&self, sources: SourceMap) {
        *self.sources.lock() = sources;
    }

    pub fn set_deadlock_handler(&self, handler: Option<DeadlockHandler>) {
        *self.on_deadlock.lock() = handler.map(Arc::new);
    }

    pub fn set_quiet_hook(&self, hook: QuietHook) {
        *self.quiet_hook.lock() = Some(Arc::new(hook));
    }

    /// The parent's threads are all blocked and it asks whether ours are
    /// too: answer as soon as that is so (maybe now).
    pub fn probe(&self) {
        self.probed.store(true, Ordering::Release);
        let threads = self.threads.lock();
        self.update_quiet(&threads);
    }

    /// Answer a pending probe once this process is quiet. Asking only when
    /// the parent has nothing else to do keeps this off every hot path.
    fn update_quiet(&self, threads: &BTreeMap<ThreadId, Entry>) {
        if !self.probed.load(Ordering::Acquire) {
            return;
        }
        let Some(hook) = self.quiet_hook.lock().clone() else {
            return;
        };
        // Quiet: every thread waits, at least one on the parent (if none
        // does, this is a deadlock of our own, reported here).
        let quiet = threads
            .values()
            .any(|e| e.waiting.as_ref().is_some_and(Waiting::on_other_process))
            && threads
                .values()
                .all(|e| e.waiting.as_ref().is_some_and(Waiting::blocked));
        if !quiet || !self.probed.swap(false, Ordering::AcqRel) {
            return;
        }
        let sources = self.sources.lock();
        let waits = threads
            .values()
            .filter_map(|e| {
                // Waits on the parent's objects show up there, with their
                // stand-ins; only waits inside the child need describing.
                let w = e.waiting.as_ref().filter(|w| w.stuck())?;
                let place = w.on.span.map(|s| sources.location(s)).unwrap_or_default();
                Some(format!(
                    "{} {} waits for {} ({})",
                    e.thread.noun(),
                    e.thread.name,
                    w.on.what,
                    place
                ))
            })
            .collect();
        hook(waits)
    }

    /// Something outside the registry changed whether a wait is stuck (a
    /// child process turned quiet): look for a deadlock now.
    pub fn recheck(&self) {
        let threads = self.threads.lock();
        probe_children(&threads);
        if let Some((ids, message)) = all_stuck(&threads) {
            let report = report(&threads, ids, message, &self.sources.lock());
            self.deadlock(threads, report, None);
        }
    }

    pub fn register(&self, thread: ThreadRef) {
        self.threads.lock().insert(
            thread.id,
            Entry {
                thread,
                waiting: None,
            },
        );
    }

    /// A thread ended: the others may now be stuck for good.
    pub fn unregister(&self, id: ThreadId) {
        let mut threads = self.threads.lock();
        threads.remove(&id);
        self.update_quiet(&threads);
        probe_children(&threads);
        if let Some((ids, message)) = all_stuck(&threads) {
            let report = report(&threads, ids, message, &self.sources.lock());
            self.deadlock(threads, report, None);
        }
    }

    /// What `thread` holds, named as in deadlock reports ("lock#3 (m)").
    pub fn holdings(&self, thread: &ThreadRecord) -> Vec<String> {
        let sources = self.sources.lock();
        thread
            .held_locks()
            .iter()
            .map(|h| describe_held(h, &sources))
            .collect()
    }

    pub fn snapshot(&self) -> Vec<ThreadInfo> {
        self.threads
            .lock()
            .values()
            .map(|e| ThreadInfo {
                thread: e.thread.clone(),
                waiting: e.waiting.as_ref().map(|w| w.on.clone()),
            })
            .collect()
    }

    /// Record that `me` is about to park waiting for `on`; fails with the
    /// deadlock report if that wait can never end.
    pub fn begin_wait(&self, me: &ThreadRecord, on: &BlockOn) -> Result<(), RuntimeError> {
        let mut threads = self.threads.lock();
        if let Some(entry) = threads.get_mut(&me.id) {
            entry.waiting = Some(Waiting {
                on: on.clone(),
                woken: false,
            });
        }
        self.update_quiet(&threads);
        probe_children(&threads);
        if on.deadline.is_some() || on.external {
            return Ok(());
        }
        match lock_cycle(&threads, me.id).or_else(|| all_stuck(&threads)) {
            Some((ids, message)) => {
                let report = report(&threads, ids, message, &self.sources.lock());
                if let Some(entry) = threads.get_mut(&me.id) {
                    entry.waiting = None;
                }
                Err(self.deadlock(threads, report, Some(me.id)))
            }
            None => Ok(()),
        }
    }

    pub fn end_wait(&self, me: &ThreadRecord) {
        let mut threads = self.threads.lock();
        if let Some(entry) = threads.get_mut(&me.id) {
            entry.waiting = None;
        }
        self.update_quiet(&threads);
    }

    /// Mark a blocked thread runnable, then unpark it.
    pub fn wake(&self, thread: &ThreadRecord) {
        let mut threads = self.threads.lock();
        if let Some(Entry {
            waiting: Some(w), ..
        }) = threads.get_mut(&thread.id)
        {
            w.woken = true;
        }
        self.update_quiet(&threads);
        drop(threads);
        thread.parker.unpark();
    }

    /// Ask a thread to stop what it is doing with `err` (Ctrl-C, deadlock).
    pub fn interrupt(&self, thread: &ThreadRecord, err: RuntimeError) {
        thread.set_interrupt(err);
        self.wake(thread);
    }

    /// A deadlock found inside a child process (`from`): a deadlock of the
    /// whole program, handled as if found here.
    pub fn report_deadlock(&self, from: &str, err: RuntimeError, ctx: &super::Context) {
        let handler = self.on_deadlock.lock().clone();
        match handler {
            Some(handler) => handler(&err),
            None => (ctx.reporter)(from, &err),
        }
    }

    /// Hand the report to the handler (which normally ends the process), or
    /// interrupt every thread involved and give the report to the caller.
    fn deadlock(
        &self,
        threads: MutexGuard<'_, BTreeMap<ThreadId, Entry>>,
        report: Report,
        detector: Option<ThreadId>,
    ) -> RuntimeError {
        let err = report.error;
        let victims: Vec<ThreadRef> = report
            .ids
            .iter()
            .filter(|id| Some(**id) != detector)
            .filter_map(|id| threads.get(id).map(|e| e.thread.clone()))
            .collect();
        drop(threads);
        let handler = self.on_deadlock.lock().clone();
        if let Some(handler) = handler {
            handler(&err);
        }
        for v in victims {
            self.interrupt(&v, err.clone());
        }
        err
    }
}

struct Report {
    ids: Vec<ThreadId>,
    error: RuntimeError,
}

/// Every thread is blocked with no timeout and nothing outside can wake it.
/// A deadlock found: the threads involved and what to call it.
type Found = (Vec<ThreadId>, String);

/// If nothing but child processes could still wake anyone here, ask each
/// of those children whether it is quiet (each answers once, when it is).
fn probe_children(threads: &BTreeMap<ThreadId, Entry>) {
    let mut children = Vec::new();
    for e in threads.values() {
        if e.waiting.as_ref().is_some_and(Waiting::blocked) {
            continue;
        }
        match &e.thread.process {
            Some(p) => children.push(p),
            None => return,
        }
    }
    for p in children {
        p.link.probe();
    }
}

fn all_stuck(threads: &BTreeMap<ThreadId, Entry>) -> Option<Found> {
    if threads.is_empty() {
        return None;
    }
    let stuck = threads
        .values()
        .all(|e| e.waiting.as_ref().is_some_and(Waiting::stuck));
    if !stuck {
        return None;
    }
    let ids: Vec<ThreadId> = threads.keys().copied().collect();
    let message = if ids.len() == 1 {
        "the only thread is blocked and nothing can wake it".to_string()
    } else {
        format!(
            "all {} threads are blocked and none of them can wake another",
            ids.len()
        )
    };
    Some((ids, message))
}

/// Follow "waits for a lock owned by" edges from `start`; a path back to it is a cycle.
fn lock_cycle(threads: &BTreeMap<ThreadId, Entry>, start: ThreadId) -> Option<Found> {
    let mut path = vec![start];
    let mut current = start;
    loop {
        let waiting = threads.get(&current)?.waiting.as_ref()?;
        if !waiting.stuck() {
            return None;
        }
        let owner = super::locks::owner_of(waiting.on.owner.as_ref()?.load(Ordering::Acquire));
        if owner == 0 || path.len() > threads.len() {
            return None;
        }
        if owner == start {
            break;
        }
        if path.contains(&owner) {
            return None;
        }
        path.push(owner);
        current = owner;
    }
    let message = if path.len() == 1 {
        "a thread waits for a lock it already holds".to_string()
    } else {
        format!(
            "{} threads wait for each other's locks in a cycle",
            path.len()
        )
    };
    // Name every other stuck thread too (e.g. main joining one of the cycle).
    let others: Vec<ThreadId> = threads
        .iter()
        .filter(|(id, e)| !path.contains(id) && e.waiting.as_ref().is_some_and(Waiting::stuck))
        .map(|(id, _)| *id)
        .collect();
    path.extend(others);
    Some((path, message))
}

/// "lock#3 (forks[i])": the object and the expression that acquired it.
fn describe_held(h: &super::threads::Held, sources: &SourceMap) -> String {
    let text = h.span.and_then(|span| {
        let source = sources.get(span.src)?;
        let line = source.text.get(span.start as usize..span.end as usize)?;
        let name = line
            .trim_start_matches("lock ")
            .split([' ', '{', '.'])
            .next()?
            .to_string();
        (!name.is_empty()).then_some(name)
    });
    match text {
        Some(t) => format!("{}#{} ({})", h.kind, h.id, t),
        None => format!("{}#{}", h.kind, h.id),
    }
}

fn report(
    threads: &BTreeMap<ThreadId, Entry>,
    ids: Vec<ThreadId>,
    message: String,
    sources: &SourceMap,
) -> Report {
    let mut error = RuntimeError::new(kind::DEADLOCK, message).with_help(
        "take locks in one global order, make sure every get has a put, or add a timeout",
    );
    for id in &ids {
        let Some(entry) = threads.get(id) else {
            continue;
        };
        let held: Vec<String> = entry
            .thread
            .held_locks()
            .iter()
            .map(|h| describe_held(h, sources))
            .collect();
        let holds = if held.is_empty() {
            "holds nothing".to_string()
        } else {
            format!("holds {}", held.join(", "))
        };
        let (what, span) = match &entry.waiting {
            Some(w) => (w.on.what.clone(), w.on.span),
            None => ("nothing".to_string(), None),
        };
        let who = if entry.thread.name.starts_with("process ") {
            entry.thread.name.clone()
        } else {
            format!("{} {}", entry.thread.noun(), entry.thread.name)
        };
        error = error.note(format!("{} {}, waits for {}", who, holds, what), span);
    }
    error.span = error.notes.first().and_then(|n| n.span);
    Report { ids, error }
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

/// Block until `attempt` succeeds (`Ok(Some)`), the deadline passes
/// (`Ok(None)`), or the thread is interrupted or deadlocked (`Err`).
///
/// `guard` is the object's state lock, held by the caller; it is released
/// while parked. Whoever changes the state so that `attempt` may succeed must
/// wake the object's `WaitQueue` under that same lock.
pub fn block_until<S, T>(
    registry: &Registry,
    me: &ThreadRef,
    guard: &mut MutexGuard<'_, S>,
    on: &BlockOn,
    queue: fn(&mut S) -> &mut WaitQueue,
    mut attempt: impl FnMut(&mut S) -> Option<T>,
) -> Result<Option<T>, RuntimeError> {
    loop {
        if let Some(done) = attempt(guard) {
            return Ok(Some(done));
        }
        if on.deadline.is_some_and(|d| super::clock::now() >= d) {
            return Ok(None);
        }
        if let Some(err) = me.take_interrupt() {
            return Err(err);
        }
        queue(guard).enlist(me.clone());
        if let Err(e) = registry.begin_wait(me, on) {
            queue(guard).leave(me.id);
            return Err(e);
        }
        MutexGuard::unlocked(guard, || me.parker.park(on.deadline));
        queue(guard).leave(me.id);
        registry.end_wait(me);
    }
}

/// `sleep`: a timed wait on nothing, interruptible.
pub fn sleep_until(registry: &Registry, me: &ThreadRef, on: &BlockOn) -> Result<(), RuntimeError> {
    let Some(deadline) = on.deadline else {
        return Ok(());
    };
    registry.begin_wait(me, on)?;
    let result = loop {
        if let Some(err) = me.take_interrupt() {
            break Err(err);
        }
        if super::clock::now() >= deadline {
            break Ok(());
        }
        me.parker.park(Some(deadline));
    };
    registry.end_wait(me);
    result
}
