//! `:sched` and `:trace`: which engine the REPL's entries run on, and
//! whether what they do is written down. Either change goes on in a new
//! session that keeps the definitions (`Session::switch`).

use super::printer::ReplOutput;
use crate::explore::{Recorded, Texts, Watched};
use crate::runtime::engine::controlled::schedule::Schedule;
use crate::runtime::engine::controlled::strategy::Strategy;
use crate::runtime::engine::Rng;
use crate::session::{Session, SessionOptions};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Who decides which thread runs.
#[derive(Clone)]
pub enum Sched {
    /// The OS, on real threads (the default).
    Os,
    /// A seeded strategy of the controlled engine, in virtual time.
    Schedule(Schedule),
    /// The user, step by step (`:step`, `:run`).
    Manual,
}

#[derive(Clone)]
pub struct Mode {
    pub sched: Sched,
    pub tracing: bool,
}

impl Default for Mode {
    fn default() -> Self {
        Mode {
            sched: Sched::Os,
            tracing: false,
        }
    }
}

impl Mode {
    pub fn describe(&self) -> String {
        let sched = match &self.sched {
            Sched::Os => "os (real threads)".to_string(),
            Sched::Schedule(s) => format!("{} (controlled, virtual time)", s.text()),
            Sched::Manual => "manual (you choose each step)".to_string(),
        };
        let trace = if self.tracing { "on" } else { "off" };
        format!("entries run under {sched}; tracing is {trace}")
    }

    pub fn controlled(&self) -> bool {
        !matches!(self.sched, Sched::Os)
    }
}

/// What `:sched ARG` asks for.
pub fn parse_sched(arg: &str) -> Result<Sched, String> {
    match arg {
        "os" => Ok(Sched::Os),
        "manual" => Ok(Sched::Manual),
        a if a.starts_with("replay:") => {
            Err("a replay token replays a script: conc --sched replay:TOKEN FILE".to_string())
        }
        a => match Schedule::parse(a, Rng::fresh_seed)? {
            Schedule::Replay(_) => Err("replay is for scripts".to_string()),
            s => Ok(Sched::Schedule(s)),
        },
    }
}

/// Go on in `session` under `mode`; gives the log a traced controlled
/// run writes. `free` is what `:run` sets under manual scheduling.
pub fn switch(
    session: &mut Session,
    mode: &Mode,
    out: &Arc<ReplOutput>,
    color: bool,
    free: &Arc<AtomicBool>,
) -> Result<Option<Watched>, String> {
    let strategy: Option<Box<dyn Strategy>> = match &mode.sched {
        Sched::Os => None,
        Sched::Schedule(s) => Some(s.strategy()),
        Sched::Manual => Some(Box::new(super::stepper::manual(
            session.context().sources.clone(),
            free.clone(),
        ))),
    };
    let (watched, strategy) = match strategy {
        Some(s) if mode.tracing => {
            let (w, s) = Watched::new(s);
            (Some(w), Some(s))
        }
        s => (None, s),
    };
    let seed = match &mode.sched {
        Sched::Schedule(s) => Some(s.seed()),
        _ => None,
    };
    session.switch(SessionOptions {
        out: out.clone(),
        deadlock_exits: false,
        color,
        seed,
        strategy,
        record: mode.tracing && !mode.controlled(),
        ..Default::default()
    })?;
    Ok(watched)
}

/// What was traced since `:trace on`, as Chrome Trace Event JSON, or as
/// the timeline page.
pub fn traced(session: &Session, watched: Option<&Watched>, page: bool) -> Option<String> {
    let texts = Texts::of("repl", &session.context().sources);
    if let Some(w) = watched {
        return Some(if page {
            w.timeline(&texts)
        } else {
            w.chrome_json(&texts)
        });
    }
    // Kept in the recorder: a later `:trace FILE` writes it all again.
    let recorded = Recorded::of(session, "repl", true)?;
    Some(if page {
        recorded.timeline(&texts)
    } else {
        recorded.chrome_json(&texts)
    })
}
