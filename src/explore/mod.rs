//! `conc explore`: run one script under many schedules on purpose, and say
//! what can happen: the set of outcomes, the first failure (shrunk, with
//! its replay line and swim lanes), and exactly how much was covered.
//!
//! Every run is a fresh session in this process under the controlled
//! engine (`run.rs`). Exhaustive strategies walk the tree of schedules
//! (`tree.rs`); sampling strategies draw schedules (`sample.rs`).

mod classes;
mod lanes;
mod log;
mod pos;
mod run;
mod texts;
mod timeline;
mod trace;
mod tree;

pub use lanes::{op_word, paint};
pub use run::{Outcome, Script};
pub use texts::Texts;

use crate::runtime::engine::controlled::schedule::{Schedule, PCT_HORIZON};
use crate::runtime::engine::controlled::strategy::{
    AdversarialTime, Pct, RandomWalk, Strategy, TransitionEnd,
};
use crate::runtime::engine::recorder::{Mark, ProcessTracks, Track};
use crate::runtime::int_hash::IntMap;
use crate::runtime::waits::ThreadId;
use crate::session::Session;
use log::{Guide, Guided, Log, Logged};
use parking_lot::Mutex;
use run::{run_once, Ran};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tree::{Mode, Next, Tree};

/// A strategy whose run is logged, transition by transition, to be shown
/// afterwards (`--trace`, `--lanes`).
pub struct Watched {
    log: Arc<Mutex<Log>>,
}

impl Watched {
    /// Wrap `strategy`; the wrapped one goes to the session.
    pub fn new(strategy: Box<dyn Strategy>) -> (Watched, Box<dyn Strategy>) {
        let log = Arc::new(Mutex::new(Log::default()));
        let logged = Box::new(Logged::new(strategy, log.clone()));
        (Watched { log }, logged)
    }

    /// The run as Chrome Trace Event JSON.
    pub fn chrome_json(&self, texts: &Texts) -> String {
        trace::chrome_json(&self.log.lock(), texts, trace::Clock::Virtual)
    }

    /// The run as Chrome Trace Event JSON, written to the file `path`.
    pub fn write_trace(&self, texts: &Texts, path: &std::path::Path) -> std::io::Result<()> {
        write_file(path, |out| {
            trace::write_chrome_json(&self.log.lock(), texts, trace::Clock::Virtual, out)
        })
    }

    /// The run as a self-contained HTML page of swim lanes.
    pub fn timeline(&self, texts: &Texts) -> String {
        timeline::html(&self.chrome_json(texts), &texts.name)
    }

    /// The run as swim lanes, `width` columns wide at most.
    pub fn lanes(&self, texts: &Texts, width: usize) -> String {
        lanes::draw(&self.log.lock(), texts, width)
    }
}

fn write_file(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn std::fmt::Write),
) -> std::io::Result<()> {
    let mut out = trace::ToFile::create(path)?;
    write(&mut out);
    out.finish()
}

/// A traced run on the OS engine (`--trace` or `--timeline` without
/// `--sched`): what its threads' marks say, on the real clock.
pub struct Recorded {
    log: Log,
}

impl Recorded {
    /// What `session` recorded (on the OS engine, traced), its process
    /// named after `name`; `keep` leaves it in the recorder (the REPL
    /// writes a trace more than once). `None` if it records nothing.
    pub fn of(session: &Session, name: &str, keep: bool) -> Option<Recorded> {
        let engine = session.context().engine();
        let r = engine.recorder()?;
        Some(Recorded::new(
            engine.pid(),
            format!("conc {} (pid {})", name, engine.pid()),
            r.tracks(&[session.main_thread()], keep),
            r.processes(keep),
        ))
    }

