//! What the OS engine notes when a run is traced (`--trace`, `--timeline`
//! without `--sched`): for each conc thread, every step it announced at a
//! scheduling point, when it parked and woke, whom it started, and its end,
//! on the real clock. Each thread writes only its own list (in its record,
//! so the lock is never contended); a thread's list joins the recorder's
//! when it ends. Off, none of this runs: the engine has no recorder.

use super::huge::HugeBuf;
use super::stamps::{Rate, Stamps};
use super::{Op, Step};
use crate::runtime::threads::ThreadRecord;
use crate::runtime::waits::ThreadId;
use crate::span::Span;
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
/// holds a big buffer. Each step is packed into 16 bytes (a tight locking
/// loop notes two per turn, and memory traffic is most of what tracing
/// costs besides reading the clock): its source span as an index into the
/// thread's own table of spans; the few marks with more to say keep it on
/// the side.
#[derive(Clone, Default)]
pub struct Marks {
    chunks: Vec<Chunk>,
    /// By mark index: when it parked and woke, who started the thread, and
    /// what did not fit in its packed form.
    extra: Vec<(usize, Extra)>,
    len: usize,
    /// The spans the marks name, and where recent ones are in it (a small
    /// direct-mapped cache: a loop names the same few spans over again).
    spans: Vec<Span>,
    recent: [u32; SPAN_CACHE],
}

const CHUNK: usize = 8192;
const SPAN_CACHE: usize = 32;

/// A mark's step, packed.
#[derive(Clone, Copy)]
struct Packed {
    at: u64,
    /// The object, or `WIDE` (then it is in the mark's `Extra`).
    object: u32,
    /// Bits 0-7: `Op` as a byte (`NO_STEP` for a thread's start); bits
    /// 8-31: the span's index in `Marks::spans` plus one (0: no span;
    /// `WIDE_SPAN`: in the mark's `Extra`).
    op_span: u32,
}

/// Marks in a row: small while a thread has noted little.
enum Chunk {
    Small(Vec<Packed>),
    Huge(HugeBuf<Packed>),
}

impl Chunk {
    /// False when full.
    #[inline]
    fn push(&mut self, p: Packed) -> bool {
        match self {
            Chunk::Small(c) if c.len() < c.capacity() => {
                c.push(p);
                true
            }
            Chunk::Small(_) => false,
            Chunk::Huge(c) => c.push(p),
        }
    }

    fn as_slice(&self) -> &[Packed] {
        match self {
            Chunk::Small(c) => c,
            Chunk::Huge(c) => c.as_slice(),
        }
    }
}

impl Clone for Chunk {
    fn clone(&self) -> Chunk {
        Chunk::Small(self.as_slice().to_vec())
    }
}

const NO_STEP: u8 = u8::MAX;
const WIDE: u32 = u32::MAX;
const WIDE_SPAN: u32 = (1 << 24) - 1;

#[derive(Clone, Copy, Default)]
struct Extra {
    parked: Option<(u64, u64)>,
    spawned_by: Option<ThreadId>,
    ended: bool,
    object: Option<u64>,
    span: Option<Span>,
}

impl Marks {
    /// Note `step` (`None`: the thread's start or end) at stamp `at`.
    fn note(&mut self, step: Option<Step>, at: u64) {
        let (op, object, span) = match step {
            Some(s) => (s.op as u8, s.object, s.at),
            None => (NO_STEP, 0, None),
        };
        let span_no = span.map_or(0, |sp| self.span_number(sp));
        let narrow = u32::try_from(object).ok().filter(|o| *o != WIDE);
        self.push(Packed {
            at,
            object: narrow.unwrap_or(WIDE),
            op_span: u32::from(op) | span_no << 8,
        });
        if narrow.is_none() || span_no == WIDE_SPAN {
            if let Some(e) = self.last_extra() {
                e.object = narrow.is_none().then_some(object);
                e.span = span.filter(|_| span_no == WIDE_SPAN);
            }
        }
    }

