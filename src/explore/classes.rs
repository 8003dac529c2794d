//! Which class of interleavings a sampled run fell in, and how many classes
//! the samples suggest there are.
//!
//! Two runs are in one class (one Mazurkiewicz trace, what DPOR runs once)
//! when every pair of conflicting transitions came in the same order. A
//! run's class is named by a fingerprint of exactly those orders: for each
//! transition (a thread and its how-manieth transition) and each key it
//! touched, how many writes of that key came before it, plus how many times
//! time had passed (adversarial time conflicts with everything). The
//! fingerprint is a sum, so the order in which independent transitions ran
//! does not enter it. A run that fails is counted by its failure alone
//! (`of_failure`).
//!
//! From how often each class came up, `Tally::estimate` gives Chao's
//! estimate of the number of classes (Chao, 1984, bias-corrected): the
//! classes seen, plus more the more classes were seen only once. It is a
//! lower bound when some classes are much rarer than others, as they are
//! under PCT and POS.

use super::log::{Observe, Observed};
use super::run::Outcome;
use crate::runtime::engine::controlled::strategy::{
    Choice, Strategy, Transition, TransitionEnd, TIME_PASSES,
};
use crate::runtime::footprint::EVERYTHING;
use crate::runtime::int_hash::IntMap;
use crate::runtime::waits::ThreadId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// A run's class, as it builds up.
#[derive(Default)]
pub struct Fingerprint {
    /// Transitions of each thread so far.
    steps: IntMap<ThreadId, u64>,
    /// Writes of each key so far.
    writes: IntMap<u64, u64>,
    /// Times time passed (adversarial time).
    passed: u64,
    sum: (u64, u64),
}

impl Fingerprint {
    /// The class, once the run is over.
    pub fn class(&self) -> u128 {
        (u128::from(self.sum.0) << 64) | u128::from(self.sum.1)
    }

    fn add(&mut self, fields: [u64; 5]) {
        let (a, b) = fields
            .iter()
            .fold((0x243f_6a88u64, 0x85a3_08d3u64), |(a, b), f| {
                (mix(a ^ f), mix(b.wrapping_add(*f) ^ 0x1319_8a2e))
            });
        self.sum = (self.sum.0.wrapping_add(a), self.sum.1.wrapping_add(b));
    }

    fn time_passes(&mut self) {
        self.add([EVERYTHING, 2, self.passed, TIME_PASSES, 0]);
        self.passed += 1;
    }

    fn transition(&mut self, t: &Transition) {
        if t.thread == TIME_PASSES {
            return self.time_passes();
        }
        // A thread that blocked did nothing; it runs the step again once
        // woken, and only that counts (how often it was tried depends on
        // the order of independent steps).
        if t.end == TransitionEnd::Blocked {
            return;
        }
        let step = self.steps.entry(t.thread).or_default();
        let event = *step;
        *step += 1;
        for a in t.footprint {
            if a.key == EVERYTHING {
                self.time_passes();
                continue;
            }
            let writes = self.writes.entry(a.key).or_default();
            let before = *writes;
            *writes += u64::from(a.write);
            self.add([
                a.key,
                u64::from(a.write) | (self.passed << 1),
                before,
                t.thread,
                event,
            ]);
        }
    }
}

/// The class a failed run is counted in: one per failure. After an error
/// (a deadlock, say) the other threads unwind in an order of the
/// scheduler's making, which is not a class of the script's own.
pub fn of_failure(outcome: &Outcome) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    outcome.hash(&mut h);
    (1 << 127) | u128::from(h.finish())
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Notes the class of a run as it goes (with `log::Observed`, under any
/// strategy).
pub struct Printed(Arc<Mutex<Fingerprint>>);

impl Printed {
    /// `inner`, watched; the fingerprint to read once the run is over.
    pub fn new(inner: Box<dyn Strategy>) -> (Observed<Printed>, Arc<Mutex<Fingerprint>>) {
        let print = Arc::new(Mutex::new(Fingerprint::default()));
        let observed = Observed {
            inner,
            observer: Printed(print.clone()),
        };
        (observed, print)
    }
}

impl Observe for Printed {
    fn chose(&mut self, c: &Choice, i: usize) {
        // The scheduler jumps to the next deadline with no transition of
        // its own: note it here.
        if c.runnable.get(i) == Some(&TIME_PASSES) {
            self.0.lock().time_passes();
        }
    }

    fn transition(&mut self, t: &Transition) {
        self.0.lock().transition(t);
    }
}

/// How many runs fell in each class.
#[derive(Default)]
pub struct Tally {
    runs: HashMap<u128, u64>,
}

impl Tally {
    pub fn add(&mut self, class: u128) {
        *self.runs.entry(class).or_default() += 1;
    }

    /// Distinct classes seen.
    pub fn seen(&self) -> u64 {
        self.runs.len() as u64
    }

    /// Chao's bias-corrected estimate of how many classes there are:
    /// `seen + f1 (f1 - 1) / (2 (f2 + 1))`, where f1 and f2 count the
    /// classes seen once and twice.
    pub fn estimate(&self) -> f64 {
        let count = |k: u64| self.runs.values().filter(|n| **n == k).count() as f64;
        let (f1, f2) = (count(1), count(2));
        self.seen() as f64 + f1 * (f1 - 1.0).max(0.0) / (2.0 * (f2 + 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chao_adds_nothing_once_every_class_came_twice() {
        let mut t = Tally::default();
        for c in [1, 1, 2, 2, 3, 3, 3] {
            t.add(c);
        }
        assert_eq!((t.seen(), t.estimate()), (3, 3.0));
        // Four classes seen once, none twice: 4 + 4 * 3 / 2.
        let mut t = Tally::default();
        for c in [1, 2, 3, 4] {
            t.add(c);
        }
        assert_eq!(t.estimate(), 10.0);
    }
}
