//! What the OS engine notes when a run is traced (`--trace`, `--timeline`
//! without `--sched`): for each conc thread, every step it announced at a
//! scheduling point, when it parked and woke, whom it started, and its end,
//! on the real clock. Each thread writes only its own list (in its record,
//! so the lock is never contended); a thread's list joins the recorder's
//! when it ends. Off, none of this runs: the engine has no recorder.

use super::stamps::{Rate, Stamps};
use super::{Op, Step};
use crate::runtime::threads::ThreadRecord;
use crate::runtime::waits::ThreadId;
use parking_lot::Mutex;
use std::cell::Cell;

/// One step of a thread on the real clock (nanoseconds of session time).
#[derive(Clone, Debug, Default)]
pub struct Mark {
    /// `None` for the thread's start.
    pub step: Option<Step>,
    pub at: u64,
    /// When it first parked during this step, and when it last woke.
    pub parked: Option<(u64, u64)>,
    /// For a thread's start: the thread that started it.
    pub spawned_by: Option<ThreadId>,
    /// The thread ended after this step.
    pub ended: bool,
    /// The pid of the process that owns the step's object, once known:
    /// `None` is the process that holds the mark (its own object, or, in
    /// marks a child sent, one of the receiver's). A child names its
    /// proxies' objects by their ids at its parent (see `traced.rs`), so a
    /// `put` in a child and the `get` in its parent meet.
    pub home: Option<u32>,
}

/// A thread's marks while it runs, in chunks that grow to `CHUNK`: a
/// long run never copies what it noted to grow, and a short thread never
/// holds a big buffer. Each step is packed into 32 bytes (a tight locking
/// loop notes two per turn, and memory traffic is most of what tracing
/// costs); the few marks with more to say keep it on the side.
#[derive(Clone, Default)]
pub struct Marks {
    chunks: Vec<Vec<Packed>>,
    /// By mark index: when it parked and woke, who started the thread.
    extra: Vec<(usize, Extra)>,
    len: usize,
}

const CHUNK: usize = 4096;

/// A mark's step, packed.
#[derive(Clone, Copy)]
struct Packed {
    at: u64,
    object: u64,
    span: [u32; 3],
    /// `Op` as a byte; `NO_STEP` for a thread's start.
    op: u8,
    has_span: bool,
}

const NO_STEP: u8 = u8::MAX;

#[derive(Clone, Copy, Default)]
struct Extra {
    parked: Option<(u64, u64)>,
    spawned_by: Option<ThreadId>,
    ended: bool,
}

impl Packed {
    fn of(step: Option<Step>, at: u64) -> Packed {
        let span = step.and_then(|s| s.at);
        Packed {
            at,
            object: step.map_or(0, |s| s.object),
            span: span.map_or([0; 3], |s| [s.src.0, s.start, s.end]),
            op: step.map_or(NO_STEP, |s| s.op as u8),
            has_span: span.is_some(),
        }
    }

    fn unpack(self, rate: &Rate) -> Mark {
        let at = self.has_span.then(|| crate::span::Span {
            src: crate::span::SourceId(self.span[0]),
            start: self.span[1],
            end: self.span[2],
        });
        Mark {
            step: Op::from_byte(self.op).map(|op| Step::new(op, self.object, at)),
            at: rate.ns(self.at),
            ..Mark::default()
        }
    }
}