    /// The span's number in the table (its index plus one), added on
    /// first use; `WIDE_SPAN` once the table is full.
    fn span_number(&mut self, sp: Span) -> u32 {
        let slot =
            (sp.start ^ sp.end.rotate_left(5) ^ sp.src.0.rotate_left(11)) as usize % SPAN_CACHE;
        let known = self.recent[slot];
        if known != 0 && self.spans.get(known as usize - 1) == Some(&sp) {
            return known;
        }
        // A short table is searched (a loop's spans share cache slots at
        // times); a long one may name a span twice, which costs nothing.
        let found = (self.spans.len() <= 64)
            .then(|| self.spans.iter().rposition(|s| *s == sp))
            .flatten();
        if let Some(i) = found {
            self.recent[slot] = i as u32 + 1;
            return i as u32 + 1;
        }
        if self.spans.len() + 1 >= WIDE_SPAN as usize {
            return WIDE_SPAN;
        }
        self.spans.push(sp);
        let n = self.spans.len() as u32;
        self.recent[slot] = n;
        n
    }

    fn unpack_one(&self, p: Packed, extra: Option<&Extra>, rate: &Rate) -> Mark {
        let object = match p.object {
            WIDE => extra.and_then(|e| e.object).unwrap_or(0),
            o => u64::from(o),
        };
        let at = match p.op_span >> 8 {
            0 => None,
            WIDE_SPAN => extra.and_then(|e| e.span),
            n => self.spans.get(n as usize - 1).copied(),
        };
        let mut mark = Mark {
            step: Op::from_byte(p.op_span as u8).map(|op| Step::new(op, object, at)),
            at: rate.ns(p.at),
            ..Mark::default()
        };
        if let Some(e) = extra {
            mark.parked = e.parked.map(|(p, w)| (rate.ns(p), rate.ns(w)));
            mark.spawned_by = e.spawned_by;
            mark.ended = e.ended;
        }
        mark
    }

    #[inline]
    fn push(&mut self, p: Packed) {
        if !self.chunks.last_mut().is_some_and(|c| c.push(p)) {
            self.grow(p);
        }
        self.len += 1;
    }

    /// A new chunk, twice the last one's size up to `CHUNK`; past that, a
    /// huge page's worth (a thread that notes this much notes more).
    #[cold]
    fn grow(&mut self, p: Packed) {
        let mut c = match self.chunks.last() {
            Some(Chunk::Small(c)) if c.capacity() < CHUNK => {
                Chunk::Small(Vec::with_capacity(c.capacity() * 2))
            }
            None => Chunk::Small(Vec::with_capacity(16)),
            Some(_) => {
                HugeBuf::new().map_or_else(|| Chunk::Small(Vec::with_capacity(CHUNK)), Chunk::Huge)
            }
        };
        c.push(p);
        self.chunks.push(c);
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
        self.chunks
            .last()
            .and_then(|c| c.as_slice().last())
            .map(|p| p.at)
    }

    /// The marks in session time, at `rate`.
    fn unpack(self, rate: &Rate) -> Vec<Mark> {
        let mut extra = self.extra.iter().peekable();
        let mut marks = Vec::with_capacity(self.len);
        let all = self.chunks.iter().flat_map(Chunk::as_slice);
        for (i, p) in all.enumerate() {
            let e = extra.next_if(|(at, _)| *at == i).map(|(_, e)| e);
            marks.push(self.unpack_one(*p, e, rate));
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
        me.marks.lock().note(Some(step), now);
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
        marks.note(None, self.stamps.now());
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
                noted.note(None, now);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SourceId;

    /// Packed marks give back what was noted: objects too wide for the
    /// packed form, more spans than the cache holds, starts and parks.
    #[test]
    fn marks_unpack_to_what_was_noted() {
        let mut marks = Marks::default();
        let span = |i: u32| Span {
            src: SourceId(i % 3),
            start: i,
            end: i + 4,
        };
        let mut noted = Vec::new();
        marks.note(None, 1);
        marks.last_extra().unwrap().spawned_by = Some(7);
        for i in 0..300u32 {
            let object = if i % 7 == 0 {
                u64::MAX - u64::from(i)
            } else {
                u64::from(i)
            };
            let at = (i % 5 != 0).then(|| span(i % 90));
            let step = Step::new(Op::Put, object, at);
            marks.note(Some(step), 10 + u64::from(i));
            noted.push((object, at));
        }
        let rate = Stamps::new(std::time::Instant::now()).rate();
        let got = marks.unpack(&rate);
        assert_eq!(got.len(), 301);
        assert!(got[0].step.is_none());
        assert_eq!(got[0].spawned_by, Some(7));
        for (m, (object, at)) in got[1..].iter().zip(noted) {
            let step = m.step.expect("a step");
            assert_eq!((step.object, step.at), (object, at));
        }
    }
}