    /// This process's threads (`own`, of process `pid` named `name`) and
    /// the other processes' that its children sent.
    pub fn new(pid: u32, name: String, own: Vec<Track>, others: Vec<ProcessTracks>) -> Recorded {
        let mut log = Log::default();
        // Sorted by time are the marks' keys: (at, thread, index in its
        // track, track); the marks stay where they are.
        let mut keys: Vec<(u64, ThreadId, usize, usize)> = Vec::new();
        let mut tracks: Vec<Vec<Mark>> = Vec::new();
        let parts = std::iter::once(ProcessTracks {
            pid,
            name,
            tracks: own,
        })
        .chain(others);
        let parts: Vec<ProcessTracks> = parts.collect();
        // Where each pid's ids are: a step's object is named by its owner.
        let space_of: IntMap<u32, u64> = (parts.iter().enumerate())
            .map(|(i, p)| (p.pid, (i as u64) << 32))
            .collect();
        for (i, p) in parts.into_iter().enumerate() {
            // Thread ids are each process's own: the index keeps them apart.
            let space = (i as u64) << 32;
            log.processes.push((p.pid, p.name));
            for t in p.tracks {
                let thread = space | t.thread;
                log.names.insert(thread, t.name);
                log.pids.insert(thread, p.pid);
                let track = tracks.len();
                keys.extend(
                    t.marks
                        .iter()
                        .enumerate()
                        .map(|(k, m)| (m.at, thread, k, track)),
                );
                tracks.push(t.marks);
            }
        }
        keys.sort_unstable();
        log.events.reserve(keys.len());
        // A thread's start names its spawner: the spawner's step at that
        // moment (its `spawn`) is where the arrow starts.
        let mut last_of: IntMap<ThreadId, usize> = IntMap::default();
        for (at, thread, k, track) in keys {
            let m = &tracks[track][k];
            let space = thread & !0xffff_ffff;
            let spawned_by = m.spawned_by.map(|s| space | s);
            if let Some(k) = spawned_by.and_then(|p| last_of.get(&p)) {
                log.events[*k].spawned.push(thread);
            }
            last_of.insert(thread, log.events.len());
            log.events.push(log::Event {
                thread,
                step: m.step,
                end: if m.ended {
                    TransitionEnd::Ended
                } else {
                    TransitionEnd::Point
                },
                footprint: Default::default(),
                spawned: Vec::new(),
                enabled: Vec::new(),
                began: at,
                parked: m.parked,
                // `None`: an object of the top process (see `Mark::home`).
                home: Some(
                    m.home
                        .and_then(|pid| space_of.get(&pid).copied())
                        .unwrap_or(0),
                ),
            });
        }
        Recorded { log }
    }

    /// The run as Chrome Trace Event JSON.
    pub fn chrome_json(&self, texts: &Texts) -> String {
        trace::chrome_json(&self.log, texts, trace::Clock::Real)
    }

    /// The run as Chrome Trace Event JSON, written to the file `path` as it
    /// is made (a long run's trace is hundreds of megabytes).
    pub fn write_trace(&self, texts: &Texts, path: &std::path::Path) -> std::io::Result<()> {
        write_file(path, |out| {
            trace::write_chrome_json(&self.log, texts, trace::Clock::Real, out)
        })
    }

    /// The run as a self-contained HTML page of swim lanes.
    pub fn timeline(&self, texts: &Texts) -> String {
        timeline::html(&self.chrome_json(texts), &texts.name)
    }

    /// The run as swim lanes, `width` columns wide at most.
    pub fn lanes(&self, texts: &Texts, width: usize) -> String {
        lanes::draw(&self.log, texts, width)
    }
}

/// How schedules are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum How {
    /// Exhaustive if small enough, else sampling.
    Auto,
    Dpor,
    Dfs {
        preemptions: Option<u32>,
    },
    Random,
    Pct {
        depth: u32,
    },
    Pos,
}

impl How {
    pub fn parse(text: &str) -> Result<How, String> {
        match text {
            "auto" => Ok(How::Auto),
            "dpor" => Ok(How::Dpor),
            "dfs" => Ok(How::Dfs { preemptions: None }),
            "random" => Ok(How::Random),
            "pos" => Ok(How::Pos),
            _ => match text.strip_prefix("pct:").map(str::parse::<u32>) {
                Some(Ok(depth)) if (1..=64).contains(&depth) => Ok(How::Pct { depth }),
                Some(_) => Err(format!("`{}`: the PCT depth must be 1 to 64", text)),
                None => Err(format!(
                    "unknown strategy `{}`: use auto, dpor, dfs, random, pct:DEPTH or pos",
                    text
                )),
            },
        }
    }

    fn name(&self) -> String {
        match self {
            How::Auto => "auto".into(),
            How::Dpor => "dpor".into(),
            How::Dfs { preemptions: None } => "dfs".into(),
            How::Dfs {
                preemptions: Some(k),
            } => format!("dfs, at most {} preemption{}", k, plural(*k as u64)),
            How::Random => "random".into(),
            How::Pct { depth } => format!("pct:{}", depth),
            How::Pos => "pos".into(),
        }
    }
}