impl Marks {
    fn push(&mut self, p: Packed) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < c.capacity() => c.push(p),
            last => {
                let size = last.map_or(16, |c| (c.capacity() * 2).min(CHUNK));
                let mut c = Vec::with_capacity(size);
                c.push(p);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    /// The side data of the last mark (made on first use).
    fn last_extra(&mut self) -> Option<&mut Extra> {
        let last = self.len.checked_sub(1)?;
        if self.extra.last().is_none_or(|(i, _)| *i != last) {
            self.extra.push((last, Extra::default()));
        }
        self.extra.last_mut().map(|(_, e)| e)
    }

    fn last_at(&self) -> Option<u64> {
        self.chunks.last().and_then(|c| c.last()).map(|p| p.at)
    }

    /// The marks in session time, at `rate`.
    fn unpack(self, rate: &Rate) -> Vec<Mark> {
        let mut marks: Vec<Mark> = (self.chunks.into_iter().flatten())
            .map(|p| p.unpack(rate))
            .collect();
        for (i, e) in self.extra {
            if let Some(m) = marks.get_mut(i) {
                m.parked = e.parked.map(|(p, w)| (rate.ns(p), rate.ns(w)));
                m.spawned_by = e.spawned_by;
                m.ended = e.ended;
            }
        }
        marks
    }
}

/// A thread's marks, with its name.
#[derive(Clone)]
pub struct Track {
    pub thread: ThreadId,
    pub name: String,
    pub marks: Vec<Mark>,
}

/// Another process's threads (a child's, or a grandchild's), on this
/// process's clock.
#[derive(Clone)]
pub struct ProcessTracks {
    pub pid: u32,
    pub name: String,
    pub tracks: Vec<Track>,
}

pub struct Recorder {
    /// Ended threads' marks, still as stamps.
    done: Mutex<Vec<(ThreadId, String, Marks)>>,
    others: Mutex<Vec<ProcessTracks>>,
    stamps: Stamps,
}

thread_local! {
    /// The conc thread that last announced a step on this OS thread: the
    /// spawner, when it starts a thread.
    static CURRENT: Cell<Option<ThreadId>> = const { Cell::new(None) };
}

impl Recorder {
    /// A recorder for a session whose clock starts at `epoch`.
    pub fn new(epoch: std::time::Instant) -> Recorder {
        Recorder {
            done: Mutex::new(Vec::new()),
            others: Mutex::new(Vec::new()),
            stamps: Stamps::new(epoch),
        }
    }

    pub fn point(&self, me: &ThreadRecord, step: Step) {
        CURRENT.set(Some(me.id));
        let now = self.stamps.now();
        me.marks.lock().push(Packed::of(Some(step), now));
    }

    /// `me` parks (again) in its current step.
    pub fn parked(&self, me: &ThreadRecord) {
        let now = self.stamps.now();
        if let Some(last) = me.marks.lock().last_extra() {
            last.parked.get_or_insert((now, now));
        }
    }

    pub fn woke(&self, me: &ThreadRecord) {
        let now = self.stamps.now();
        let mut marks = me.marks.lock();
        if let Some((_, woke)) = marks.last_extra().and_then(|e| e.parked.as_mut()) {
            *woke = now;
        }
    }

    /// `thread` is about to be started by the conc thread that last
    /// announced a step on this OS thread.
    pub fn starting(&self, thread: &ThreadRecord) {
        let mut marks = thread.marks.lock();
        marks.push(Packed::of(None, self.stamps.now()));
        if let Some(e) = marks.last_extra() {
            e.spawned_by = CURRENT.get();
        }
    }

    /// `me` is over: its marks join the recorder's.
    pub fn ended(&self, me: &ThreadRecord) {
        let now = self.stamps.now();
        let marks = {
            let mut noted = me.marks.lock();
            if noted.last_at().is_none_or(|at| at > now) {
                noted.push(Packed::of(None, now));
            }
            if let Some(e) = noted.last_extra() {
                e.ended = true;
            }
            std::mem::take(&mut *noted)
        };
        self.done.lock().push((me.id, me.name.clone(), marks));
    }

    /// A child's part of the trace arrived (with its own children's).
    pub fn add_process(&self, p: ProcessTracks) {
        self.others.lock().push(p);
    }

    /// The other processes' tracks: taken out of the recorder, or (`keep`)
    /// left in it.
    pub fn processes(&self, keep: bool) -> Vec<ProcessTracks> {
        read_out(&mut *self.others.lock(), keep)
    }

    /// Every ended thread's track, and those of `still` (threads not
    /// ended yet, like the main thread): taken out of the recorder at the
    /// end of a run, or (`keep`, the REPL writing what it recorded so
    /// far) left in it.
    pub fn tracks(&self, still: &[&ThreadRecord], keep: bool) -> Vec<Track> {
        let rate = self.stamps.rate();
        let mut pending = read_out(&mut *self.done.lock(), keep);
        for t in still {
            let marks = read_out(&mut *t.marks.lock(), keep);
            if marks.len > 0 {
                pending.push((t.id, t.name.clone(), marks));
            }
        }
        pending
            .into_iter()
            .map(|(thread, name, marks)| Track {
                thread,
                name,
                marks: marks.unpack(&rate),
            })
            .collect()
    }
}

/// What `v` holds: a copy (`keep`), or taken out.
fn read_out<T: Clone + Default>(v: &mut T, keep: bool) -> T {
    match keep {
        true => v.clone(),
        false => std::mem::take(v),
    }
}
