//! Strategies: who runs next at each scheduling point.
//!
//! A strategy sees the threads that can run (sorted by id, at least two:
//! with one there is nothing to decide) and, for each, the operation it is
//! about to perform when that is known. It answers with an index. That is
//! the whole interface: exploration adds depth-first search, DPOR and
//! sampling strategies without touching the engine.

use super::super::rng::Rng;
use super::super::Step;
use super::schedule::Decisions;
use crate::runtime::footprint::Access;
use crate::runtime::waits::ThreadId;
use crate::span::Span;

/// One decision to make.
pub struct Choice<'a> {
    /// The threads that can run, sorted by id.
    pub runnable: &'a [ThreadId],
    /// For each runnable thread, the operation it announced last (its next
    /// step when it is waiting at a point).
    pub next: &'a [Option<Step>],
    /// Their names, if the strategy `wants_names` (else empty).
    pub names: &'a [&'a str],
    /// The thread that reached the point, if it could go on (`None` when it
    /// blocked or ended).
    pub current: Option<ThreadId>,
    /// Scheduling points passed so far.
    pub steps: u64,
}

impl Choice<'_> {
    /// Index of the current thread among the runnable ones.
    pub fn current_index(&self) -> Option<usize> {
        let me = self.current?;
        self.runnable.iter().position(|t| *t == me)
    }
}

/// What one thread did between two scheduling points (exploration's unit).
pub struct Transition<'a> {
    pub thread: ThreadId,
    pub name: &'a str,
    /// The operation announced at the point it started from (`None`: the
    /// thread's first stretch, which touches nothing shared by itself).
    pub step: Option<Step>,
    pub end: TransitionEnd,
    /// Everything it read or changed.
    pub footprint: &'a [Access],
    /// Threads it started.
    pub spawned: &'a [ThreadId],
    /// The threads that could run where it started, sorted by id, with the
    /// operation each had announced.
    pub runnable: &'a [ThreadId],
    pub next: &'a [Option<Step>],
    /// The virtual time it began at, in nanoseconds.
    pub began: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionEnd {
    /// It reached its next scheduling point.
    Point,
    /// It blocked (it goes on from there when it is woken and chosen).
    Blocked,
    /// The thread is over.
    Ended,
}

pub trait Strategy: Send {
    /// Which of `c.runnable` runs next (an index into it).
    fn choose(&mut self, c: &Choice) -> usize;

    /// Whether it wants to see every transition (`transition`): costs a
    /// footprint per step, so only explorers ask.
    fn wants_transitions(&self) -> bool {
        false
    }

    /// A transition is over (only if `wants_transitions`).
    fn transition(&mut self, _t: &Transition) {}

    /// The rest of the run is of no interest: stop it (exploration, when a
    /// run can only repeat one explored already).
    fn abandon(&self) -> bool {
        false
    }

    /// A thread came into being (PCT gives it a priority).
    fn thread_created(&mut self, _id: ThreadId) {}

    /// Whether a choice should carry the runnable threads' names (a
    /// person choosing needs them; a program does not).
    fn wants_names(&self) -> bool {
        false
    }

    /// Adversarial time: while a thread can run and another waits with a
    /// deadline, letting time pass to the next deadline is a candidate
    /// too (the last in `Choice::runnable`, as `TIME_PASSES`), so a
    /// timeout can fire before the work it waits for is done.
    fn adversarial_time(&self) -> bool {
        false
    }

    /// How the strategy is written on the command line ("random:42").
    fn describe(&self) -> String;

    /// A replay that no longer matches the script: why, at the first
    /// decision where it stopped matching.
    fn divergence(&self) -> Option<String> {
        None
    }

    /// Where the run was in the script when it stopped matching.
    fn divergence_at(&self) -> Option<Span> {
        None
    }

    /// A replay's recorded line of each decision (0: not known).
    fn recorded_lines(&self) -> Option<&[u32]> {
        None
    }
}

/// The candidate that stands for time passing (`adversarial_time`).
pub const TIME_PASSES: ThreadId = u64::MAX;

/// How a schedule says its time is adversarial (`random:3:adv`).
pub const ADVERSARIAL: &str = ":adv";

/// `inner`, with adversarial time.
pub struct AdversarialTime {
    inner: Box<dyn Strategy>,
}

