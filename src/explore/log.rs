//! What a run did, transition by transition, as exploration sees it, and
//! the strategy that writes it down while it steers the run.

use crate::runtime::engine::controlled::strategy::{
    Choice, Strategy, Transition, TransitionEnd, ADVERSARIAL, TIME_PASSES,
};
use crate::runtime::engine::{Op, Step};
use crate::runtime::footprint::{Access, EVERYTHING, THREAD};
use crate::runtime::int_hash::{IntMap, IntSet};
use crate::runtime::waits::ThreadId;
use parking_lot::Mutex;
use std::sync::Arc;

pub type Footprint = Vec<Access>;

/// Whether two footprints conflict (the transitions cannot be swapped).
pub fn dependent(a: &[Access], b: &[Access]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.conflicts(*y)))
}

/// One transition of a run.
#[derive(Clone, Debug)]
pub struct Event {
    pub thread: ThreadId,
    pub step: Option<Step>,
    pub end: TransitionEnd,
    pub footprint: Footprint,
    pub spawned: Vec<ThreadId>,
    /// Of those, the ones exploration may pick (not a `join` of a thread
    /// still alive, which can only block).
    pub enabled: Vec<ThreadId>,
    /// Virtual time when it began, in nanoseconds (real time in a trace of
    /// the OS engine).
    pub began: u64,
    /// On the OS engine: when it first parked in this step, and when it
    /// last woke.
    pub parked: Option<(u64, u64)>,
    /// The id space (process index `<< 32`) of the process that owns the
    /// step's object, when not the thread's own (a traced OS run across
    /// processes: a child's `put` on its parent's queue).
    pub home: Option<u64>,
}

impl Event {
    /// The thread a `join` without timeout waits for.
    pub fn joins(&self) -> Option<ThreadId> {
        join_target(self.step.as_ref())
    }
}

fn join_target(step: Option<&Step>) -> Option<ThreadId> {
    match step {
        Some(s) if s.op == Op::Join => Some(s.object & !THREAD),
        _ => None,
    }
}

/// A thread that has read only data it had already read, unchanged, in
/// this many steps in a row, and is about to read such data again, is taken
/// to be busy-waiting: exploration treats the next read as a yield (it runs
/// only once another thread has changed what it reads, or when no other
/// thread can run), so `while not flag { }` does not branch at every turn
/// of the loop. A loop that reads something new at every turn (a scan over
/// `a0`, `a1`, ...) is not waiting.
pub const SPIN_READS: u32 = 3;

/// The thread of `prev` if it could have gone on where `next` began:
/// running another thread there is a preemption.
pub fn could_go_on(prev: &Event, next: &Event) -> Option<ThreadId> {
    // Time passing is not a thread that is switched away from.
    (prev.end == TransitionEnd::Point
        && prev.thread != TIME_PASSES
        && next.enabled.contains(&prev.thread))
    .then_some(prev.thread)
}

/// A thread and the footprint of its transition at some state: what a
/// sleep set holds.
pub type Sleeper = (ThreadId, Footprint);

/// A run's transitions, and where it stopped being of interest.
#[derive(Default)]
pub struct Log {
    pub events: Vec<Event>,
    /// The sleep set at each state from the branch on (index: state).
    pub sleep: Vec<Vec<Sleeper>>,
    /// The first state where every thread that could run was asleep: the
    /// run can only repeat an explored one from there.
    pub blocked_at: Option<usize>,
    /// States where a busy-waiting thread was held back.
    pub yields: u64,
    /// Thread names, for showing the run.
    pub names: IntMap<ThreadId, String>,
    /// A trace of several processes: each one's pid and name, and the pid
    /// of each thread (the others' thread ids carry their process's index
    /// in bits 32 and up). Empty for one process (pid 1).
    pub processes: Vec<(u32, String)>,
    pub pids: IntMap<ThreadId, u32>,
}

/// How a guided run picks once its prefix is used up.
#[derive(Clone)]
pub struct Guide {
    /// The thread to run at each state, from the start.
    pub prefix: Vec<ThreadId>,
    /// The sleep set at the last state of the prefix (DPOR), applied once
    /// that state's transition is known.
    pub branch_sleep: Vec<Sleeper>,
    pub use_sleep: bool,
    /// Adversarial time: "time passes to the next deadline" is a choice
    /// too, logged as a transition of `TIME_PASSES` that conflicts with
    /// everything.
    pub adversarial: bool,
}

