//! The controlled engine: exactly one conc thread runs at a time, and at
//! every scheduling point a strategy decides which one runs next.
//!
//! Every conc thread runs as a fiber (`fibers.rs`) on the one OS thread
//! that drives the session, and only the holder of the *turn* runs. The
//! turn moves at `point` (a visible operation is about to happen), `park`
//! (the thread blocks) and `ended`. Parking and waking change who *can*
//! run without any OS wake-up, and time is virtual: when nothing can run,
//! the clock jumps to the earliest deadline. So a run is a pure function of
//! the script and the sequence of decisions, which the scheduler records.

mod fibers;
pub mod schedule;
pub mod strategy;

use super::{Op, Step, Time};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::footprint::{self, Access};
use crate::runtime::threads::{ThreadRecord, ThreadRef};
use crate::runtime::waits::ThreadId;
use fibers::Fibers;
pub use fibers::Job;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strategy::{Choice, Strategy, Transition, TransitionEnd, TIME_PASSES};

/// A thread that went round this many loops with nothing but reads in
/// between is waiting for something (`while not done { }`): when every
/// thread that can run is doing that, the clock may jump ahead.
const SPINNING: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Runnable,
    Blocked(Option<Time>),
}

struct Slot {
    thread: ThreadRef,
    status: Status,
    /// Unparked while not blocked: the next park returns at once.
    permit: bool,
    /// The operation it announced last.
    next: Option<Step>,
    /// Back-edges since its last operation that changed anything, each
    /// after a look at shared data.
    spin: u32,
    /// It read shared data since its last back-edge.
    looked: bool,
}

struct State {
    slots: BTreeMap<ThreadId, Slot>,
    current: Option<ThreadId>,
    strategy: Box<dyn Strategy>,
    steps: u64,
    /// The index chosen at every decision with more than one candidate,
    /// and how many candidates there were.
    choices: Vec<(u32, u32)>,
    /// Where the chosen thread stood at each decision, for a replay of an
    /// edited script to say where the runs part.
    spans: Vec<Option<crate::span::Span>>,
    /// The transition running now, when the strategy watches transitions.
    open: Option<Open>,
    /// Past this many scheduling points the run is stopped (exploration).
    limit: Option<u64>,
    limit_hit: bool,
    /// The thread that runs the stall hooks, once there is one.
    prober: Option<ThreadId>,
    /// The scheduling point at which it last ran.
    probed_at: Option<u64>,
    /// A thread that lets the others go first (`settle`).
    settling: Option<ThreadId>,
}

/// Told when no thread can run and none waits for a deadline (a simulated
/// process asks its children whether they are quiet); false once its
/// session is gone.
pub type StallHook = Box<dyn Fn() -> bool + Send>;

/// The prober's thread id: the highest of the top process's numbers, which
/// no registry reaches.
const PROBER: ThreadId = (1 << super::THREAD_BITS) - 1;

/// A transition under way: who runs, what it announced, where it began.
struct Open {
    thread: ThreadId,
    record: Option<ThreadRef>,
    step: Option<Step>,
    runnable: Vec<ThreadId>,
    next: Vec<Option<Step>>,
    spawned: Vec<ThreadId>,
    began: u64,
}

pub struct Scheduler {
    state: Mutex<State>,
    /// Virtual now in nanoseconds; written only under `state`.
    clock: AtomicU64,
    fibers: Fibers,
    /// The next simulated process's pid.
    next_pid: AtomicU64,
    /// What the prober runs, keyed by who added them.
    stall_hooks: Mutex<Vec<(usize, StallHook)>>,
}

/// What a run under control decided, for its replay token.
pub struct Record {
    pub strategy: String,
    pub choices: Vec<(u32, u32)>,
    /// Where the chosen thread stood at each decision.
    pub spans: Vec<Option<crate::span::Span>>,
    /// Under a replay: the line of each decision in the recorded run, if
    /// its token carries them.
    pub recorded_lines: Option<Vec<u32>>,
    pub steps: u64,
    pub divergence: Option<String>,
    /// Where the run was when the replay stopped matching, if known.
    pub divergence_at: Option<crate::span::Span>,
}

impl Scheduler {
    pub fn new(strategy: Box<dyn Strategy>) -> Scheduler {
        Scheduler {
            state: Mutex::new(State {
                slots: BTreeMap::new(),
                current: None,
                strategy,
                steps: 0,
                choices: Vec::new(),
                spans: Vec::new(),
                open: None,
                limit: None,
                limit_hit: false,
                prober: None,
                probed_at: None,
                settling: None,
            }),
            clock: AtomicU64::new(0),
            fibers: Fibers::default(),
            next_pid: AtomicU64::new(u64::from(super::CONTROLLED_PID) + 1),
            stall_hooks: Mutex::new(Vec::new()),
        }
    }

