//! The registry: every live thread of a session and what each waits for.

use super::deadlock::{self, Found};
use super::table::{Entry, Threads, Waiting};
use super::{BlockOn, ThreadId};
use crate::diagnostics::RuntimeError;
use crate::runtime::engine::Engine;
use crate::runtime::locks::Lock;
use crate::runtime::threads::{Held, ThreadRecord, ThreadRef};
use crate::span::SourceMap;
use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// What a deadlock does to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlockPolicy {
    /// A script: the run is over. Every thread is interrupted with the
    /// report, which the main thread's run gives back as its outcome.
    EndRun,
    /// The REPL: the threads involved get the report; the session goes on.
    InterruptInvolved,
}

/// Told of a deadlock when it is found (a child process tells its parent).
pub type DeadlockHandler = Box<dyn Fn(&RuntimeError) + Send + Sync>;

/// Told, after the parent asked (`probe`), as soon as this (child) process
/// is quiet: every thread waits and only the parent can wake any of them.
/// Gets what the threads wait for inside the child.
pub type QuietHook = Box<dyn Fn(Vec<String>) + Send + Sync>;

pub struct Registry {
    threads: Mutex<Threads>,
    engine: Engine,
    policy: Mutex<DeadlockPolicy>,
    on_deadlock: Mutex<Option<Arc<DeadlockHandler>>>,
    /// The deadlock that ended the run (`EndRun`): later waits fail with it.
    ended: Mutex<Option<RuntimeError>>,
    /// To name held locks as the script wrote them in reports.
    sources: Mutex<SourceMap>,
    quiet_hook: Mutex<Option<Arc<QuietHook>>>,
    /// The parent asked whether we are quiet and has had no answer yet
    /// (only ever set in a child: everyone else skips the check cheaply).
    probed: AtomicBool,
    next_thread: AtomicU64,
    /// Object numbers shown in reports (`lock#3`): per session, so two
    /// sessions in one process (tests, `:reset`) never see each other's.
    next_object: AtomicU64,
    /// Every lock and rlock of this session, so a report can say what each
    /// thread holds without the hot path keeping a list.
    live_locks: Mutex<Vec<Weak<Lock>>>,
    /// Threads that died of an error nobody was waiting to join: a deadlock
    /// that follows is often its consequence, and its report says so.
    failures: Mutex<Vec<(String, RuntimeError)>>,
    /// The session's main thread (0 until `set_main`).
    main: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(Engine::default())
    }
}

/// A snapshot line for `:threads` and reports.
pub struct ThreadInfo {
    pub thread: ThreadRef,
    pub waiting: Option<BlockOn>,
}

