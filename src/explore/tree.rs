//! Exhaustive exploration: depth first over the tree of schedules, taking
//! either every branch (`dfs`, optionally with a preemption bound) or only
//! the branches a race calls for (`dpor`: source sets and sleep sets,
//! Abdulla, Aronis, Jonsson and Sagonas, POPL 2014).
//!
//! A run is re-executed from the start for every branch: a controlled run
//! is a function of its decisions, so replaying a prefix reaches the same
//! state. The tree keeps, for each state of the current path, who could
//! run, who ran, who must still be tried (`backtrack`) and who has been
//! (`done`, which with the footprint of its transition is the sleep set of
//! the later branches).

use super::log::{could_go_on, Event, Guide, Log, Sleeper};
use crate::runtime::engine::controlled::strategy::TransitionEnd;
use crate::runtime::waits::ThreadId;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dpor,
    Dfs { preemptions: Option<u32> },
}

/// One state on the current path: where a transition began.
struct Node {
    enabled: Vec<ThreadId>,
    chosen: ThreadId,
    /// The sleep set when the state was reached (DPOR).
    sleep: Vec<Sleeper>,
    /// Threads explored from here, with their transition's footprint.
    done: Vec<Sleeper>,
    /// Threads to explore from here (a superset of `done`'s).
    backtrack: BTreeSet<ThreadId>,
    /// Preemptions on the path up to this state.
    preemptions: u32,
    /// The thread that ran just before, if it could go on here.
    previous: Option<ThreadId>,
}

impl Node {
    fn is_done(&self, t: ThreadId) -> bool {
        self.done.iter().any(|(d, _)| *d == t)
    }

    fn is_asleep(&self, t: ThreadId) -> bool {
        self.sleep.iter().any(|(d, _)| *d == t)
    }
}

pub struct Tree {
    mode: Mode,
    nodes: Vec<Node>,
    /// Branches a preemption bound left out.
    pub cut: u64,
    /// Runs that ended in a state where every thread was asleep.
    pub redundant: u64,
    /// Runs that reached their end.
    pub complete: u64,
    /// States where a busy-waiting thread was held back (see `SPIN_READS`).
    pub yields: u64,
}

/// What the tree says after a run.
pub enum Next {
    Run(Guide),
    Exhausted,
}

impl Tree {
    pub fn new(mode: Mode) -> Tree {
        Tree {
            mode,
            nodes: Vec::new(),
            cut: 0,
            redundant: 0,
            complete: 0,
            yields: 0,
        }
    }

    /// The first run: no prefix.
    pub fn first(&self) -> Guide {
        Guide {
            prefix: Vec::new(),
            branch_sleep: Vec::new(),
            use_sleep: self.mode == Mode::Dpor,
        }
    }

    /// Take in a run that followed `guide`; false if it did not follow its
    /// prefix (the script does not repeat itself under control).
    pub fn absorb(&mut self, guide_len: usize, log: &Log) -> bool {
        let b = guide_len;
        let events = &log.events;
        if events.len() < b || (0..b).any(|k| events[k].thread != self.nodes[k].chosen) {
            return false;
        }
        let end = log.blocked_at.unwrap_or(events.len());
        self.yields += log.yields;
        if log.blocked_at.is_some() {
            self.redundant += 1;
        } else {
            self.complete += 1;
        }
        if b > 0 {
            let fp = events[b - 1].footprint.clone();
            let node = &mut self.nodes[b - 1];
            node.done.push((node.chosen, fp));
        }
        for (k, e) in events.iter().enumerate().take(end).skip(b) {
            let previous = k.checked_sub(1).and_then(|p| could_go_on(&events[p], e));
            let preemptions = match k.checked_sub(1) {
                None => 0,
                Some(p) => {
                    let before = &self.nodes[p];
                    before.preemptions
                        + u32::from(before.previous.is_some_and(|q| q != before.chosen))
                }
            };
            let mut backtrack = BTreeSet::from([e.thread]);
            if let Mode::Dfs { preemptions: bound } = self.mode {
                let bounded = previous.is_some() && bound.is_some_and(|b| preemptions >= b);
                for t in &e.enabled {
                    if bounded && Some(*t) != previous {
                        self.cut += 1;
                    } else {
                        backtrack.insert(*t);
                    }
                }
            }
            self.nodes.push(Node {
                enabled: e.enabled.clone(),
                chosen: e.thread,
                sleep: log.sleep.get(k - b).cloned().unwrap_or_default(),
                done: vec![(e.thread, e.footprint.clone())],
                backtrack,
                preemptions,
                previous,
            });
        }
        if self.mode == Mode::Dpor {
            self.add_races(&events[..end], b.saturating_sub(1));
        }
        true
    }

