//! Exhaustive exploration: depth first over the tree of schedules, taking
//! either every branch (`dfs`, optionally with a preemption bound) or only
//! the branches a race calls for (`dpor`: source sets and sleep sets,
//! Abdulla, Aronis, Jonsson and Sagonas, POPL 2014).
//!
//! A run is re-executed from the start for every branch: a controlled run
//! is a function of its decisions, so replaying a prefix reaches the same
//! state. The tree keeps, for each state still of use, who could run, who
//! must still be tried from it (`backtrack`) and who has been (`done`,
//! which with the footprint of its transition is the sleep set of the
//! later branches).
//!
//! Several runs may be out at once (`--jobs`): each is a `Job` that names
//! the states its prefix passes. Two rules keep the result what one worker
//! would find. A state hands out its next branch only once the footprint
//! of the one before is known (its run has come back), so every branch
//! starts with the full sleep set of its earlier siblings; and a state is
//! forgotten only when nothing is left to try from it and no run below it
//! is out. Races found by any run add to the backtrack sets of the states
//! on its own path, whichever worker ran it. Complete runs are then still
//! one per class; only the number of runs cut short by sleep sets can
//! differ with the order runs come back in.

use super::log::{could_go_on, Event, Footprint, Guide, Log, Sleeper};
use crate::runtime::engine::controlled::strategy::{TransitionEnd, TIME_PASSES};
use crate::runtime::footprint::EVERYTHING;
use crate::runtime::int_hash::IntMap as HashMap;
use crate::runtime::waits::ThreadId;
use std::cmp::Reverse;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dpor,
    Dfs { preemptions: Option<u32> },
}

/// One state: where a transition began.
struct Node {
    /// The state before and the thread that ran from it to here.
    parent: Option<(usize, ThreadId)>,
    depth: usize,
    enabled: Vec<ThreadId>,
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
    /// A branch from here is out and its footprint not yet known.
    waiting: bool,
    /// States below that are kept, plus branches from here that are out.
    live: u32,
}

impl Node {
    fn is_done(&self, t: ThreadId) -> bool {
        self.done.iter().any(|(d, _)| *d == t)
    }

    fn is_asleep(&self, t: ThreadId) -> bool {
        self.sleep.iter().any(|(d, _)| *d == t)
    }

    /// Preemptions on the path once `ran` runs from here.
    fn preemptions_after(&self, ran: ThreadId) -> u32 {
        self.preemptions + u32::from(self.previous.is_some_and(|q| q != ran))
    }

    /// The next thread to try from here, lowest id first.
    fn pick(&self) -> Option<ThreadId> {
        self.backtrack
            .iter()
            .copied()
            .find(|t| !self.is_done(*t) && !self.is_asleep(*t))
    }
}

pub struct Tree {
    mode: Mode,
    /// Adversarial time: runs may choose time passing (see `Guide`).
    adversarial: bool,
    /// States by index; `None` once forgotten (the slot is reused).
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    /// States that may have a branch left to try, deepest first.
    pending: BTreeSet<(Reverse<usize>, usize)>,
    /// Runs handed out and not yet taken back.
    out: usize,
    /// States forgotten and not yet freed (see `forgotten`).
    forgotten: Vec<Node>,
    /// Branches a preemption bound left out.
    pub cut: u64,
    /// Runs that ended in a state where every thread was asleep.
    pub redundant: u64,
    /// Runs that reached their end.
    pub complete: u64,
    /// States where a busy-waiting thread was held back (see `SPIN_READS`).
    pub yields: u64,
}

