//! A logged run as Chrome Trace Event JSON (Perfetto and chrome://tracing
//! load it): a track per conc thread, a slice per step and per blocked
//! wait, instants for prints and signals, and flow arrows for spawn -> start,
//! end -> join, release -> the next acquire, and put -> the get that took
//! the item (in the order of the puts).
//!
//! Under the controlled engine time is virtual and stands still while
//! threads run, so a step's timestamp is the virtual time in microseconds
//! plus its index: steps at one virtual instant keep their order. On the
//! OS engine timestamps are real (microseconds, to the nanosecond), a
//! step's slice lasts until the thread's next step, and a wait's slice
//! from its first park to its last wake-up.

use super::log::{Event, Log};
use super::texts::Texts;
use crate::runtime::engine::controlled::strategy::TransitionEnd;
use crate::runtime::engine::Op;
use crate::runtime::footprint::THREAD;
use crate::runtime::int_hash::{IntMap, IntSet};
use crate::runtime::waits::ThreadId;
use std::collections::VecDeque;
use std::fmt::Write;

/// `s` as a JSON string.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

/// Which clock the log's times are on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Virtual,
    Real,
}

/// The timestamp of step `k`, in nanoseconds (whole microseconds under
/// control).
fn ts(clock: Clock, e: &Event, k: usize) -> u64 {
    match clock {
        Clock::Virtual => (e.began / 1000 + k as u64) * 1000,
        Clock::Real => e.began,
    }
}

/// Nanoseconds as a trace writes them: in microseconds, whole under
/// control, to the nanosecond on the OS engine.
struct Us(Clock, u64);

impl std::fmt::Display for Us {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Clock::Virtual => write!(f, "{}", self.1 / 1000),
            Clock::Real => write!(f, "{}.{:03}", self.1 / 1000, self.1 % 1000),
        }
    }
}

/// Where a step is in the script, and that line.
fn place(e: &Event, texts: &Texts) -> Option<(String, String)> {
    let p = texts.place(e.step?.at?)?;
    Some((
        format!("{}:{}:{}", p.file, p.line, p.col),
        p.code.to_string(),
    ))
}

/// What the object of a step is, as a label.
fn object_label(e: &Event) -> Option<String> {
    let s = e.step?;
    match s.object {
        0 => None,
        o if crate::runtime::footprint::is_global(o) => Some(format!("global#{}", o & 0xffff_ffff)),
        o if o >> 61 == THREAD >> 61 => Some(format!("thread#{}", o & !THREAD)),
        o if o >> 60 == 0 => Some(format!("object#{}", o & 0xffff_ffff)),
        _ => None,
    }
}

/// A step's `args`: where it is, that line, and its object.
fn step_args(e: &Event, texts: &Texts) -> String {
    let mut args = String::new();
    if let Some((at, code)) = place(e, texts) {
        let _ = write!(args, "\"at\":{},\"code\":{}", escape(&at), escape(&code));
    }
    if let Some(label) = object_label(e) {
        if !args.is_empty() {
            args.push(',');
        }
        let _ = write!(args, "\"object\":{}", escape(&label));
    }
    args
}

fn name_of(e: &Event) -> &'static str {
    match e.step.map(|s| s.op) {
        None => "start",
        Some(op) => super::lanes::op_word(op),
    }
}

/// Where the events go: a string, or a file through `ToFile`. Errors of
/// the sink are its own to keep (`ToFile` does); the text is written
/// regardless.
struct Writer<'a> {
    out: &'a mut dyn Write,
    first: bool,
}

impl Writer<'_> {
    fn event(&mut self, fields: &str) {
        self.open();
        let _ = self.out.write_str(fields);
        let _ = self.out.write_char('}');
    }

    /// Begin an event whose fields the caller writes into `out`, then `}`.
    fn open(&mut self) {
        if !self.first {
            let _ = self.out.write_str(",\n");
        }
        self.first = false;
        let _ = self.out.write_char('{');
    }
}

/// A file as a `fmt::Write`, buffered, keeping the first error.
pub struct ToFile {
    file: std::io::BufWriter<std::fs::File>,
    error: Option<std::io::Error>,
}

impl ToFile {
    pub fn create(path: &std::path::Path) -> std::io::Result<ToFile> {
        Ok(ToFile {
            file: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?),
            error: None,
        })
    }

    /// Flush; the first error met, if any.
    pub fn finish(mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        std::io::Write::flush(&mut self.file)
    }
}

impl Write for ToFile {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.error.is_none() {
            if let Err(e) = std::io::Write::write_all(&mut self.file, s.as_bytes()) {
                self.error = Some(e);
            }
        }
        Ok(())
    }
}

