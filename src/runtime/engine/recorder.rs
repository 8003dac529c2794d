//! What the OS engine notes when a run is traced (`--trace`, `--timeline`
//! without `--sched`): for each conc thread, every step it announced at a
//! scheduling point, when it parked and woke, whom it started, and its end,
//! on the real clock. Each thread writes only its own list (in its record,
//! so the lock is never contended); a thread's list joins the recorder's
//! when it ends. Off, none of this runs: the engine has no recorder.

use super::{Step, Time};
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
}

/// A thread's marks while it runs, in chunks that grow to `CHUNK`: a
/// long run never copies what it noted to grow, and a short thread never
/// holds a big buffer.
#[derive(Default)]
pub struct Marks {
    chunks: Vec<Vec<Mark>>,
}

const CHUNK: usize = 4096;

impl Marks {
    fn push(&mut self, m: Mark) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < c.capacity() => c.push(m),
            last => {
                let size = last.map_or(16, |c| (c.capacity() * 2).min(CHUNK));
                let mut c = Vec::with_capacity(size);
                c.push(m);
                self.chunks.push(c);
            }
        }
    }

    fn last_mut(&mut self) -> Option<&mut Mark> {
        self.chunks.last_mut().and_then(|c| c.last_mut())
    }

    fn take(&mut self) -> Vec<Mark> {
        std::mem::take(&mut self.chunks)
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A thread's marks, with its name.
pub struct Track {
    pub thread: ThreadId,
    pub name: String,
    pub marks: Vec<Mark>,
}

/// Another process's threads (a child's, or a grandchild's), on this
/// process's clock.
pub struct ProcessTracks {
    pub pid: u32,
    pub name: String,
    pub tracks: Vec<Track>,
}

#[derive(Default)]
pub struct Recorder {
    done: Mutex<Vec<Track>>,
    others: Mutex<Vec<ProcessTracks>>,
}

thread_local! {
    /// The conc thread that last announced a step on this OS thread: the
    /// spawner, when it starts a thread.
    static CURRENT: Cell<Option<ThreadId>> = const { Cell::new(None) };
}

impl Recorder {
    pub fn point(&self, me: &ThreadRecord, step: Step, now: Time) {
        CURRENT.set(Some(me.id));
        me.marks.lock().push(Mark {
            step: Some(step),
            at: now.as_nanos(),
            ..Mark::default()
        });
    }

    /// `me` parks (again) in its current step.
    pub fn parked(&self, me: &ThreadRecord, now: Time) {
        let mut marks = me.marks.lock();
        if let Some(last) = marks.last_mut() {
            last.parked.get_or_insert((now.as_nanos(), now.as_nanos()));
        }
    }

    pub fn woke(&self, me: &ThreadRecord, now: Time) {
        if let Some((_, woke)) = me.marks.lock().last_mut().and_then(|m| m.parked.as_mut()) {
            *woke = now.as_nanos();
        }
    }

    /// `thread` is about to be started by the conc thread that last
    /// announced a step on this OS thread.
    pub fn starting(&self, thread: &ThreadRecord, now: Time) {
        thread.marks.lock().push(Mark {
            at: now.as_nanos(),
            spawned_by: CURRENT.get(),
            ..Mark::default()
        });
    }

    /// `me` is over: its marks join the recorder's.
    pub fn ended(&self, me: &ThreadRecord, now: Time) {
        let mut marks = me.marks.lock().take();
        match marks.last_mut() {
            Some(last) if last.at <= now.as_nanos() => last.ended = true,
            _ => marks.push(Mark {
                at: now.as_nanos(),
                ended: true,
                ..Mark::default()
            }),
        }
        self.done.lock().push(Track {
            thread: me.id,
            name: me.name.clone(),
            marks,
        });
    }

    /// A child's part of the trace arrived (with its own children's).
    pub fn add_process(&self, p: ProcessTracks) {
        self.others.lock().push(p);
    }

    /// The other processes' tracks, taken out of the recorder.
    pub fn processes(&self) -> Vec<ProcessTracks> {
        std::mem::take(&mut *self.others.lock())
    }

    /// Every ended thread's track, and those of `still` (threads not
    /// ended yet, like the main thread), taken out of the recorder.
    pub fn tracks(&self, still: &[&ThreadRecord]) -> Vec<Track> {
        let mut tracks = std::mem::take(&mut *self.done.lock());
        for t in still {
            let marks = t.marks.lock().take();
            if !marks.is_empty() {
                tracks.push(Track {
                    thread: t.id,
                    name: t.name.clone(),
                    marks,
                });
            }
        }
        tracks
    }
}