pub struct Options {
    pub how: How,
    /// At most this many schedules (sampling: exactly this many).
    pub schedules: Option<u64>,
    pub time: Option<Duration>,
    /// Go on after a failure: the whole outcome set.
    pub all: bool,
    pub jobs: usize,
    /// A run that passes this many scheduling points is stopped (an
    /// outcome of its own).
    pub max_steps: u64,
    /// Print the swim lanes and replay line of a failure.
    pub show_failure: bool,
    /// Keep the failure's run as Chrome Trace Event JSON (`Failure::trace`).
    pub trace: bool,
    /// `--time adversarial`: a timeout may fire while threads can still
    /// run (sampling only: `AdversarialTime`).
    pub adversarial: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            how: How::Auto,
            schedules: None,
            time: None,
            all: false,
            jobs: 1,
            max_steps: 20_000,
            show_failure: true,
            trace: false,
            adversarial: false,
        }
    }
}

/// Sampling takes this many schedules unless told otherwise.
const DEFAULT_SAMPLES: u64 = 1_000;
/// `auto` tries DPOR for this many runs before it samples instead.
const AUTO_DPOR_RUNS: u64 = 10_000;

/// How far exploration got.
#[derive(Clone, Debug, PartialEq)]
pub enum Coverage {
    /// Every class (DPOR) or every schedule (dfs) was run.
    Exhaustive {
        classes: u64,
        redundant: u64,
        /// Busy-wait re-reads taken as yields.
        yields: u64,
    },
    /// dfs with a preemption bound ran every schedule within it.
    Bounded {
        bound: u32,
        schedules: u64,
        cut: u64,
    },
    Sampled {
        schedules: u64,
        /// Distinct classes of interleavings the samples fell in.
        seen: u64,
        /// Chao's estimate of how many there are (`classes.rs`).
        estimate: f64,
    },
    /// It stopped early: why.
    Stopped { schedules: u64, why: String },
}

impl Coverage {
    pub fn exhaustive(&self) -> bool {
        matches!(self, Coverage::Exhaustive { .. })
            || matches!(self, Coverage::Bounded { cut: 0, .. })
    }