/// Follows a prefix of choices, then prefers the thread that ran last (no
/// preemption), then the lowest id not asleep; logs every transition.
pub struct Guided {
    guide: Guide,
    sleep: Vec<Sleeper>,
    alive: IntSet<ThreadId>,
    /// For each thread, how often it read each key since the key last
    /// changed (or since the thread last wrote anything).
    reads: IntMap<ThreadId, IntMap<u64, u32>>,
    /// For each thread, its steps in a row that only re-read unchanged data.
    stale: IntMap<ThreadId, u32>,
    last: Option<ThreadId>,
    log: Arc<Mutex<Log>>,
    /// Transitions seen: the index of the state being decided.
    state: usize,
    /// Time passing was a candidate at this state (adversarial time).
    time_offered: bool,
}

impl Guided {
    pub fn new(guide: Guide, log: Arc<Mutex<Log>>) -> Guided {
        Guided {
            guide,
            sleep: Vec::new(),
            alive: IntSet::default(),
            reads: Default::default(),
            stale: Default::default(),
            last: None,
            log,
            state: 0,
            time_offered: false,
        }
    }

    /// The runnable threads exploration may pick: a `join` of a thread
    /// still alive is left out, unless nothing else can run.
    fn enabled(&self, runnable: &[ThreadId], next: &[Option<Step>]) -> Vec<ThreadId> {
        let picked: Vec<ThreadId> = runnable
            .iter()
            .zip(next)
            .filter(|(t, s)| {
                join_target(s.as_ref()).is_none_or(|j| !self.alive.contains(&j))
                    && !self.spinning(**t, s.as_ref())
            })
            .map(|(t, _)| *t)
            .collect();
        if picked.is_empty() {
            runnable.to_vec()
        } else {
            picked
        }
    }

    /// Whether `t` is about to read, once more, data it has read
    /// [`SPIN_READS`] times since it last changed.
    fn spinning(&self, t: ThreadId, next: Option<&Step>) -> bool {
        let Some(step) = next.filter(|s| s.op == Op::Read) else {
            return false;
        };
        self.stale.get(&t).is_some_and(|n| *n >= SPIN_READS)
            && self
                .reads
                .get(&t)
                .and_then(|r| r.get(&step.object))
                .is_some_and(|n| *n >= SPIN_READS)
    }

    /// Keep count of re-reads of unchanged data.
    fn count_reads(&mut self, thread: ThreadId, footprint: &[crate::runtime::footprint::Access]) {
        let writes = footprint.iter().any(|a| a.write);
        for a in footprint.iter().filter(|a| a.write) {
            for r in self.reads.values_mut() {
                r.remove(&a.key);
            }
        }
        let mine = self.reads.entry(thread).or_default();
        let stale = self.stale.entry(thread).or_default();
        if writes {
            mine.clear();
            *stale = 0;
            return;
        }
        if footprint.is_empty() {
            // A loop turn with nothing shared: neither new nor stale.
            return;
        }
        let mut fresh = false;
        for a in footprint {
            let n = mine.entry(a.key).or_default();
            fresh |= *n == 0;
            *n += 1;
        }
        *stale = if fresh { 0 } else { *stale + 1 };
    }

    fn asleep(&self, t: ThreadId) -> bool {
        self.sleep.iter().any(|(s, _)| *s == t)
    }

    /// Time passing was chosen: the scheduler jumps to the next deadline
    /// and decides again, with no transition of its own, so note one.
    fn time_passes(&mut self, c: &Choice) {
        let began = self.log.lock().events.last().map_or(0, |e| e.began);
        let last = self.last;
        Strategy::transition(
            self,
            &Transition {
                thread: TIME_PASSES,
                name: "(time passes)",
                step: None,
                end: TransitionEnd::Point,
                footprint: &[Access {
                    key: EVERYTHING,
                    write: true,
                }],
                spawned: &[],
                runnable: c.runnable,
                next: c.next,
                began,
            },
        );
        self.last = last;
    }

    /// The thread to run: the prefix's, then the one that ran last, then
    /// the lowest id not asleep (time passes last: quiescent by default).
    fn pick(&mut self, c: &Choice) -> usize {
        let index = |t: ThreadId| c.runnable.iter().position(|r| *r == t);
        if let Some(&t) = self.guide.prefix.get(self.state) {
            // A prefix that no longer fits (the script is not deterministic
            // under control) is noticed by the explorer from the log.
            return index(t).unwrap_or(0);
        }
        let enabled = self.enabled(c.runnable, c.next);
        let awake: Vec<ThreadId> = enabled
            .iter()
            .copied()
            .filter(|t| !self.asleep(*t))
            .collect();
        let pick = match self.last {
            Some(l) if awake.contains(&l) => Some(l),
            _ => awake.first().copied(),
        };
        pick.or(self.last.filter(|l| enabled.contains(l)))
            .or(enabled.first().copied())
            .and_then(index)
            .unwrap_or(0)
    }
}