    /// The next branch, deepest first.
    pub fn next(&mut self) -> Next {
        while let Some(k) = self.nodes.len().checked_sub(1) {
            let node = &self.nodes[k];
            let pick = node
                .backtrack
                .iter()
                .copied()
                .find(|t| !node.is_done(*t) && !node.is_asleep(*t));
            match pick {
                Some(p) => {
                    let node = &mut self.nodes[k];
                    node.chosen = p;
                    let mut branch_sleep = node.sleep.clone();
                    branch_sleep.extend(node.done.iter().cloned());
                    let prefix = self.nodes.iter().map(|n| n.chosen).collect();
                    return Next::Run(Guide {
                        prefix,
                        branch_sleep,
                        use_sleep: self.mode == Mode::Dpor,
                    });
                }
                None => {
                    self.nodes.pop();
                }
            }
        }
        Next::Exhausted
    }

    /// Preemptions of the path that the last run took.
    pub fn preemptions(&self) -> u32 {
        self.nodes.last().map_or(0, |n| {
            n.preemptions + u32::from(n.previous.is_some_and(|q| q != n.chosen))
        })
    }

    /// Source-DPOR's race step: for every race `i < j` in the run with `j`
    /// new in it, make sure some thread that can start the reversed order
    /// is tried at `i`.
    fn add_races(&mut self, events: &[Event], from: usize) {
        let clocks = Clocks::of(events);
        for j in from..events.len() {
            for &i in &clocks.races[j] {
                self.reverse(events, &clocks, i, j);
            }
        }
    }

    fn reverse(&mut self, events: &[Event], clocks: &Clocks, i: usize, j: usize) {
        // v: what follows i and does not depend on it, then j.
        let mut first: HashMap<ThreadId, u32> = HashMap::new();
        let mut initials: Vec<ThreadId> = Vec::new();
        for k in (i + 1..j).chain(std::iter::once(j)) {
            if k != j && clocks.before(i, k) {
                continue;
            }
            let t = events[k].thread;
            let has_pred = first.iter().any(|(u, c)| clocks.at(k, *u) >= *c);
            if !has_pred && !initials.contains(&t) {
                initials.push(t);
            }
            first.entry(t).or_insert(clocks.own(k));
        }
        let node = &mut self.nodes[i];
        if initials.iter().any(|t| node.backtrack.contains(t)) {
            return;
        }
        let target = events[j].thread;
        let pick = if initials.contains(&target) && node.enabled.contains(&target) {
            Some(target)
        } else {
            initials.iter().copied().find(|t| node.enabled.contains(t))
        };
        match pick {
            Some(t) => {
                node.backtrack.insert(t);
            }
            // Not expected (initials can run at i); stay sound regardless.
            None => node.backtrack.extend(node.enabled.iter().copied()),
        }
    }
}

/// Whether a key names plain data (a global, a list, a map, a shared
/// variable) rather than a synchronising object.
pub fn is_data(key: u64) -> bool {
    crate::runtime::footprint::is_global(key) || key >> 61 == 1
}

/// For each event of a run, whether it is in a data race: it touches data
/// that another thread's event touches too, one of them writes, and
/// nothing but the order of those accesses themselves orders them (no
/// lock, queue, join or other synchronisation).
///
/// As race detectors do (FastTrack's epochs), each access is checked
/// against the last write of the data and the reads since, per thread:
/// linear in the length of the run.
pub fn racing(events: &[Event]) -> Vec<bool> {
    let clocks = Clocks::with_edges(events, |k| !is_data(k));
    let mut racing = vec![false; events.len()];
    let mut last_write: HashMap<u64, usize> = HashMap::new();
    let mut reads: HashMap<u64, HashMap<ThreadId, usize>> = HashMap::new();
    for (j, e) in events.iter().enumerate() {
        for a in e.footprint.iter().filter(|a| is_data(a.key)) {
            let mut against: Vec<usize> = last_write.get(&a.key).copied().into_iter().collect();
            if a.write {
                against.extend(
                    reads
                        .get(&a.key)
                        .into_iter()
                        .flat_map(|r| r.values().copied()),
                );
            }
            for i in against {
                if events[i].thread != e.thread && !clocks.before(i, j) {
                    racing[i] = true;
                    racing[j] = true;
                }
            }
            // Each thread's latest read stays to be checked against later
            // writes (a write of its own orders it only for itself).
            if a.write {
                last_write.insert(a.key, j);
            } else {
                reads.entry(a.key).or_default().insert(e.thread, j);
            }
        }
    }
    racing
}

