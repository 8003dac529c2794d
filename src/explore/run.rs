//! One run of a script under a strategy, in this process: a fresh session,
//! its output kept, its outcome summed up.

use crate::diagnostics::{kind, ConcError};
use crate::runtime::engine::controlled::schedule::Token;
use crate::runtime::engine::controlled::strategy::Strategy;
use crate::runtime::footprint;
use crate::runtime::output::{Capture, Output};
use crate::session::{Session, SessionOptions};
use parking_lot::Mutex;
use std::sync::Arc;

/// How a run ended, as exploration compares runs: two runs with the same
/// outcome are the same to the user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Outcome {
    /// The exit status `conc FILE` would give (0, 1, 3 or `exit(n)`'s).
    pub status: i32,
    /// For a failure: the error kind and where (`AssertionError at f:3:5`)
    /// or the deadlock's first line.
    pub failure: Option<String>,
    /// Standard output.
    pub stdout: Vec<String>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        self.status != 0
    }

    /// The run hit the step limit (not a failure of the script as such,
    /// but a schedule under which it does not end).
    pub fn step_limit(&self) -> bool {
        self.failure
            .as_deref()
            .is_some_and(|f| f.starts_with(kind::INTERRUPTED))
    }

    /// The outcome as fixtures name it: the last line of output of a run
    /// that succeeded, else the error kind (`AssertionError`, `Deadlock`)
    /// or `exit N`.
    pub fn short(&self) -> String {
        match &self.failure {
            None if self.status == 0 => self.stdout.last().cloned().unwrap_or_default(),
            None => format!("exit {}", self.status),
            Some(f) => f.split([' ', ':']).next().unwrap_or_default().to_string(),
        }
    }

    /// How the outcome is shown in a list: the last line of output, quoted,
    /// and the failure if there is one.
    pub fn label(&self) -> String {
        let last = self
            .stdout
            .last()
            .map(|l| format!("{:?}", l))
            .unwrap_or_else(|| "(no output)".to_string());
        match &self.failure {
            None if self.status == 0 => last,
            None => format!("exit {} after {}", self.status, last),
            Some(f) => f.clone(),
        }
    }
}

/// What one run gives back.
pub struct Ran {
    pub outcome: Outcome,
    /// The full report of a failure, as `conc FILE` prints it.
    pub report: String,
    /// The decisions made, for a replay line.
    pub token: Option<Token>,
    /// Scheduling points passed.
    pub steps: u64,
}

/// The script, once read and parsed.
pub struct Script {
    pub name: String,
    pub source: String,
    pub argv: Vec<String>,
    /// Parsed as a session's first source.
    parsed: Option<crate::ast::Program>,
}

impl Script {
    pub fn new(name: String, source: String, argv: Vec<String>) -> Script {
        let parsed = crate::parser::parse(&source, crate::span::SourceId(0)).ok();
        Script {
            name,
            source,
            argv,
            parsed,
        }
    }

    /// The same script, parsed again, for another worker thread. Every run
    /// clones the parsed program, and its names, strings and functions are
    /// reference counted: two threads counting on the same counters make
    /// their cache lines travel between cores on every clone and drop
    /// (measured: runs 10-20 % slower with `--jobs 2` than alone).
    pub fn copy(&self) -> Script {
        Script::new(self.name.clone(), self.source.clone(), self.argv.clone())
    }
}

/// Standard output (as `Capture` keeps it) and every report, kept.
#[derive(Default)]
struct Kept {
    capture: Capture,
    reports: Mutex<String>,
}

impl Output for Kept {
    fn line(&self, text: &str) {
        self.capture.line(text)
    }

    fn text(&self, text: &str) {
        self.capture.text(text)
    }

    fn flush(&self) {
        self.capture.flush()
    }

    fn report(&self, text: &str) {
        self.reports.lock().push_str(text);
    }
}

/// Run `script` once under `strategy`, stopping it past `step_limit`
/// scheduling points. The script's random numbers are seeded with 0, as a
/// replay of the run seeds them.
pub fn run_once(script: &Script, strategy: Box<dyn Strategy>, step_limit: u64) -> Ran {
    let out = Arc::new(Kept::default());
    let watch = strategy.wants_transitions();
    if watch {
        footprint::start();
    }
    let mut session = Session::new(SessionOptions {
        argv: script.argv.clone(),
        out: out.clone(),
        seed: Some(0),
        strategy: Some(strategy),
        ..Default::default()
    });
    let scheduler = session.context().engine().scheduler().cloned();
    if let Some(s) = &scheduler {
        s.set_step_limit(step_limit);
    }
    let ran = match &script.parsed {
        Some(p) => session.run_parsed(&script.name, &script.source, p),
        None => session.run(&script.name, &script.source),
    };
    let result = ran.map(|_| ()).and_then(|_| session.finish());
    session.context().out.flush();
    if watch {
        footprint::stop();
    }
    let limit_hit = scheduler.as_ref().is_some_and(|s| s.limit_hit());
    let (status, failure, mut report) = match &result {
        Ok(()) => (0, None, String::new()),
        Err(ConcError::Runtime(e)) if e.exit_status().is_some() => {
            (e.exit_status().unwrap_or(1), None, String::new())
        }
        Err(e) => {
            let summary = match e {
                ConcError::Runtime(r) => {
                    let at = r
                        .span
                        .map(|s| format!(" at {}", session.context().sources.location(s)))
                        .unwrap_or_default();
                    let first = r.message.lines().next().unwrap_or_default();
                    if limit_hit {
                        format!("StepLimit: {}", first)
                    } else if r.is(kind::DEADLOCK) {
                        format!("{}: {}", r.kind, first)
                    } else {
                        format!("{}{}: {}", r.kind, at, first)
                    }
                }
                ConcError::Syntax(s) => format!("SyntaxError: {}", s.message),
            };
            (e.exit_code(), Some(summary), session.render(e))
        }
    };
    session.abandon_children();
    let reports = std::mem::take(&mut *out.reports.lock());
    if !reports.is_empty() {
        report = reports + &report;
    }
    if let Some(s) = &scheduler {
        s.close_open();
    }
    let token = session.replay_token();
    let steps = scheduler.as_ref().map(|s| s.steps()).unwrap_or(0);
    let stdout = std::mem::take(&mut *out.capture.lines.lock());
    Ran {
        outcome: Outcome {
            status,
            failure,
            stdout,
        },
        report,
        token,
        steps,
    }
}