    /// The last line of the output.
    pub fn line(&self, how: &How) -> String {
        match self {
            Coverage::Exhaustive {
                classes,
                redundant,
                yields,
            } => {
                let mut extra = String::new();
                if *redundant > 0 {
                    extra += &format!(
                        ", {} redundant run{} cut short",
                        redundant,
                        plural(*redundant)
                    );
                }
                if *yields > 0 {
                    extra += &format!(
                        ", busy-waits taken as yields {} time{}",
                        yields,
                        plural(*yields)
                    );
                }
                let unit = if *how == How::Dpor || *how == How::Auto {
                    "class"
                } else {
                    "schedule"
                };
                format!(
                    "exhaustive: all {} ({}{})",
                    count(*classes, unit),
                    how.name(),
                    extra
                )
            }
            Coverage::Bounded {
                bound,
                schedules,
                cut: 0,
            } => format!(
                "exhaustive: all {} schedule{} (the preemption bound {} cut nothing)",
                schedules,
                plural(*schedules),
                bound
            ),
            Coverage::Bounded {
                bound,
                schedules,
                cut,
            } => format!(
                "NOT exhaustive: preemption bound {}, {} branch{} cut ({} schedule{} run)",
                bound,
                cut,
                if *cut == 1 { "" } else { "es" },
                schedules,
                plural(*schedules)
            ),
            Coverage::Sampled {
                schedules,
                seen,
                estimate,
            } => format!(
                "NOT exhaustive: sampled {} schedule{} ({}) of an estimated {} or more classes ({} seen)",
                schedules,
                plural(*schedules),
                how.name(),
                approx(estimate.max(*seen as f64)),
                seen
            ),
            Coverage::Stopped { schedules, why } => format!(
                "NOT exhaustive: {} after {} schedule{} ({})",
                why,
                schedules,
                plural(*schedules),
                how.name()
            ),
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// "1 class", "4 classes", "1 schedule", "6 schedules".
fn count(n: u64, unit: &str) -> String {
    let s = if n == 1 {
        ""
    } else if unit.ends_with('s') {
        "es"
    } else {
        "s"
    };
    format!("{} {}{}", n, unit, s)
}

fn approx(x: f64) -> String {
    if x < 1e6 {
        format!("{:.0}", x)
    } else {
        format!("{:.1e}", x)
    }
}

/// A failure and how to see it again.
pub struct Failure {
    pub outcome: Outcome,
    pub report: String,
    /// `replay:TOKEN`.
    pub schedule: String,
    pub preemptions: u32,
    pub shared_steps: usize,
    pub lanes: String,
    /// The shown run as Chrome Trace Event JSON, when asked for.
    pub trace: Option<String>,
}

/// What exploration found.
pub struct Report {
    pub outcomes: BTreeMap<Outcome, u64>,
    pub coverage: Coverage,
    pub first_failure: Option<Failure>,
    pub how: How,
    /// The script ran differently under the same decisions.
    pub nondeterministic: bool,
    /// Schedules run (with DPOR, also the ones cut short as redundant).
    pub runs: u64,
}

impl Report {
    /// `outcomes over 4 classes: "2" x3, "1" x1`.
    pub fn outcome_line(&self) -> String {
        let total: u64 = self.outcomes.values().sum();
        let mut sorted: Vec<(&Outcome, &u64)> = self.outcomes.iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = sorted
            .iter()
            .map(|(o, n)| format!("{} x{}", o.label(), n))
            .collect();
        let unit = match (&self.how, &self.coverage) {
            (How::Dpor | How::Auto, Coverage::Exhaustive { .. }) => "class",
            _ => "schedule",
        };
        let head = format!("outcomes over {}:", count(total, unit));
        let one_line = format!("{} {}", head, list.join(", "));
        if one_line.chars().count() <= 80 {
            return one_line;
        }
        let rows: Vec<String> = sorted
            .iter()
            .map(|(o, n)| format!("  x{:<6} {}", n, o.label()))
            .collect();
        format!("{}\n{}", head, rows.join("\n"))
    }

    pub fn failed(&self) -> bool {
        self.outcomes.keys().any(Outcome::failed)
    }

    /// For `conc test`: one fact per line (`exhaustive yes`, `classes 4`,
    /// `outcome COUNT SHORT`).
    pub fn porcelain(&self) -> String {
        let mut out = String::new();
        let yes = if self.coverage.exhaustive() {
            "yes"
        } else {
            "no"
        };
        out.push_str(&format!("exhaustive {}\n", yes));
        out.push_str(&format!("runs {}\n", self.runs));
        if let Coverage::Exhaustive { classes, .. } = &self.coverage {
            out.push_str(&format!("classes {}\n", classes));
        }
        let mut short: BTreeMap<String, u64> = BTreeMap::new();
        for (o, n) in &self.outcomes {
            *short.entry(o.short()).or_default() += n;
        }
        for (label, n) in short {
            out.push_str(&format!("outcome {} {}\n", n, label));
        }
        out.push_str(&format!("coverage {}\n", self.coverage.line(&self.how)));
        out
    }
}

/// Set by Ctrl-C: stop after the run under way.
pub fn interrupt_flag() -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    &FLAG
}

struct Budget {
    started: Instant,
    time: Option<Duration>,
    schedules: Option<u64>,
}

impl Budget {
    /// Why exploration must stop now, if it must.
    fn over(&self, runs: u64) -> Option<String> {
        if interrupt_flag().load(Ordering::Relaxed) {
            return Some("interrupted (Ctrl-C)".into());
        }
        if let Some(n) = self.schedules.filter(|n| runs >= *n) {
            return Some(format!("the budget of {} schedules was used up", n));
        }
        if self.time.is_some_and(|t| self.started.elapsed() >= t) {
            return Some(format!(
                "the time limit ({} s) ran out",
                self.time.map_or(0, |t| t.as_secs())
            ));
        }
        None
    }
}

/// Explore `script` as `options` say.
pub fn explore(script: &Script, options: &Options) -> Report {
    let budget = Budget {
        started: Instant::now(),
        time: options.time,
        schedules: options.schedules,
    };
    let mut state = Found::default();
    let coverage = match &options.how {
        How::Dpor => exhaustive(script, options, Mode::Dpor, &budget, &mut state),
        How::Dfs { preemptions } => exhaustive(
            script,
            options,
            Mode::Dfs {
                preemptions: *preemptions,
            },
            &budget,
            &mut state,
        ),
        How::Auto => {
            let first = Budget {
                schedules: Some(options.schedules.unwrap_or(u64::MAX).min(AUTO_DPOR_RUNS)),
                ..budget
            };
            let c = exhaustive(script, options, Mode::Dpor, &first, &mut state);
            let done = c.exhaustive() || state.stop_now(options) || state.nondeterministic;
            if done {
                c
            } else {
                // Too many classes to run them all: sample the rest.
                let rest = Budget {
                    schedules: options.schedules.map(|n| n.saturating_sub(state.runs)),
                    ..first
                };
                let mut rest = rest;
                rest.schedules = Some(rest.schedules.unwrap_or(AUTO_DPOR_RUNS));
                state.outcomes.clear();
                let tried = std::mem::take(&mut state.runs);
                let c = sample(script, options, &How::Pct { depth: 3 }, &rest, &mut state);
                state.runs += tried;
                c
            }
        }
        how => sample(script, options, how, &budget, &mut state),
    };
    let how = match (&options.how, &coverage) {
        (How::Auto, Coverage::Exhaustive { .. }) => How::Dpor,
        (How::Auto, Coverage::Sampled { .. }) => How::Pct { depth: 3 },
        (h, _) => h.clone(),
    };
    let first_failure = state.failure.take().map(|f| {
        if options.show_failure {
            shrink(script, options, f)
        } else {
            f
        }
    });
    Report {
        outcomes: state.outcomes,
        coverage,
        first_failure,
        how,
        nondeterministic: state.nondeterministic,
        runs: state.runs,
    }
}

/// What the runs so far found.
#[derive(Default)]
struct Found {
    outcomes: BTreeMap<Outcome, u64>,
    failure: Option<Failure>,
    runs: u64,
    nondeterministic: bool,
}

impl Found {
    fn stop_now(&self, options: &Options) -> bool {
        self.failure.is_some() && !options.all
    }

    fn record(&mut self, ran: &Ran, preemptions: u32, log: Option<&Log>) {
        // Most runs repeat an outcome already seen: count it uncloned.
        match self.outcomes.get_mut(&ran.outcome) {
            Some(n) => *n += 1,
            None => {
                self.outcomes.insert(ran.outcome.clone(), 1);
            }
        }
        if ran.outcome.failed() && self.failure.is_none() {
            self.failure = Some(failure_of(ran, preemptions, log));
        }
    }
}

fn failure_of(ran: &Ran, preemptions: u32, log: Option<&Log>) -> Failure {
    let schedule = ran
        .token
        .as_ref()
        .map(|t| format!("replay:{}", t))
        .unwrap_or_default();
    let shared_steps = log.map_or(0, lanes::shared_steps);
    Failure {
        outcome: ran.outcome.clone(),
        report: ran.report.clone(),
        schedule,
        preemptions,
        shared_steps,
        lanes: String::new(),
        trace: None,
    }
}

/// One run steered by `guide`, and its log.
fn guided_run(script: &Script, guide: Guide, max_steps: u64) -> (Ran, Log) {
    let log = Arc::new(Mutex::new(Log::default()));
    let ran = run_once(script, Box::new(Guided::new(guide, log.clone())), max_steps);
    let log = std::mem::take(&mut *log.lock());
    (ran, log)
}

/// What the workers of an exhaustive search share.
struct Search<'a> {
    tree: Tree,
    found: &'a mut Found,
    /// Why the search ended early, once it has.
    stopped: Option<String>,
}

impl Search<'_> {
    /// Take back a run: its outcome, and what it adds to the tree.
    fn absorb(
        &mut self,
        job: &tree::Job,
        ran: &Ran,
        log: &Log,
        findings: tree::Findings,
        options: &Options,
    ) {
        self.found.runs += 1;
        match self.tree.absorb(job, findings) {
            None => {
                self.found.nondeterministic = true;
                self.stopped =
                    Some("the script does not repeat itself under the same decisions".into());
            }
            Some(preemptions) => {
                if log.blocked_at.is_none() {
                    self.found.record(ran, preemptions, Some(log));
                }
                if self.found.stop_now(options) {
                    self.stopped = Some("stopped at the first failure".into());
                }
            }
        }
    }
}