/// The processes of a controlled run that simulated some: each named after
/// its first thread (its main thread is named like the process).
fn simulated_processes(log: &Log, file: &str) -> Vec<(u32, String)> {
    let pid = crate::runtime::engine::CONTROLLED_PID;
    let mut out = vec![(pid, format!("conc {} (pid {})", file, pid))];
    let mut spaces: Vec<u64> = log.events.iter().map(|e| e.thread >> 32).collect();
    spaces.sort_unstable();
    spaces.dedup();
    for k in spaces.into_iter().filter(|k| *k != 0) {
        let name = log
            .names
            .get(&((k << 32) | 1))
            .cloned()
            .unwrap_or_else(|| "?".to_string());
        let pid = pid + k as u32;
        out.push((pid, format!("process {} (pid {})", name, pid)));
    }
    out
}

/// The run in `log` as a trace file's text.
pub fn chrome_json(log: &Log, texts: &Texts, clock: Clock) -> String {
    let mut out = String::new();
    write_chrome_json(log, texts, clock, &mut out);
    out
}

/// The run in `log` as a trace file's text, written to `out`.
pub fn write_chrome_json(log: &Log, texts: &Texts, clock: Clock, out: &mut dyn Write) {
    let file = texts.name.as_str();
    let _ = out.write_str("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    let mut w = Writer { out, first: true };
    // Thread ids are a process's own; an object's id is its owner's (see
    // `Event::home`), so a flow may cross processes.
    let space = |tid: ThreadId| tid & !0xffff_ffff;
    let simulated = log.processes.is_empty() && log.events.iter().any(|e| space(e.thread) != 0);
    let pid_of = |tid: ThreadId| match log.pids.get(&tid) {
        Some(pid) => *pid,
        // A controlled run's simulated processes: the n-th has pid 1000 + n.
        None if simulated => crate::runtime::engine::CONTROLLED_PID + (tid >> 32) as u32,
        None => 1,
    };
    let processes = if !log.processes.is_empty() {
        log.processes.clone()
    } else if simulated {
        simulated_processes(log, file)
    } else {
        vec![(1, format!("conc {}", file))]
    };
    for (pid, name) in &processes {
        w.event(&format!(
            "\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":{}}}",
            escape(name)
        ));
    }
    let mut named: IntSet<ThreadId> = IntSet::default();
    for e in &log.events {
        if named.insert(e.thread) {
            let name = log.names.get(&e.thread).cloned().unwrap_or_default();
            let pid = pid_of(e.thread);
            w.event(&format!(
                "\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{},\"args\":{{\"name\":{}}}",
                e.thread,
                escape(&name)
            ));
        }
    }
    // The next step of each thread after step k, for the length of a wait.
    let mut next_of: Vec<Option<usize>> = vec![None; log.events.len()];
    let mut last: IntMap<ThreadId, usize> = IntMap::default();
    for (k, e) in log.events.iter().enumerate() {
        if let Some(p) = last.insert(e.thread, k) {
            next_of[p] = Some(k);
        }
    }
    let mut flow = 0u64;
    let mut spawned_by: IntMap<ThreadId, usize> = IntMap::default();
    let mut ended_at: IntMap<ThreadId, usize> = IntMap::default();
    let mut released: IntMap<(u64, u64), usize> = IntMap::default();
    let mut puts: IntMap<(u64, u64), VecDeque<usize>> = IntMap::default();
    let mut started: IntSet<ThreadId> = IntSet::default();
    // The args of a step depend only on where it is and what it touches:
    // a tight loop repeats a few, so each is made once.
    let mut args_of: IntMap<(u32, u32, u32, u64), String> = IntMap::default();
    for (k, e) in log.events.iter().enumerate() {
        let t = ts(clock, e, k);
        let tid = e.thread;
        let pid = pid_of(tid);
        let key = match e.step {
            Some(s) => {
                let at = s.at.map_or((u32::MAX, 0, 0), |a| (a.src.0, a.start, a.end));
                (at.0, at.1, at.2, s.object)
            }
            None => (u32::MAX, 0, 0, 0),
        };
        let args = args_of.entry(key).or_insert_with(|| step_args(e, texts));
        let next = next_of[k].map(|n| ts(clock, &log.events[n], n));
        let (dur, wait) = match clock {
            Clock::Virtual => {
                let until = next.unwrap_or(t + 1000);
                let wait = (e.end == TransitionEnd::Blocked)
                    .then(|| (t + 1000, until.saturating_sub(t + 1000)));
                (1000, wait)
            }
            Clock::Real => match e.parked {
                Some((p, woke)) => (p.saturating_sub(t), Some((p, woke.saturating_sub(p)))),
                None => (next.unwrap_or(t).saturating_sub(t), None),
            },
        };
        // Op words need no escaping.
        let name = name_of(e);
        w.open();
        let _ = write!(
            w.out,
            "\"name\":\"{name}\",\"cat\":\"step\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{},\"args\":{{{args}}}}}",
            Us(clock, t),
            Us(clock, dur)
        );
        if let Some((from, dur)) = wait {
            w.open();
            let _ = write!(
                w.out,
                "\"name\":\"blocked: {name}\",\"cat\":\"wait\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{},\"args\":{{{args}}}}}",
                Us(clock, from),
                Us(clock, dur)
            );
        }
        let op = e.step.map(|s| s.op);
        if matches!(op, Some(Op::Print | Op::Signal | Op::Put | Op::Get))
            && e.end != TransitionEnd::Blocked
        {
            w.open();
            let _ = write!(
                w.out,
                "\"name\":\"{name}\",\"cat\":\"event\",\"ph\":\"i\",\"s\":\"t\",\"pid\":{pid},\"tid\":{tid},\"ts\":{}}}",
                Us(clock, t)
            );
        }
    }
    // Flows, each from an earlier step to this one, in the order steps completed: on the real clock a step is
    // noted when it is announced, before it takes its object, and a step
    // that waited completed at its last wake-up. A put counts from its
    // start: its item may be taken before the putter hears back (a put
    // on another process's queue waits for the reply).
    let done = |k: usize| {
        let e = &log.events[k];
        match (clock, e.parked) {
            (Clock::Real, Some(_)) if e.step.is_some_and(|s| s.op == Op::Put) => e.began,
            (Clock::Real, Some((_, woke))) => woke,
            _ => ts(clock, e, k),
        }
    };
    let order: Vec<usize> = match clock {
        Clock::Virtual => (0..log.events.len()).collect(),
        Clock::Real => {
            // Keys made once (a key per comparison reads two events).
            let mut keyed: Vec<(u64, usize)> =
                (0..log.events.len()).map(|k| (done(k), k)).collect();
            keyed.sort_unstable();
            keyed.into_iter().map(|(_, k)| k).collect()
        }
    };
    for k in order {
        let e = &log.events[k];
        let tid = e.thread;
        let pid = pid_of(tid);
        let op = e.step.map(|s| s.op);
        // Flow names are fixed words that need no escaping.
        let mut arrow = |w: &mut Writer, from: usize, name: &'static str| {
            flow += 1;
            let f = &log.events[from];
            let start = ts(clock, f, from);
            w.open();
            let _ = write!(
                w.out,
                "\"name\":\"{name}\",\"cat\":\"flow\",\"ph\":\"s\",\"id\":{flow},\"pid\":{},\"tid\":{},\"ts\":{}}}",
                pid_of(f.thread),
                f.thread,
                Us(clock, start)
            );
            w.open();
            let _ = write!(
                w.out,
                "\"name\":\"{name}\",\"cat\":\"flow\",\"ph\":\"f\",\"bp\":\"e\",\"id\":{flow},\"pid\":{pid},\"tid\":{tid},\"ts\":{}}}",
                Us(clock, done(k).max(start))
            );
        };
        if started.insert(tid) {
            if let Some(&from) = spawned_by.get(&tid) {
                arrow(&mut w, from, "spawn");
            }
        }
        let object = (
            e.home.unwrap_or(space(tid)),
            e.step.map(|s| s.object).unwrap_or(0),
        );
        if e.end != TransitionEnd::Blocked {
            match op {
                Some(Op::Join) => {
                    if let Some(&from) = ended_at.get(&(space(tid) | (object.1 & !THREAD))) {
                        arrow(&mut w, from, "end -> join");
                    }
                }
                Some(Op::Acquire) => {
                    if let Some(from) = released.remove(&object) {
                        if log.events[from].thread != tid {
                            arrow(&mut w, from, "release -> acquire");
                        }
                    }
                }
                Some(Op::Get) => {
                    if let Some(from) = puts.get_mut(&object).and_then(VecDeque::pop_front) {
                        arrow(&mut w, from, "put -> get");
                    }
                }
                Some(Op::Put) => puts.entry(object).or_default().push_back(k),
                Some(Op::Release) => {
                    released.insert(object, k);
                }
                _ => {}
            }
        }
        for s in &e.spawned {
            spawned_by.insert(*s, k);
        }
        if e.end == TransitionEnd::Ended {
            ended_at.insert(tid, k);
        }
    }
    let _ = w.out.write_str("\n]}\n");
}