impl Strategy for Guided {
    fn choose(&mut self, c: &Choice) -> usize {
        self.time_offered = c.runnable.contains(&TIME_PASSES);
        let i = self.pick(c);
        if c.runnable.get(i) == Some(&TIME_PASSES) {
            self.time_passes(c);
        }
        i
    }

    fn adversarial_time(&self) -> bool {
        self.guide.adversarial
    }

    fn wants_transitions(&self) -> bool {
        true
    }

    fn transition(&mut self, t: &Transition) {
        let mut enabled = self.enabled(t.runnable, t.next);
        // The scheduler leaves time passing out of a transition's runnable
        // threads; exploration may still choose it there.
        if std::mem::take(&mut self.time_offered) && !enabled.contains(&TIME_PASSES) {
            enabled.push(TIME_PASSES);
        }
        let held = t
            .runnable
            .iter()
            .zip(t.next)
            .any(|(r, s)| self.spinning(*r, s.as_ref()));
        self.count_reads(t.thread, t.footprint);
        let k = self.state;
        let b = self.guide.prefix.len();
        let mut log = self.log.lock();
        log.yields += u64::from(held && enabled.len() < t.runnable.len());
        if k >= b {
            log.sleep.push(self.sleep.clone());
            if self.guide.use_sleep && log.blocked_at.is_none() && self.asleep(t.thread) {
                log.blocked_at = Some(k);
            }
        }
        let fp = t.footprint.to_vec();
        if self.guide.use_sleep {
            if k + 1 == b {
                self.sleep = std::mem::take(&mut self.guide.branch_sleep);
            }
            if k + 1 >= b {
                self.sleep
                    .retain(|(s, sfp)| *s != t.thread && !dependent(sfp, &fp));
            }
        }
        log.names
            .entry(t.thread)
            .or_insert_with(|| t.name.to_string());
        self.alive.insert(t.thread);
        self.alive.extend(t.spawned.iter().copied());
        if t.end == TransitionEnd::Ended {
            self.alive.remove(&t.thread);
        }
        self.last = match t.end {
            TransitionEnd::Point => Some(t.thread),
            _ => None,
        };
        log.events.push(Event {
            thread: t.thread,
            step: t.step,
            end: t.end,
            footprint: fp,
            spawned: t.spawned.to_vec(),
            enabled,
            began: t.began,
            parked: None,
            home: None,
        });
        self.state += 1;
    }

    fn abandon(&self) -> bool {
        self.log.lock().blocked_at.is_some()
    }

    fn describe(&self) -> String {
        match self.guide.adversarial {
            true => format!("explore{ADVERSARIAL}"),
            false => "explore".to_string(),
        }
    }
}

/// What watches a run's transitions while another strategy steers it.
pub trait Observe: Send {
    /// The steering strategy picked `c.runnable[i]`.
    fn chose(&mut self, _c: &Choice, _i: usize) {}
    fn transition(&mut self, t: &Transition);
}

impl Observe for Guided {
    fn transition(&mut self, t: &Transition) {
        Strategy::transition(self, t)
    }
}

/// Any strategy, its run watched by `O`: logged (`Logged`, to show a
/// sampled run) or named by its class (`classes::Printed`).
pub struct Observed<O: Observe> {
    pub inner: Box<dyn Strategy>,
    pub observer: O,
}

/// Any strategy, with its transitions logged.
pub type Logged = Observed<Guided>;

impl Logged {
    pub fn new(inner: Box<dyn Strategy>, log: Arc<Mutex<Log>>) -> Logged {
        let guide = Guide {
            prefix: Vec::new(),
            branch_sleep: Vec::new(),
            use_sleep: false,
            adversarial: false,
        };
        Observed {
            inner,
            observer: Guided::new(guide, log),
        }
    }
}

impl<O: Observe> Strategy for Observed<O> {
    fn choose(&mut self, c: &Choice) -> usize {
        let i = self.inner.choose(c);
        self.observer.chose(c, i);
        i
    }

    fn thread_created(&mut self, id: ThreadId) {
        self.inner.thread_created(id)
    }

    fn wants_names(&self) -> bool {
        self.inner.wants_names()
    }

    fn adversarial_time(&self) -> bool {
        self.inner.adversarial_time()
    }

    fn wants_transitions(&self) -> bool {
        true
    }

    fn transition(&mut self, t: &Transition) {
        self.observer.transition(t);
        self.inner.transition(t);
    }

    fn abandon(&self) -> bool {
        self.inner.abandon()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn divergence(&self) -> Option<String> {
        self.inner.divergence()
    }

    fn divergence_at(&self) -> Option<crate::span::Span> {
        self.inner.divergence_at()
    }

    fn recorded_lines(&self) -> Option<&[u32]> {
        self.inner.recorded_lines()
    }
}