/// The next run to make, waiting while the runs that are out may still add
/// some; `None` when the search is over.
fn next_job(
    s: &mut parking_lot::MutexGuard<'_, Search<'_>>,
    budget: &Budget,
    turn: &parking_lot::Condvar,
) -> Option<tree::Job> {
    loop {
        if s.stopped.is_some() {
            return None;
        }
        // Runs still out count against the budget too.
        if let Some(why) = budget.over(s.found.runs + s.tree.out()) {
            s.stopped = Some(why);
            turn.notify_all();
            return None;
        }
        match s.tree.next() {
            Next::Run(j) => return Some(j),
            Next::Wait => turn.wait(s),
            Next::Exhausted => {
                turn.notify_all();
                return None;
            }
        }
    }
}

fn exhaustive(
    script: &Script,
    options: &Options,
    mode: Mode,
    budget: &Budget,
    found: &mut Found,
) -> Coverage {
    let mut tree = Tree::new(mode, options.adversarial);
    let first = tree.first();
    let search = Mutex::new(Search {
        tree,
        found,
        stopped: None,
    });
    let turn = parking_lot::Condvar::new();
    let work = |mut job: Option<tree::Job>| {
        let script = &script.copy();
        if job.is_none() {
            job = next_job(&mut search.lock(), budget, &turn);
        }
        while let Some(j) = job {
            let (ran, log) = guided_run(script, j.guide.clone(), options.max_steps);
            // What a run adds depends on it alone: work it out unlocked.
            let findings = tree::Findings::of(mode, &j, &log);
            let mut s = search.lock();
            s.absorb(&j, &ran, &log, findings, options);
            turn.notify_all();
            job = next_job(&mut s, budget, &turn);
            let forgotten = s.tree.forgotten();
            drop(s);
            drop(forgotten);
        }
    };
    let jobs = options.jobs.max(1);
    std::thread::scope(|scope| {
        let work = &work;
        // The first run must come back before there is anything else to do.
        for _ in 1..jobs {
            let started = std::thread::Builder::new()
                .stack_size(crate::runtime::threads::THREAD_STACK)
                .spawn_scoped(scope, || work(None));
            if started.is_err() {
                break;
            }
        }
        work(Some(first));
    });
    let Search {
        tree,
        found,
        stopped,
    } = search.into_inner();
    if let Some(why) = stopped {
        return Coverage::Stopped {
            schedules: found.runs,
            why,
        };
    }
    match mode {
        Mode::Dfs {
            preemptions: Some(bound),
        } => Coverage::Bounded {
            bound,
            schedules: tree.complete,
            cut: tree.cut,
        },
        _ => Coverage::Exhaustive {
            classes: tree.complete,
            redundant: tree.redundant,
            yields: tree.yields,
        },
    }
}