impl AdversarialTime {
    pub fn new(inner: Box<dyn Strategy>) -> AdversarialTime {
        AdversarialTime { inner }
    }
}

impl Strategy for AdversarialTime {
    fn choose(&mut self, c: &Choice) -> usize {
        self.inner.choose(c)
    }

    fn thread_created(&mut self, id: ThreadId) {
        self.inner.thread_created(id)
    }

    fn adversarial_time(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("{}{ADVERSARIAL}", self.inner.describe())
    }
}

/// Somebody else decides: the REPL's `:sched manual` asks its user at
/// every point where more than one thread can go.
pub struct Manual {
    ask: Box<dyn FnMut(&Choice) -> usize + Send>,
}

impl Manual {
    pub fn new(ask: impl FnMut(&Choice) -> usize + Send + 'static) -> Manual {
        Manual { ask: Box::new(ask) }
    }
}

impl Strategy for Manual {
    fn choose(&mut self, c: &Choice) -> usize {
        (self.ask)(c)
    }

    fn wants_names(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "manual".to_string()
    }
}

/// Uniform at every point.
pub struct RandomWalk {
    seed: u64,
    rng: Rng,
}

impl RandomWalk {
    pub fn new(seed: u64) -> RandomWalk {
        RandomWalk {
            seed,
            rng: Rng::seeded(seed ^ 0x5eed_0000_0000_0001),
        }
    }
}

impl Strategy for RandomWalk {
    fn choose(&mut self, c: &Choice) -> usize {
        (self.rng.next() % c.runnable.len() as u64) as usize
    }

    fn describe(&self) -> String {
        format!("random:{}", self.seed)
    }
}

/// Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010):
/// every thread gets a distinct random priority and the highest-priority
/// runnable thread runs; at `depth - 1` points chosen uniformly among the
/// first `horizon` steps, the running thread drops below everyone. A bug
/// of depth `d` is found with probability at least 1 / (n * k^(d-1)).
///
/// PCT assumes every thread finishes on its own; a thread that loops until
/// another one acts (`while running { ... }`) would keep the turn for ever.
/// So a thread that has run [`PCT_SLICE`] decisions in a row while others
/// could run also drops below everyone: a long-running loop hands over in
/// slices, while a bug within a slice keeps PCT's odds.
pub struct Pct {
    depth: u32,
    seed: u64,
    rng: Rng,
    /// Higher runs first. Initial priorities are positive; a change point
    /// or a used-up slice lowers a thread below every priority so far.
    priority: crate::runtime::int_hash::IntMap<ThreadId, i64>,
    change_points: Vec<u64>,
    next_low: i64,
    /// The thread chosen last and how many decisions in a row it won.
    last: Option<ThreadId>,
    run: u32,
}

/// Decisions in a row a thread may win under PCT while others could run.
pub const PCT_SLICE: u32 = 1000;

impl Pct {
    pub fn new(depth: u32, seed: u64, horizon: u64) -> Pct {
        let rng = Rng::seeded(seed ^ 0x9c7_0000_0000_0002);
        let horizon = horizon.max(1);
        let mut change_points: Vec<u64> = (1..depth.max(1))
            .map(|_| 1 + rng.next() % horizon)
            .collect();
        change_points.sort_unstable();
        Pct {
            depth: depth.max(1),
            seed,
            rng,
            priority: Default::default(),
            change_points,
            next_low: 0,
            last: None,
            run: 0,
        }
    }

    fn priority_of(&self, t: ThreadId) -> i64 {
        self.priority.get(&t).copied().unwrap_or(0)
    }

    fn lower(&mut self, t: ThreadId) {
        self.next_low -= 1;
        self.priority.insert(t, self.next_low);
    }

    fn best(&self, runnable: &[ThreadId]) -> usize {
        let mut best = 0;
        for (i, t) in runnable.iter().enumerate() {
            if self.priority_of(*t) > self.priority_of(runnable[best]) {
                best = i;
            }
        }
        best
    }
}

impl Strategy for Pct {
    fn thread_created(&mut self, id: ThreadId) {
        // Distinct with overwhelming likelihood, and always above every
        // lowered priority (which count down from 0).
        let p = (self.rng.next() >> 2) as i64 + 1;
        self.priority.insert(id, p);
    }