/// Happens-before of one run, as vector clocks, and its races.
struct Clocks {
    /// Dense index of each thread.
    index: HashMap<ThreadId, usize>,
    clock: Vec<Vec<u32>>,
    /// The dense index of each event's thread.
    owner: Vec<usize>,
    /// For each event, the earlier events it races with.
    races: Vec<Vec<usize>>,
}

impl Clocks {
    fn of(events: &[Event]) -> Clocks {
        Self::with_edges(events, |_| true)
    }

    /// Happens-before where only accesses to keys `edge` accepts order
    /// events of different threads (besides starts and joins).
    fn with_edges(events: &[Event], edge: fn(u64) -> bool) -> Clocks {
        let mut index: HashMap<ThreadId, usize> = HashMap::new();
        for e in events {
            let n = index.len();
            index.entry(e.thread).or_insert(n);
        }
        let n = index.len();
        let mut clock: Vec<Vec<u32>> = Vec::with_capacity(events.len());
        let mut races = Vec::with_capacity(events.len());
        let mut last_of: Vec<Option<usize>> = vec![None; n];
        let mut parent: HashMap<ThreadId, usize> = HashMap::new();
        let mut last_write: HashMap<u64, usize> = HashMap::new();
        let mut reads: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut count = vec![0u32; n];
        let mut owner = Vec::with_capacity(events.len());
        for (j, e) in events.iter().enumerate() {
            let p = index[&e.thread];
            owner.push(p);
            let mut c = match last_of[p].or_else(|| parent.get(&e.thread).copied()) {
                Some(q) => clock[q].clone(),
                None => vec![0; n],
            };
            let mut preds: Vec<usize> = Vec::new();
            for a in e.footprint.iter().filter(|a| edge(a.key)) {
                if let Some(&w) = last_write.get(&a.key) {
                    preds.push(w);
                }
                if a.write {
                    preds.extend(reads.get(&a.key).into_iter().flatten().copied());
                }
            }
            preds.sort_unstable();
            preds.dedup();
            for &q in &preds {
                for (x, y) in c.iter_mut().zip(&clock[q]) {
                    *x = (*x).max(*y);
                }
            }
            count[p] += 1;
            c[p] = count[p];
            // A race: a dependency on another thread's event that nothing
            // else orders, and that could go the other way.
            let mut mine = Vec::new();
            for &i in &preds {
                let ti = index[&events[i].thread];
                if ti == p || !reversible(&events[i], e) {
                    continue;
                }
                let own = clock[i][ti];
                let through_other = preds
                    .iter()
                    .filter(|&&k| k != i)
                    .map(|&k| clock[k][ti])
                    .chain(last_of[p].map(|q| clock[q][ti]))
                    .any(|seen| seen >= own);
                if !through_other {
                    mine.push(i);
                }
            }
            races.push(mine);
            for a in e.footprint.iter().filter(|a| edge(a.key)) {
                if a.write {
                    last_write.insert(a.key, j);
                    reads.remove(&a.key);
                } else {
                    reads.entry(a.key).or_default().push(j);
                }
            }
            for s in &e.spawned {
                parent.insert(*s, j);
            }
            last_of[p] = Some(j);
            clock.push(c);
        }
        Clocks {
            index,
            clock,
            owner,
            races,
        }
    }

    /// Whether event `i` happens before event `k`.
    fn before(&self, i: usize, k: usize) -> bool {
        i < k && self.clock[k][self.owner[i]] >= self.own(i)
    }

    /// Event `k`'s knowledge of thread `t`'s events.
    fn at(&self, k: usize, t: ThreadId) -> u32 {
        self.index.get(&t).map_or(0, |&u| self.clock[k][u])
    }

    /// Event `i`'s count on its own thread.
    fn own(&self, i: usize) -> u32 {
        self.clock[i][self.owner[i]]
    }
}

/// Whether `j` could ever come before `i` (a join cannot pass the end of
/// the thread it waits for).
fn reversible(i: &Event, j: &Event) -> bool {
    !(i.end == TransitionEnd::Ended && j.joins() == Some(i.thread))
}