    /// Run `hook` (once per `key`) whenever no thread can run and none
    /// waits for a deadline, on a thread of its own (the prober), before
    /// the run is taken to be stuck.
    pub fn on_stall(self: &Arc<Self>, key: usize, hook: StallHook) {
        {
            let mut hooks = self.stall_hooks.lock();
            if hooks.iter().any(|(k, _)| *k == key) {
                return;
            }
            hooks.push((key, hook));
        }
        if self.state.lock().prober.is_some() {
            return;
        }
        let me = ThreadRecord::new(PROBER, "deadlock-prober".to_string(), true);
        let sched = Arc::downgrade(self);
        let record = me.clone();
        self.start(
            &me,
            Box::new(move || loop {
                let Some(s) = sched.upgrade() else { return };
                s.stall_hooks.lock().retain(|(_, hook)| hook());
                s.park(&record, None);
            }),
        );
        let mut st = self.state.lock();
        st.prober = Some(PROBER);
        if let Some(slot) = st.slots.get_mut(&PROBER) {
            slot.status = Status::Blocked(None);
        }
    }

    /// The pid of the next simulated child process.
    pub fn next_pid(&self) -> u32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed) as u32
    }

    #[inline]
    pub fn now(&self) -> Time {
        Time::from_nanos(self.clock.load(Ordering::Acquire))
    }

    /// Scheduling points passed so far.
    pub fn steps(&self) -> u64 {
        self.state.lock().steps
    }

    pub fn record(&self) -> Record {
        let st = self.state.lock();
        Record {
            strategy: st.strategy.describe(),
            choices: st.choices.clone(),
            spans: st.spans.clone(),
            recorded_lines: st.strategy.recorded_lines().map(<[u32]>::to_vec),
            steps: st.steps,
            divergence: st.strategy.divergence(),
            divergence_at: st.strategy.divergence_at(),
        }
    }

    /// Stop the run once it passes `steps` scheduling points: every thread
    /// is interrupted with an error that says so.
    pub fn set_step_limit(&self, steps: u64) {
        self.state.lock().limit = Some(steps);
    }

    /// The session is over: every thread still suspended is let go (see
    /// `Fibers::clear`), and with it what it holds.
    pub fn shut_down(&self) {
        let slots = std::mem::take(&mut self.state.lock().slots);
        self.fibers.clear();
        drop(slots);
    }

    /// The run is over: the transition still under way (the main thread's
    /// last) ends, so the strategy sees every transition.
    pub fn close_open(&self) {
        Self::close(&mut self.state.lock(), TransitionEnd::Ended);
    }

    /// Whether the step limit stopped the run.
    pub fn limit_hit(&self) -> bool {
        self.state.lock().limit_hit
    }

    /// The transition under way ends: the strategy sees it.
    fn close(st: &mut State, how: TransitionEnd) {
        let Some(open) = st.open.take() else { return };
        let mut footprint: Vec<Access> = Vec::new();
        if let Some(access) = open.step.and_then(|s| s.access()) {
            footprint.push(access);
        }
        for a in footprint::take() {
            match footprint.iter_mut().find(|b| b.key == a.key) {
                Some(b) => b.write |= a.write,
                None => footprint.push(a),
            }
        }
        if how == TransitionEnd::Ended {
            footprint.push(Access {
                key: footprint::THREAD | open.thread,
                write: true,
            });
        }
        st.strategy.transition(&Transition {
            thread: open.thread,
            name: open.record.as_ref().map_or("?", |r| r.name.as_str()),
            step: open.step,
            end: how,
            footprint: &footprint,
            spawned: &open.spawned,
            runnable: &open.runnable,
            next: &open.next,
            began: open.began,
        });
    }

    /// `thread` got the turn: its transition begins.
    fn open(st: &mut State, thread: ThreadId, runnable: Vec<ThreadId>, now: Time) {
        if !st.strategy.wants_transitions() {
            return;
        }
        footprint::take();
        let next = runnable
            .iter()
            .map(|id| st.slots.get(id).and_then(|s| s.next))
            .collect();
        let step = st.slots.get(&thread).and_then(|s| s.next);
        let record = st.slots.get(&thread).map(|s| s.thread.clone());
        st.open = Some(Open {
            thread,
            record,
            step,
            runnable,
            next,
            spawned: Vec::new(),
            began: now.as_nanos(),
        });
    }

    fn add(st: &mut State, thread: &ThreadRef) {
        st.strategy.thread_created(thread.id);
        st.slots.insert(
            thread.id,
            Slot {
                thread: thread.clone(),
                status: Status::Runnable,
                permit: false,
                next: None,
                spin: 0,
                looked: false,
            },
        );
    }

    /// The thread already running (the session's main thread) takes the
    /// turn.
    pub fn adopt(&self, me: &ThreadRef) {
        let mut st = self.state.lock();
        Self::add(&mut st, me);
        if st.current.is_none() {
            st.current = Some(me.id);
            Self::open(&mut st, me.id, vec![me.id], self.now());
        }
    }

    /// A new thread, with the body it runs once it is chosen.
    pub fn start(&self, thread: &ThreadRef, job: Job) {
        let mut st = self.state.lock();
        Self::add(&mut st, thread);
        if let Some(open) = &mut st.open {
            open.spawned.push(thread.id);
        }
        drop(st);
        self.fibers.add(thread.id, job);
    }

    /// A thread whose start failed on the way: it never runs.
    pub fn forget(&self, thread: &ThreadRecord) {
        self.state.lock().slots.remove(&thread.id);
        self.fibers.forget(thread.id);
    }

    /// Run `body` as the session's main thread `main`, and every other
    /// thread whenever it is chosen, until `body` is done. Every entry into
    /// the session (a script, a REPL entry, the end-of-script wait) runs
    /// this way, on one OS thread.
    pub fn run_main<R>(
        &self,
        main: &ThreadRecord,
        stack: usize,
        body: impl FnOnce() -> R,
    ) -> std::io::Result<R> {
        if fibers::in_fiber() {
            return Ok(body());
        }
        self.fibers
            .drive(stack, main.id, || self.state.lock().current, body)
    }

    /// The thread is over: it leaves, and the turn moves on (its fiber
    /// returns to the driver right after this).
    pub fn ended(&self, me: &ThreadRecord) {
        let mut st = self.state.lock();
        st.slots.remove(&me.id);
        Self::close(&mut st, TransitionEnd::Ended);
        st.current = self.decide(&mut st, None);
    }

    /// `me` is about to perform `step`: maybe another thread goes first.
    pub fn point(&self, me: &ThreadRecord, step: Step) {
        let step = Step {
            object: footprint::in_process(step.object, me.id >> super::THREAD_BITS),
            ..step
        };
        let mut st = self.state.lock();
        st.steps += 1;
        if !st.limit_hit && st.limit.is_some_and(|l| st.steps > l) {
            let why = format!(
                "the run passed {} scheduling points (the step limit)",
                st.limit.unwrap_or_default()
            );
            self.stop_all(&mut st, why);
        } else if !st.limit_hit && st.strategy.abandon() {
            self.stop_all(&mut st, "exploration abandoned this run".to_string());
        }
        Self::close(&mut st, TransitionEnd::Point);
        let Some(slot) = st.slots.get_mut(&me.id) else {
            return;
        };
        // A loop that only looks (`while not done { }`) waits for another
        // thread; one that reads nothing shared is computing, however long.
        match step.op {
            Op::BackEdge if std::mem::take(&mut slot.looked) => {
                slot.spin = slot.spin.saturating_add(1)
            }
            Op::BackEdge => slot.spin = 0,
            op if op.only_reads() => slot.looked = true,
            _ => slot.spin = 0,
        }
        slot.next = Some(step);
        let next = self.decide(&mut st, Some(me.id));
        if next != Some(me.id) {
            st.current = next;
            drop(st);
            fibers::suspend();
        }
    }

    /// `me` blocks until unparked or `deadline`.
    pub fn park(&self, me: &ThreadRecord, deadline: Option<Time>) {
        let mut st = self.state.lock();
        let Some(slot) = st.slots.get_mut(&me.id) else {
            return;
        };
        if std::mem::take(&mut slot.permit) {
            return;
        }
        slot.status = Status::Blocked(deadline);
        Self::close(&mut st, TransitionEnd::Blocked);
        let next = self.decide(&mut st, None);
        st.current = next;
        if next != Some(me.id) {
            drop(st);
            fibers::suspend();
        }
    }

    /// `thread` can run again (or, if it is not blocked, its next park
    /// returns at once). Nobody is woken: it runs when it is chosen.
    pub fn unpark(&self, thread: &ThreadRecord) {
        let mut st = self.state.lock();
        if let Some(slot) = st.slots.get_mut(&thread.id) {
            match slot.status {
                Status::Blocked(_) => slot.status = Status::Runnable,
                Status::Runnable => slot.permit = true,
            }
        }
    }

    fn runnable(st: &State) -> Vec<ThreadId> {
        let mut ids: Vec<ThreadId> = st
            .slots
            .iter()
            .filter(|(_, s)| s.status == Status::Runnable)
            .map(|(id, _)| *id)
            .collect();
        if let Some(me) = st.settling.filter(|me| Self::others_busy(st, *me)) {
            ids.retain(|id| *id != me);
        }
        ids
    }

    /// While settling: another non-daemon thread can run, or will once
    /// its deadline comes (and `me` was not interrupted meanwhile).
    fn others_busy(st: &State, me: ThreadId) -> bool {
        let interrupted = st
            .slots
            .get(&me)
            .is_some_and(|s| s.thread.interrupt_pending());
        !interrupted
            && st.slots.iter().any(|(id, s)| {
                *id != me
                    && !s.thread.daemon
                    && matches!(s.status, Status::Runnable | Status::Blocked(Some(_)))
            })
    }

    /// `me` lets every other thread go first until each has ended or
    /// waits without a deadline (the REPL after an entry): then it goes on.
    pub fn settle(&self, me: &ThreadRecord) {
        self.state.lock().settling = Some(me.id);
        self.point(me, Step::new(Op::Wait, 0, None));
        self.state.lock().settling = None;
    }

    /// Who runs next; `current` is the thread at a point, if it could go on.
    fn decide(&self, st: &mut State, current: Option<ThreadId>) -> Option<ThreadId> {
        let mut runnable = Self::runnable(st);
        let all_spinning = runnable
            .iter()
            .all(|id| st.slots.get(id).is_some_and(|s| s.spin >= SPINNING));
        if (runnable.is_empty() || all_spinning) && self.advance_clock(st) {
            runnable = Self::runnable(st);
        }
        if runnable.is_empty() {
            return self.stalled(st);
        }
        // Adversarial time: the next deadline may come before any of them
        // goes on.
        let time_may_pass = st.strategy.adversarial_time()
            && (st.slots.values()).any(|s| matches!(s.status, Status::Blocked(Some(_))));
        if runnable.len() == 1 && !time_may_pass {
            let only = runnable[0];
            Self::open(st, only, runnable, self.now());
            return Some(only);
        }
        // The candidates: the runnable threads, then time passing.
        let mut candidates = runnable;
        if time_may_pass {
            candidates.push(TIME_PASSES);
        }
        let next: Vec<Option<Step>> = candidates
            .iter()
            .map(|id| st.slots.get(id).and_then(|s| s.next))
            .collect();
        let names: Vec<&str> = if st.strategy.wants_names() {
            (candidates.iter())
                .map(|id| match st.slots.get(id) {
                    Some(s) => s.thread.name.as_str(),
                    None if *id == TIME_PASSES => "(time passes)",
                    None => "",
                })
                .collect()
        } else {
            Vec::new()
        };
        let choice = Choice {
            runnable: &candidates,
            next: &next,
            names: &names,
            current,
            steps: st.steps,
        };
        let i = st.strategy.choose(&choice).min(candidates.len() - 1);
        st.choices.push((i as u32, candidates.len() as u32));
        st.spans.push(next[i].and_then(|s| s.at));
        let chosen = candidates[i];
        if chosen == TIME_PASSES {
            self.advance_clock(st);
            return self.decide(st, current);
        }
        if time_may_pass {
            candidates.pop();
        }
        Self::open(st, chosen, candidates, self.now());
        Some(chosen)
    }

    /// The run went past its step limit (or exploration gave it up): every
    /// thread stops with an error at its next check (a blocked one is woken
    /// for it).
    fn stop_all(&self, st: &mut State, why: String) {
        st.limit_hit = true;
        let err = RuntimeError::new(kind::INTERRUPTED, why);
        for slot in st.slots.values_mut() {
            slot.thread.set_interrupt(err.clone());
            slot.status = Status::Runnable;
        }
    }

    /// Nothing else can happen before the earliest deadline: jump to it
    /// and let the threads waiting for it run. False if nobody waits on a
    /// deadline.
    fn advance_clock(&self, st: &mut State) -> bool {
        let earliest = st
            .slots
            .values()
            .filter_map(|s| match s.status {
                Status::Blocked(Some(d)) => Some(d),
                _ => None,
            })
            .min();
        let Some(at) = earliest else { return false };
        if at > self.now() {
            self.clock.store(at.as_nanos(), Ordering::Release);
        }
        for slot in st.slots.values_mut() {
            slot.spin = 0;
            if matches!(slot.status, Status::Blocked(Some(d)) if d <= at) {
                slot.status = Status::Runnable;
            }
        }
        true
    }

    /// Every thread is blocked for good, and the registry (which sees
    /// every wait before it parks) did not call it a deadlock: never hang;
    /// end each thread's wait with an internal error instead.
    fn stalled(&self, st: &mut State) -> Option<ThreadId> {
        // Processes may be waiting for one another: the prober asks them,
        // once per standstill.
        if let Some(p) = st.prober.filter(|_| st.probed_at != Some(st.steps)) {
            if let Some(slot) = st.slots.get_mut(&p) {
                st.probed_at = Some(st.steps);
                slot.status = Status::Runnable;
                Self::open(st, p, vec![p], self.now());
                return Some(p);
            }
        }
        let err = RuntimeError::new(
            kind::DEADLOCK,
            "no thread can run, and none waits for a deadline \
             (internal error of the controlled scheduler, please report)",
        );
        for slot in st.slots.values_mut() {
            slot.thread.set_interrupt(err.clone());
            slot.status = Status::Runnable;
        }
        st.slots.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::strategy::{RandomWalk, Replay};
    use super::*;

    fn record(id: ThreadId) -> ThreadRef {
        ThreadRecord::new(id, format!("t{}", id), false)
    }

    fn step(op: Op) -> Step {
        Step::new(op, 1, None)
    }

    /// Two threads appending to one log under a random strategy: the order
    /// depends only on the seed, and a replay of the recorded choices gives
    /// the same order.
    fn run(strategy: Box<dyn Strategy>) -> (Vec<u64>, Record) {
        let sched = std::sync::Arc::new(Scheduler::new(strategy));
        let main = record(1);
        sched.adopt(&main);
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let body = || {
            for id in [2, 3] {
                let t = record(id);
                let (s, log) = (sched.clone(), log.clone());
                let me = t.clone();
                sched.start(
                    &t,
                    Box::new(move || {
                        for _ in 0..20 {
                            s.point(&me, step(Op::Write));
                            log.lock().push(me.id);
                        }
                        s.ended(&me);
                    }),
                );
            }
            // Main waits for both by passing points until each has ended.
            while sched.state.lock().slots.len() > 1 {
                sched.point(&main, step(Op::Read));
            }
        };
        let ran = sched.run_main(&main, 1 << 20, body);
        assert!(ran.is_ok());
        let log = log.lock().clone();
        (log, sched.record())
    }

    #[test]
    fn one_seed_one_interleaving_and_replay_repeats_it() {
        let (a, rec) = run(Box::new(RandomWalk::new(7)));
        let (b, _) = run(Box::new(RandomWalk::new(7)));
        assert_eq!(a, b);
        assert_eq!(a.len(), 40);
        let token = super::schedule::Token::new(&rec.strategy, 0, &rec.choices);
        let (c, replayed) = run(Box::new(Replay::new(
            rec.strategy.clone(),
            token.decisions(),
            None,
        )));
        assert_eq!(a, c);
        assert!(replayed.divergence.is_none());
        let others: Vec<Vec<u64>> = (0..8)
            .map(|s| run(Box::new(RandomWalk::new(s))).0)
            .collect();
        assert!(others.iter().any(|o| *o != a), "every seed gave one order");
    }

    #[test]
    fn the_clock_jumps_when_nothing_can_run() {
        let sched = Scheduler::new(Box::new(RandomWalk::new(1)));
        let main = record(1);
        sched.adopt(&main);
        let later = Time::from_nanos(5_000_000_000);
        let ran = sched.run_main(&main, 1 << 20, || sched.park(&main, Some(later)));
        assert!(ran.is_ok());
        assert_eq!(sched.now(), later);
    }

    #[test]
    fn a_permit_given_before_park_is_kept() {
        let sched = Scheduler::new(Box::new(RandomWalk::new(1)));
        let main = record(1);
        sched.adopt(&main);
        let ran = sched.run_main(&main, 1 << 20, || {
            sched.unpark(&main);
            sched.park(&main, None);
        });
        assert!(ran.is_ok());
        assert_eq!(sched.now(), Time::ZERO);
    }
}