    fn choose(&mut self, c: &Choice) -> usize {
        while self.change_points.first().is_some_and(|&k| k <= c.steps) {
            self.change_points.remove(0);
            if let Some(me) = c.current {
                self.lower(me);
            }
        }
        let mut best = self.best(c.runnable);
        if Some(c.runnable[best]) == self.last && self.run >= PCT_SLICE {
            self.lower(c.runnable[best]);
            best = self.best(c.runnable);
        }
        if Some(c.runnable[best]) == self.last {
            self.run += 1;
        } else {
            self.last = Some(c.runnable[best]);
            self.run = 1;
        }
        best
    }

    fn describe(&self) -> String {
        format!("pct:{}:{}", self.depth, self.seed)
    }
}

/// Exactly the decisions of an earlier run.
pub struct Replay {
    described: String,
    decisions: Decisions,
    made: usize,
    diverged: Option<String>,
    diverged_at: Option<Span>,
    lines: Option<Vec<u32>>,
}

impl Replay {
    pub fn new(described: String, decisions: Decisions, lines: Option<Vec<u32>>) -> Replay {
        Replay {
            described,
            decisions,
            made: 0,
            diverged: None,
            diverged_at: None,
            lines,
        }
    }

    /// Decisions the run did not get to (a replay that ended early).
    pub fn left(&self) -> usize {
        self.decisions.left()
    }
}

impl Strategy for Replay {
    fn choose(&mut self, c: &Choice) -> usize {
        let fallback = c.current_index().unwrap_or(0);
        if self.diverged.is_some() {
            return fallback;
        }
        let n = c.runnable.len() as u32;
        // Where the run stands, for a message if this decision does not fit:
        // the thread that reached the point, else any that says.
        let here = c
            .current_index()
            .and_then(|i| c.next[i].and_then(|s| s.at))
            .or_else(|| c.next.iter().find_map(|s| s.and_then(|s| s.at)));
        match self.decisions.next(n) {
            Some(i) if i < n => {
                self.made += 1;
                i as usize
            }
            Some(i) => {
                self.diverged_at = here;
                self.diverged = Some(format!(
                    "decision {} of the recorded schedule picks thread {} of {} that can run",
                    self.made + 1,
                    i + 1,
                    n
                ));
                fallback
            }
            None => {
                self.diverged_at = here;
                self.diverged = Some(format!(
                    "the recorded schedule ends after {} decisions, but this run needs more",
                    self.made
                ));
                fallback
            }
        }
    }

    fn adversarial_time(&self) -> bool {
        self.described.ends_with(ADVERSARIAL)
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn divergence_at(&self) -> Option<Span> {
        self.diverged_at
    }

    fn recorded_lines(&self) -> Option<&[u32]> {
        self.lines.as_deref()
    }

    fn divergence(&self) -> Option<String> {
        if self.diverged.is_none() && self.left() > 0 {
            return Some(format!(
                "the run ended after {} decisions, but the recorded schedule has {} more",
                self.made,
                self.left()
            ));
        }
        self.diverged.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose_many(s: &mut dyn Strategy, threads: &[ThreadId], rounds: u64) -> Vec<usize> {
        let next = vec![None; threads.len()];
        let mut picks = Vec::new();
        let mut current = None;
        for steps in 0..rounds {
            let i = s.choose(&Choice {
                runnable: threads,
                next: &next,
                names: &[],
                current,
                steps,
            });
            current = Some(threads[i]);
            picks.push(i);
        }
        picks
    }

    #[test]
    fn pct_runs_the_highest_priority_but_hands_over_a_long_loop() {
        let threads: Vec<ThreadId> = (1..=3).collect();
        let mut pct = Pct::new(1, 7, 100);
        for t in &threads {
            pct.thread_created(*t);
        }
        let picks = choose_many(&mut pct, &threads, u64::from(PCT_SLICE) * 3);
        let first = picks[0];
        assert!(picks[..PCT_SLICE as usize].iter().all(|&i| i == first));
        for i in 0..3 {
            assert!(picks.contains(&i), "thread {i} never ran");
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let threads: Vec<ThreadId> = (1..=4).collect();
        let run = |seed| {
            let mut pct = Pct::new(3, seed, 50);
            for t in &threads {
                pct.thread_created(*t);
            }
            let mut random = RandomWalk::new(seed);
            (
                choose_many(&mut pct, &threads, 200),
                choose_many(&mut random, &threads, 200),
            )
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5).1, run(6).1);
    }
}