/// The strategy of the `n`th sample.
fn sampler(how: &How, n: u64, horizon: u64, adversarial: bool) -> Box<dyn Strategy> {
    let s: Box<dyn Strategy> = match how {
        How::Pct { depth } => Box::new(Pct::new(*depth, n, horizon)),
        How::Pos => Box::new(pos::Pos::new(n)),
        _ => Box::new(RandomWalk::new(n)),
    };
    match adversarial {
        true => Box::new(AdversarialTime::new(s)),
        false => s,
    }
}

fn sample(
    script: &Script,
    options: &Options,
    how: &How,
    budget: &Budget,
    found: &mut Found,
) -> Coverage {
    let total = budget.schedules.unwrap_or(DEFAULT_SAMPLES);
    // PCT spreads its change points over the run's length: measure it.
    let horizon = match how {
        How::Pct { .. } => run_once(script, Box::new(RandomWalk::new(0)), options.max_steps)
            .steps
            .clamp(1, 100 * PCT_HORIZON),
        _ => PCT_HORIZON,
    };
    let jobs = options.jobs.max(1) as u64;
    let next = std::sync::atomic::AtomicU64::new(1);
    let shared = Mutex::new(std::mem::take(found));
    let tally = Mutex::new(classes::Tally::default());
    let stop = AtomicBool::new(false);
    let why = Mutex::new(None::<String>);
    let work = || {
        let script = &script.copy();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n > total {
                return;
            }
            if let Some(w) = budget.over(n - 1) {
                if !w.starts_with("the budget") {
                    *why.lock() = Some(w);
                }
                stop.store(true, Ordering::Relaxed);
                return;
            }
            let (strategy, print) =
                classes::Printed::new(sampler(how, n, horizon, options.adversarial));
            let ran = run_once(script, Box::new(strategy), options.max_steps);
            let class = match ran.outcome.failed() {
                true => classes::of_failure(&ran.outcome),
                false => print.lock().class(),
            };
            tally.lock().add(class);
            let mut f = shared.lock();
            f.runs += 1;
            f.record(&ran, 0, None);
            if f.stop_now(options) {
                stop.store(true, Ordering::Relaxed);
            }
        }
    };
    std::thread::scope(|scope| {
        let work = &work;
        for _ in 0..jobs {
            // Each worker drives its own sessions on its own OS thread,
            // with a stack as big as the main script gets.
            let started = std::thread::Builder::new()
                .stack_size(crate::runtime::threads::THREAD_STACK)
                .spawn_scoped(scope, work);
            if started.is_err() {
                // No thread to be had: this one does the work.
                work();
            }
        }
    });
    *found = shared.into_inner();
    let schedules = found.runs;
    if found.stop_now(options) {
        return Coverage::Stopped {
            schedules,
            why: "stopped at the first failure".into(),
        };
    }
    if let Some(why) = why.into_inner() {
        return Coverage::Stopped { schedules, why };
    }
    let tally = tally.into_inner();
    Coverage::Sampled {
        schedules,
        seen: tally.seen(),
        estimate: tally.estimate(),
    }
}