/// States to free.
pub struct Forgotten(#[allow(dead_code)] Vec<Node>);

/// One run to make: its guide, and the states its prefix passes.
pub struct Job {
    pub guide: Guide,
    path: Vec<usize>,
}

/// What the tree says when asked for a run.
pub enum Next {
    Run(Job),
    /// Nothing to hand out until a run that is out comes back.
    Wait,
    Exhausted,
}

/// What one run adds to the tree, worked out from its log alone, so that
/// a worker does it without holding the tree: the states it reached past
/// its branch, and the reversals its races call for (at state `at`, one of
/// `initials` must be tried, `target` preferably).
pub struct Findings {
    /// The run took its prefix (else the script does not repeat itself).
    follows: bool,
    blocked: bool,
    yields: u64,
    /// The footprint of the branch's own transition.
    branch: Option<Footprint>,
    states: Vec<Fresh>,
    reversals: Vec<(usize, Vec<ThreadId>, ThreadId)>,
}

/// A state the run reached past its branch, all but its place in the tree.
struct Fresh {
    depth: usize,
    thread: ThreadId,
    enabled: Vec<ThreadId>,
    sleep: Vec<Sleeper>,
    footprint: Footprint,
    previous: Option<ThreadId>,
}

impl Findings {
    pub fn of(mode: Mode, job: &Job, log: &Log) -> Findings {
        let prefix = &job.guide.prefix;
        let b = prefix.len();
        let events = &log.events;
        let follows = events.len() >= b && (0..b).all(|k| events[k].thread == prefix[k]);
        let end = log.blocked_at.unwrap_or(events.len()).min(events.len());
        let mut findings = Findings {
            follows,
            blocked: log.blocked_at.is_some(),
            yields: log.yields,
            branch: None,
            states: Vec::new(),
            reversals: Vec::new(),
        };
        if !follows {
            return findings;
        }
        findings.branch = b.checked_sub(1).map(|p| events[p].footprint.clone());
        findings.states = (b..end)
            .map(|k| {
                let e = &events[k];
                Fresh {
                    depth: k,
                    thread: e.thread,
                    enabled: e.enabled.clone(),
                    sleep: log.sleep.get(k - b).cloned().unwrap_or_default(),
                    footprint: e.footprint.clone(),
                    previous: k.checked_sub(1).and_then(|p| could_go_on(&events[p], e)),
                }
            })
            .collect();
        if mode == Mode::Dpor {
            // Source-DPOR's race step: for every race `i < j` in the run
            // with `j` at or after the branch, the threads that can start
            // the reversed order at `i`.
            let events = &events[..end];
            let clocks = Clocks::of(events);
            for j in b.saturating_sub(1)..events.len() {
                for &i in &clocks.races[j] {
                    let initials = initials(events, &clocks, i, j);
                    findings.reversals.push((i, initials, events[j].thread));
                }
            }
        }
        findings
    }
}

/// The threads that can begin `v`: what follows `i` and does not depend on
/// it, then `j`.
fn initials(events: &[Event], clocks: &Clocks, i: usize, j: usize) -> Vec<ThreadId> {
    let mut first: HashMap<ThreadId, u32> = HashMap::default();
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
    initials
}

impl Tree {
    pub fn new(mode: Mode, adversarial: bool) -> Tree {
        Tree {
            mode,
            adversarial,
            nodes: Vec::new(),
            free: Vec::new(),
            pending: BTreeSet::new(),
            out: 0,
            forgotten: Vec::new(),
            cut: 0,
            redundant: 0,
            complete: 0,
            yields: 0,
        }
    }

    /// The states forgotten since the last call, for the caller to free
    /// once it no longer holds the tree (freeing is most of forgetting).
    pub fn forgotten(&mut self) -> Forgotten {
        Forgotten(std::mem::take(&mut self.forgotten))
    }

    /// Runs handed out and not yet taken back.
    pub fn out(&self) -> u64 {
        self.out as u64
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The first run: no prefix.
    pub fn first(&mut self) -> Job {
        self.out += 1;
        Job {
            guide: self.guide(Vec::new(), Vec::new()),
            path: Vec::new(),
        }
    }

    fn guide(&self, prefix: Vec<ThreadId>, branch_sleep: Vec<Sleeper>) -> Guide {
        Guide {
            prefix,
            branch_sleep,
            use_sleep: self.mode == Mode::Dpor,
            adversarial: self.adversarial,
        }
    }

    fn node(&self, id: usize) -> &Node {
        match &self.nodes[id] {
            Some(n) => n,
            None => unreachable!("a state on a run's path is kept while the run is out"),
        }
    }

    fn node_mut(&mut self, id: usize) -> &mut Node {
        match &mut self.nodes[id] {
            Some(n) => n,
            None => unreachable!("a state on a run's path is kept while the run is out"),
        }
    }

    fn add(&mut self, node: Node) -> usize {
        if let Some((p, _)) = node.parent {
            self.node_mut(p).live += 1;
        }
        match self.free.pop() {
            Some(id) => {
                self.nodes[id] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    /// Forget `id` and then its parents, as long as nothing is left to try
    /// from them and nothing below them is kept or out.
    fn release(&mut self, mut id: usize) {
        loop {
            let node = self.node(id);
            if node.live > 0 || node.waiting || node.pick().is_some() {
                return;
            }
            let (key, parent) = ((Reverse(node.depth), id), node.parent);
            self.pending.remove(&key);
            if let Some(node) = self.nodes[id].take() {
                self.forgotten.push(node);
            }
            self.free.push(id);
            match parent {
                Some((p, _)) => {
                    self.node_mut(p).live -= 1;
                    id = p;
                }
                None => return,
            }
        }
    }

    /// Note that state `id` may have a branch to hand out.
    fn offer(&mut self, id: usize) {
        let node = self.node(id);
        if node.pick().is_some() {
            self.pending.insert((Reverse(node.depth), id));
        }
    }

    /// Take back a run made for `job`, with what it found. `None` if it
    /// did not follow its prefix (the script does not repeat itself under
    /// control); else the preemptions of the path it took.
    pub fn absorb(&mut self, job: &Job, findings: Findings) -> Option<u32> {
        self.out -= 1;
        if !findings.follows {
            return None;
        }
        let prefix = &job.guide.prefix;
        let b = prefix.len();
        self.yields += findings.yields;
        if findings.blocked {
            self.redundant += 1;
        } else {
            self.complete += 1;
        }
        let mut path = job.path.clone();
        // The state the last transition ran from, and who ran it.
        let mut parent = None;
        if let (Some(&at), Some(fp)) = (path.last(), findings.branch) {
            let ran = prefix[b - 1];
            let node = self.node_mut(at);
            node.done.push((ran, fp));
            node.waiting = false;
            node.live -= 1;
            parent = Some((at, ran));
        }
        for fresh in findings.states {
            let preemptions = parent.map_or(0, |(p, ran)| self.node(p).preemptions_after(ran));
            let mut backtrack = BTreeSet::from([fresh.thread]);
            // Time passing never runs unless chosen, so no race calls for
            // it: wherever it may, it is tried (and is no preemption).
            if fresh.enabled.contains(&TIME_PASSES) {
                backtrack.insert(TIME_PASSES);
            }
            if let Mode::Dfs { preemptions: bound } = self.mode {
                let bounded = fresh.previous.is_some() && bound.is_some_and(|b| preemptions >= b);
                for t in &fresh.enabled {
                    if bounded && Some(*t) != fresh.previous && *t != TIME_PASSES {
                        self.cut += 1;
                    } else {
                        backtrack.insert(*t);
                    }
                }
            }
            let id = self.add(Node {
                parent,
                depth: fresh.depth,
                enabled: fresh.enabled,
                sleep: fresh.sleep,
                done: vec![(fresh.thread, fresh.footprint)],
                backtrack,
                preemptions,
                previous: fresh.previous,
                waiting: false,
                live: 0,
            });
            path.push(id);
            self.offer(id);
            parent = Some((id, fresh.thread));
        }
        for (i, initials, target) in findings.reversals {
            if let Some(&id) = path.get(i) {
                self.reverse(id, &initials, target);
                self.offer(id);
            }
        }
        let Some((last, ran)) = parent else {
            return Some(0);
        };
        let taken = self.node(last).preemptions_after(ran);
        // The path's states may now be of no more use, deepest first.
        self.release(last);
        Some(taken)
    }

    /// Make sure some thread that can start the reversed order is tried at
    /// state `id`.
    fn reverse(&mut self, id: usize, initials: &[ThreadId], target: ThreadId) {
        let node = self.node_mut(id);
        if initials.iter().any(|t| node.backtrack.contains(t)) {
            return;
        }
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

    /// The next branch, deepest first.
    pub fn next(&mut self) -> Next {
        let mut stale = Vec::new();
        let mut found = None;
        for &(depth, id) in &self.pending {
            let node = self.node(id);
            if node.waiting {
                continue;
            }
            match node.pick() {
                Some(p) => {
                    found = Some((depth, id, p));
                    break;
                }
                None => stale.push((depth, id)),
            }
        }
        for key in stale {
            self.pending.remove(&key);
        }
        let Some((depth, id, pick)) = found else {
            return if self.out > 0 {
                Next::Wait
            } else {
                Next::Exhausted
            };
        };
        let node = self.node_mut(id);
        node.waiting = true;
        node.live += 1;
        let mut branch_sleep = node.sleep.clone();
        branch_sleep.extend(node.done.iter().cloned());
        let mut path = vec![id];
        let mut prefix = vec![pick];
        let mut at = id;
        while let Some((p, ran)) = self.node(at).parent {
            path.push(p);
            prefix.push(ran);
            at = p;
        }
        path.reverse();
        prefix.reverse();
        debug_assert_eq!(path.len(), depth.0 + 1);
        self.out += 1;
        Next::Run(Job {
            guide: self.guide(prefix, branch_sleep),
            path,
        })
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
    let mut last_write: HashMap<u64, usize> = HashMap::default();
    let mut reads: HashMap<u64, HashMap<ThreadId, usize>> = HashMap::default();
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
        let mut index: HashMap<ThreadId, usize> = HashMap::default();
        for e in events {
            let n = index.len();
            index.entry(e.thread).or_insert(n);
        }
        let n = index.len();
        let mut clock: Vec<Vec<u32>> = Vec::with_capacity(events.len());
        let mut races = Vec::with_capacity(events.len());
        let mut last_of: Vec<Option<usize>> = vec![None; n];
        let mut parent: HashMap<ThreadId, usize> = HashMap::default();
        let mut last_write: HashMap<u64, usize> = HashMap::default();
        let mut reads: HashMap<u64, Vec<usize>> = HashMap::default();
        // The last time-passing event (adversarial time): it conflicts with
        // every access, before and after it.
        let mut universal: Option<usize> = None;
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
            let everything = e.footprint.iter().any(|a| a.key == EVERYTHING);
            if everything {
                preds.extend(last_write.values().copied());
                preds.extend(reads.values().flatten().copied());
            }
            for a in e.footprint.iter().filter(|a| edge(a.key)) {
                if let Some(&w) = last_write.get(&a.key) {
                    preds.push(w);
                }
                if a.write {
                    preds.extend(reads.get(&a.key).into_iter().flatten().copied());
                }
            }
            if !e.footprint.is_empty() {
                preds.extend(universal);
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
            if everything {
                // Everything later is ordered after it, and through it
                // after what came before.
                last_write.clear();
                reads.clear();
                universal = Some(j);
            }
            for a in e
                .footprint
                .iter()
                .filter(|a| edge(a.key) && a.key != EVERYTHING)
            {
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
