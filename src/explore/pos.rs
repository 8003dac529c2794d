//! Partial order sampling (Yuan, Yang and Gu, CAV 2018): every pending
//! operation gets a random priority and the highest runs; once it has run,
//! every pending operation that conflicts with it draws a new priority.
//! Unlike a uniform random walk, this samples the orders of conflicting
//! operations close to uniformly, whatever the number of independent steps.

use crate::runtime::engine::controlled::strategy::{Choice, Strategy};
use crate::runtime::engine::{Rng, Step};
use crate::runtime::waits::ThreadId;
use std::collections::HashMap;

pub struct Pos {
    seed: u64,
    rng: Rng,
    /// The priority of each thread's pending operation.
    priority: HashMap<ThreadId, u64>,
}

impl Pos {
    pub fn new(seed: u64) -> Pos {
        Pos {
            seed,
            rng: Rng::seeded(seed ^ 0x9050_0000_0000_0003),
            priority: HashMap::new(),
        }
    }
}

fn conflict(a: &Option<Step>, b: &Option<Step>) -> bool {
    match (a.and_then(|s| s.access()), b.and_then(|s| s.access())) {
        (Some(a), Some(b)) => a.conflicts(b),
        _ => false,
    }
}

impl Strategy for Pos {
    fn choose(&mut self, c: &Choice) -> usize {
        for t in c.runnable {
            if !self.priority.contains_key(t) {
                let p = self.rng.next();
                self.priority.insert(*t, p);
            }
        }
        let mut best = 0;
        for (i, t) in c.runnable.iter().enumerate() {
            if self.priority[t] > self.priority[&c.runnable[best]] {
                best = i;
            }
        }
        let ran = c.next[best];
        for (i, t) in c.runnable.iter().enumerate() {
            if i == best || conflict(&ran, &c.next[i]) {
                self.priority.remove(t);
            }
        }
        best
    }

    fn describe(&self) -> String {
        format!("pos:{}", self.seed)
    }
}