impl Registry {
    pub fn new(engine: Engine) -> Registry {
        Registry {
            threads: Mutex::new(BTreeMap::new()),
            engine,
            policy: Mutex::new(DeadlockPolicy::InterruptInvolved),
            on_deadlock: Mutex::new(None),
            ended: Mutex::new(None),
            sources: Mutex::new(SourceMap::default()),
            quiet_hook: Mutex::new(None),
            probed: AtomicBool::new(false),
            next_thread: AtomicU64::new(1),
            next_object: AtomicU64::new(1),
            live_locks: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            main: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A new thread record with this session's next thread id.
    pub fn new_thread(&self, name: String, daemon: bool) -> ThreadRef {
        ThreadRecord::new(self.next_thread_id(), name, daemon)
    }

    pub fn next_thread_id(&self) -> ThreadId {
        crate::runtime::footprint::touch(self.engine.own_key(crate::runtime::footprint::IDS), true);
        self.engine.thread_base() | self.next_thread.fetch_add(1, Ordering::Relaxed)
    }

    fn report(&self, threads: &Threads, cycle: Option<deadlock::Cycle>) -> Option<Found> {
        let sources = self.sources.lock();
        cycle.map(|c| deadlock::report(threads, c, &sources, |t| self.held_by(t)))
    }

    /// Number threads and objects on from where `before` stopped (a
    /// session that goes on from another never repeats its ids).
    pub fn continue_numbering(&self, before: &Registry) {
        let next = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.next_thread
            .fetch_max(next(&before.next_thread), Ordering::Relaxed);
        self.next_object
            .fetch_max(next(&before.next_object), Ordering::Relaxed);
    }

    pub fn set_main(&self, id: ThreadId) {
        self.main.store(id, Ordering::Relaxed);
    }

    /// `who` died of `err` with nobody waiting to join it.
    pub fn note_failure(&self, who: String, err: &RuntimeError) {
        const KEPT: usize = 8;
        if err.ends_the_run() {
            return;
        }
        let mut failures = self.failures.lock();
        if failures.len() < KEPT {
            failures.push((who, err.clone()));
        }
    }

    /// The number of the next object made in this session.
    pub fn next_object_id(&self) -> u64 {
        crate::runtime::footprint::touch(self.engine.own_key(crate::runtime::footprint::IDS), true);
        self.next_object.fetch_add(1, Ordering::Relaxed)
    }

    /// A new lock or rlock, for reports of what threads hold.
    pub fn track_lock(&self, lock: &Arc<Lock>) {
        let mut live = self.live_locks.lock();
        if live.len() >= 64 && live.len().is_power_of_two() {
            live.retain(|l| l.strong_count() > 0);
        }
        live.push(Arc::downgrade(lock));
    }

    /// Locks and rlocks `thread` owns (recorded in the locks themselves),
    /// then semaphore permits and other processes' locks, in the order taken.
    pub fn held_by(&self, thread: &ThreadRecord) -> Vec<Held> {
        let locks: Vec<Arc<Lock>> = self
            .live_locks
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut held: Vec<Held> = locks.iter().filter_map(|l| l.holding(thread.id)).collect();
        held.extend(thread.held_extra());
        held
    }

    pub fn set_sources(&self, sources: SourceMap) {
        *self.sources.lock() = sources;
    }

    pub fn set_deadlock_policy(&self, policy: DeadlockPolicy) {
        *self.policy.lock() = policy;
    }

    pub fn set_deadlock_handler(&self, handler: Option<DeadlockHandler>) {
        *self.on_deadlock.lock() = handler.map(Arc::new);
    }

    /// `exit()` in a thread other than the main one: the run ends as a
    /// deadlock ends it (script mode only; the REPL goes on). Every other
    /// thread is interrupted with `err`, later waits fail with it, and the
    /// main thread carries it out to the CLI, which turns it into the
    /// status. The first end wins.
    pub fn end_run(&self, me: &ThreadRecord, err: RuntimeError) {
        if *self.policy.lock() != DeadlockPolicy::EndRun {
            return;
        }
        let threads = self.threads.lock();
        {
            let mut ended = self.ended.lock();
            if ended.is_some() {
                return;
            }
            *ended = Some(err.clone());
        }
        let victims: Vec<ThreadRef> = threads
            .iter()
            .filter(|(id, _)| **id != me.id)
            .map(|(_, e)| e.thread.clone())
            .collect();
        drop(threads);
        for v in victims {
            self.interrupt(&v, err.clone());
        }
    }

    /// The deadlock (or thread's `exit`) that ended this run, if one did.
    pub fn ended(&self) -> Option<RuntimeError> {
        self.ended.lock().clone()
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
    fn update_quiet(&self, threads: &Threads) {
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
        let waits = deadlock::inner_waits(threads, &self.sources.lock());
        hook(waits)
    }

    /// Something outside the registry changed whether a wait is stuck (a
    /// child process turned quiet): look for a deadlock now.
    pub fn recheck(&self) {
        let threads = self.threads.lock();
        self.probe_children(&threads);
        let found = self.report(&threads, deadlock::all_stuck(&threads));
        if let Some(found) = found {
            self.deadlock(threads, found, None);
        }
    }

    /// When every thread of ours waits on a child process (or on one of
    /// ours that does), ask the children whether they are quiet. Under
    /// control the scheduler sees the whole program: it asks only once no
    /// thread of any process can run (`probe_stalled`), which keeps the
    /// probes out of the schedules of runs that never get stuck.
    fn probe_children(&self, threads: &Threads) {
        if self.engine.scheduler().is_none() {
            deadlock::probe_children(threads);
        }
    }

    /// Under control, no thread of the program can run: ask the children
    /// (as `probe_children` would on the OS engine).
    pub fn probe_stalled(&self) {
        deadlock::probe_children(&self.threads.lock());
    }

    pub fn register(&self, thread: ThreadRef) {
        self.threads.lock().insert(
            thread.id,
            Entry {
                thread,
                waiting: None,
                wake_pending: false,
            },
        );
    }

    /// A thread ended: the others may now be stuck for good.
    pub fn unregister(&self, id: ThreadId) {
        let mut threads = self.threads.lock();
        threads.remove(&id);
        self.update_quiet(&threads);
        self.probe_children(&threads);
        let found = self.report(&threads, deadlock::all_stuck(&threads));
        if let Some(found) = found {
            self.deadlock(threads, found, None);
        }
    }

    /// What `thread` holds, named as in deadlock reports ("lock#3 (m)").
    pub fn holdings(&self, thread: &ThreadRecord) -> Vec<String> {
        deadlock::holdings(&self.held_by(thread), &self.sources.lock())
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
        if let Some(ended) = self.ended.lock().clone() {
            return Err(ended);
        }
        if let Some(entry) = threads.get_mut(&me.id) {
            let woken = std::mem::take(&mut entry.wake_pending);
            entry.waiting = Some(Waiting {
                on: on.clone(),
                woken,
            });
        }
        self.update_quiet(&threads);
        self.probe_children(&threads);
        if on.deadline.is_some() || on.external {
            return Ok(());
        }
        let cycle = deadlock::lock_cycle(&threads, me.id).or_else(|| deadlock::all_stuck(&threads));
        let found = self.report(&threads, cycle);
        match found {
            Some(found) => {
                if let Some(entry) = threads.get_mut(&me.id) {
                    entry.waiting = None;
                }
                Err(self.deadlock(threads, found, Some(me.id)))
            }
            None => Ok(()),
        }
    }

    pub fn end_wait(&self, me: &ThreadRecord) {
        let mut threads = self.threads.lock();
        if let Some(entry) = threads.get_mut(&me.id) {
            entry.waiting = None;
            entry.wake_pending = false;
        }
        self.update_quiet(&threads);
    }

    /// Mark a blocked thread runnable, then unpark it.
    pub fn wake(&self, thread: &ThreadRecord) {
        let mut threads = self.threads.lock();
        if let Some(entry) = threads.get_mut(&thread.id) {
            match &mut entry.waiting {
                Some(w) => w.woken = true,
                None => entry.wake_pending = true,
            }
        }
        self.update_quiet(&threads);
        drop(threads);
        self.engine.unpark(thread);
    }

    /// Ask a thread to stop what it is doing with `err` (Ctrl-C, deadlock).
    pub fn interrupt(&self, thread: &ThreadRecord, err: RuntimeError) {
        thread.set_interrupt(err);
        self.wake(thread);
    }

    /// A deadlock found inside a child process (`from`): a deadlock of the
    /// whole program, handled as if found here.
    pub fn report_deadlock(&self, from: &str, err: RuntimeError, ctx: &crate::runtime::Context) {
        if *self.policy.lock() == DeadlockPolicy::EndRun {
            let threads = self.threads.lock();
            let found = Found {
                ids: Vec::new(),
                error: err,
            };
            self.deadlock(threads, found, None);
            return;
        }
        match self.on_deadlock.lock().clone() {
            Some(handler) => handler(&err),
            None => (ctx.reporter)(from, &err),
        }
    }

    /// Tell the handler, then interrupt the threads the policy names (every
    /// thread when the run ends), and give the report to the detector.
    fn deadlock(
        &self,
        threads: MutexGuard<'_, Threads>,
        found: Found,
        detector: Option<ThreadId>,
    ) -> RuntimeError {
        let mut err = found.error;
        for (who, failure) in self.failures.lock().iter() {
            err = err.note(
                format!(
                    "{} died earlier with {}: {} (reported above)",
                    who, failure.kind, failure.message
                ),
                failure.span,
            );
        }
        if let Some(sched) = self.engine.scheduler() {
            err = err.note(
                format!(
                    "under the controlled engine: formed at virtual time {:.3} s, scheduling point {}",
                    sched.now().as_secs_f64(),
                    sched.steps()
                ),
                None,
            );
        }
        let policy = *self.policy.lock();
        if policy == DeadlockPolicy::EndRun {
            let mut ended = self.ended.lock();
            if let Some(first) = ended.as_ref() {
                return first.clone();
            }
            *ended = Some(err.clone());
        }
        let victims: Vec<ThreadRef> = threads
            .iter()
            .filter(|(id, _)| Some(**id) != detector)
            .filter(|(id, _)| policy == DeadlockPolicy::EndRun || found.ids.contains(id))
            .map(|(_, e)| e.thread.clone())
            .collect();
        drop(threads);
        // Under `InterruptInvolved` (the REPL) the main thread shows a
        // deadlock it is part of; one among background threads only alone
        // would go unseen, so the handler shows it.
        let main = self.main.load(Ordering::Relaxed);
        let main_sees_it = detector == Some(main) || found.ids.contains(&main);
        let handler = self.on_deadlock.lock().clone();
        if let Some(handler) = handler {
            if policy == DeadlockPolicy::EndRun || !main_sees_it {
                handler(&err);
            }
        }
        for v in victims {
            self.interrupt(&v, err.clone());
        }
        err
    }
}
