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
use crate::runtime::waits::ThreadId;

/// One decision to make.
pub struct Choice<'a> {
    /// The threads that can run, sorted by id.
    pub runnable: &'a [ThreadId],
    /// For each runnable thread, the operation it announced last (its next
    /// step when it is waiting at a point).
    pub next: &'a [Option<Step>],
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

pub trait Strategy: Send {
    /// Which of `c.runnable` runs next (an index into it).
    fn choose(&mut self, c: &Choice) -> usize;

    /// A thread came into being (PCT gives it a priority).
    fn thread_created(&mut self, _id: ThreadId) {}

    /// How the strategy is written on the command line ("random:42").
    fn describe(&self) -> String;

    /// A replay that no longer matches the script: why, at the first
    /// decision where it stopped matching.
    fn divergence(&self) -> Option<String> {
        None
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
pub struct Pct {
    depth: u32,
    seed: u64,
    rng: Rng,
    /// Higher runs first. Initial priorities are above `depth`; a change
    /// point lowers the running thread to a value below all of them.
    priority: std::collections::HashMap<ThreadId, u64>,
    change_points: Vec<u64>,
    next_low: u64,
}

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
            priority: std::collections::HashMap::new(),
            change_points,
            next_low: u64::from(depth.max(1)),
        }
    }

    fn priority_of(&self, t: ThreadId) -> u64 {
        self.priority.get(&t).copied().unwrap_or(0)
    }
}

impl Strategy for Pct {
    fn thread_created(&mut self, id: ThreadId) {
        // Distinct with overwhelming likelihood, and always above the
        // change-point priorities (which count down from `depth`).
        let p = (self.rng.next() >> 8) + u64::from(self.depth) + 1;
        self.priority.insert(id, p);
    }

    fn choose(&mut self, c: &Choice) -> usize {
        while self.change_points.first().is_some_and(|&k| k <= c.steps) {
            self.change_points.remove(0);
            if let Some(me) = c.current {
                self.next_low = self.next_low.saturating_sub(1);
                self.priority.insert(me, self.next_low);
            }
        }
        let mut best = 0;
        for (i, t) in c.runnable.iter().enumerate() {
            if self.priority_of(*t) > self.priority_of(c.runnable[best]) {
                best = i;
            }
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
}

impl Replay {
    pub fn new(described: String, decisions: Decisions) -> Replay {
        Replay {
            described,
            decisions,
            made: 0,
            diverged: None,
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
        match self.decisions.next(n) {
            Some(i) if i < n => {
                self.made += 1;
                i as usize
            }
            Some(i) => {
                self.diverged = Some(format!(
                    "decision {} of the recorded schedule picks thread {} of {} that can run",
                    self.made + 1,
                    i + 1,
                    n
                ));
                fallback
            }
            None => {
                self.diverged = Some(format!(
                    "the recorded schedule ends after {} decisions, but this run needs more",
                    self.made
                ));
                fallback
            }
        }
    }

    fn describe(&self) -> String {
        self.described.clone()
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