/// Make a failure as small as it gets: the fewest preemptions (bounded
/// search from 0 up), then the fewest steps among those found; then run it
/// once more with every transition logged, for the swim lanes.
fn shrink(script: &Script, options: &Options, failure: Failure) -> Failure {
    let wanted = failure.outcome.clone();
    let mut best: Option<(u32, usize, Vec<u64>)> = None;
    // A sampled failure does not know its preemptions: try up to 3.
    for bound in 0..=failure.preemptions.clamp(1, 3) {
        let mut tree = Tree::new(
            Mode::Dfs {
                preemptions: Some(bound),
            },
            options.adversarial,
        );
        let mut job = tree.first();
        for _ in 0..SHRINK_RUNS {
            let (ran, log) = guided_run(script, job.guide.clone(), options.max_steps);
            let Some(p) = tree.absorb(&job, tree::Findings::of(tree.mode(), &job, &log)) else {
                break;
            };
            if ran.outcome == wanted {
                let steps = lanes::shared_steps(&log);
                let path: Vec<u64> = log.events.iter().map(|e| e.thread).collect();
                if best
                    .as_ref()
                    .is_none_or(|(bp, bs, _)| (p, steps) < (*bp, *bs))
                {
                    best = Some((p, steps, path));
                }
            }
            match tree.next() {
                Next::Run(j) => job = j,
                Next::Wait | Next::Exhausted => break,
            }
        }
        if best.is_some() {
            break;
        }
    }
    let prefix = match best {
        Some((_, _, path)) => path,
        None => return show(script, options, failure, None),
    };
    show(script, options, failure, Some(prefix))
}

/// Runs a bounded search may take per bound while shrinking.
const SHRINK_RUNS: usize = 2_000;

/// Run the failure (or the shrunk schedule `prefix`) once more, logged,
/// and draw it.
fn show(script: &Script, options: &Options, failure: Failure, prefix: Option<Vec<u64>>) -> Failure {
    let log = Arc::new(Mutex::new(Log::default()));
    let strategy: Box<dyn Strategy> = match &prefix {
        Some(p) => Box::new(Guided::new(
            Guide {
                prefix: p.clone(),
                branch_sleep: Vec::new(),
                use_sleep: false,
                adversarial: options.adversarial,
            },
            log.clone(),
        )),
        None => match Schedule::parse(&failure.schedule, || 0) {
            Ok(s) => Box::new(Logged::new(s.strategy(), log.clone())),
            Err(_) => return failure,
        },
    };
    let ran = run_once(script, strategy, options.max_steps);
    let log = std::mem::take(&mut *log.lock());
    if ran.outcome != failure.outcome {
        return failure;
    }
    let texts = Texts::script(&script.name, &script.source);
    Failure {
        outcome: ran.outcome.clone(),
        report: ran.report.clone(),
        schedule: ran
            .token
            .as_ref()
            .map(|t| format!("replay:{}", t))
            .unwrap_or(failure.schedule),
        preemptions: lanes::preemptions(&log),
        shared_steps: lanes::shared_steps(&log),
        lanes: lanes::draw(&log, &texts, 80),
        trace: options
            .trace
            .then(|| trace::chrome_json(&log, &texts, trace::Clock::Virtual)),
    }
}
