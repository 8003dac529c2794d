//! What the OS engine notes when a run is traced (`--trace`, `--timeline`
//! without `--sched`): for each conc thread, every step it announced at a
//! scheduling point, when it parked and woke, whom it started, and its end,
//! on the real clock. Each thread writes only its own list (in its record,
//! so the lock is never contended); a thread's list joins the recorder's
//! when it ends. Off, none of this runs: the engine has no recorder.

use super::fixed_buf::FixedBuf;
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
/// holds a big buffer. Memory is most of what tracing a tight loop costs
/// besides reading the clock (on a virtual machine the kernel's zeroing of
/// fresh pages was a third of a traced locking loop), so a step is one
/// 32-bit word when it can be: the step's *site* (its operation, object and
/// span, numbered in the thread's own table on first use) in the top byte
/// and the time since the thread's previous mark below. A site past the
/// 255th or a gap of more than `SHORT_GAP` ticks takes a long form of four
/// words; the few marks with more to say keep it on the side.
#[derive(Clone, Default)]
pub struct Marks {
    /// The chunk being filled, and those filled before it.
    open: FixedBuf<u32>,
    full: Vec<FixedBuf<u32>>,
    /// By mark index: when it parked and woke, who started the thread, and
    /// the step itself once the site table is full.
    extra: Vec<(usize, Extra)>,
    len: usize,
    /// The last mark's stamp (0 before the first).
    last: u64,
    /// The sites the marks name, and where recent ones are in it (a small
    /// direct-mapped cache: a loop names the same few sites over again).
    sites: Vec<Site>,
    recent: [u32; SITE_CACHE],
}

const CHUNK: usize = 16384;
const SITE_CACHE: usize = 32;

/// What a step is, without its time: the unit a thread's marks name.
#[derive(Clone, Copy, PartialEq)]
struct Site {
    /// `Op` as a byte, `NO_STEP` for a thread's start or end.
    op: u8,
    object: u64,
    span: Option<Span>,
}

/// The top byte of a short word is the site's index; `LONG` there starts
/// a long form: the site's index in the next word, then the gap in two.
const LONG: u32 = 0xFF;
const SHORT_GAP: u64 = (1 << 24) - 1;
/// The site index of a step kept in its mark's `Extra` (the table is full).
const NO_SITE: u32 = u32::MAX;

const NO_STEP: u8 = u8::MAX;

#[derive(Clone, Copy, Default)]
struct Extra {
    parked: Option<(u64, u64)>,
    spawned_by: Option<ThreadId>,
    ended: bool,
    step: Option<Site>,
}

impl Marks {
    /// Note `step` (`None`: the thread's start or end) at stamp `at`.
    #[inline]
    fn note(&mut self, step: Option<Step>, at: u64) {
        let site = match step {
            Some(s) => Site {
                op: s.op as u8,
                object: s.object,
                span: s.at,
            },
            None => Site {
                op: NO_STEP,
                object: 0,
                span: None,
            },
        };
        let number = self.site_number(site);
        // Stamps of one thread only grow, but a counter read on another
        // core may be a little behind: such a gap wraps and goes long.
        let gap = at.wrapping_sub(self.last);
        self.last = at;
        if number < LONG && gap <= SHORT_GAP {
            self.push(number << 24 | gap as u32);
        } else {
            self.push_long(number, gap);
        }
        self.len += 1;
        if number == NO_SITE {
            if let Some(e) = self.last_extra() {
                e.step = Some(site);
            }
        }
    }

    #[cold]
    fn push_long(&mut self, number: u32, gap: u64) {
        for w in [LONG << 24, number, gap as u32, (gap >> 32) as u32] {
            self.push(w);
        }
    }

    /// The site's index in the table, added on first use; `NO_SITE` once
    /// the table is full.
    #[inline]
    fn site_number(&mut self, site: Site) -> u32 {
        let sp = site.span.unwrap_or_default();
        let hash = site.object as u32
            ^ u32::from(site.op).rotate_left(7)
            ^ sp.start
            ^ sp.end.rotate_left(5)
            ^ sp.src.0.rotate_left(11);
        let slot = hash as usize % SITE_CACHE;
        let known = self.recent[slot];
        if known != 0 && self.sites.get(known as usize - 1) == Some(&site) {
            return known - 1;
        }
        self.new_site(site, slot)
    }

    #[cold]
    fn new_site(&mut self, site: Site, slot: usize) -> u32 {
        // A short table is searched (a loop's sites share cache slots at
        // times); a long one may name a site twice, which costs nothing.
        let found = (self.sites.len() <= 64)
            .then(|| self.sites.iter().rposition(|s| *s == site))
            .flatten();
        let index = match found {
            Some(i) => i as u32,
            None if self.sites.len() >= NO_SITE as usize => return NO_SITE,
            None => {
                self.sites.push(site);
                self.sites.len() as u32 - 1
            }
        };
        self.recent[slot] = index + 1;
        index
    }

    #[inline(always)]
    fn push(&mut self, w: u32) {
        if !self.open.push(w) {
            self.grow(w);
        }
    }

    /// A new chunk, twice the last one's size up to `CHUNK`; past that, a
    /// huge page's worth (a thread that notes this much notes more).
    #[cold]
    fn grow(&mut self, w: u32) {
        let cap = self.open.capacity();
        let next = match cap {
            0 => FixedBuf::new(16),
            c if c < CHUNK => FixedBuf::new(c * 2),
            _ => FixedBuf::huge().or_else(|| FixedBuf::new(CHUNK)),
        };
        let next = next.unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u32; CHUNK]>())
        });
        let filled = std::mem::replace(&mut self.open, next);
        if filled.capacity() > 0 {
            self.full.push(filled);
        }
        self.open.push(w);
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
        (self.len > 0).then_some(self.last)
    }

    /// The marks in session time, at `rate`.
    fn unpack(self, rate: &Rate) -> Vec<Mark> {
        let mut extra = self.extra.iter().peekable();
        let mut marks = Vec::with_capacity(self.len);
        let chunks = self.full.iter().chain([&self.open]);
        let mut words = chunks.flat_map(FixedBuf::as_slice).copied();
        let mut at = 0u64;
        while let Some(w) = words.next() {
            let (number, gap) = match w >> 24 {
                LONG => {
                    let mut next = || u64::from(words.next().unwrap_or(0));
                    let number = next() as u32;
                    (number, next() | next() << 32)
                }
                short => (short, u64::from(w & SHORT_GAP as u32)),
            };
            at = at.wrapping_add(gap);
            let e = extra.next_if(|(i, _)| *i == marks.len()).map(|(_, e)| e);
            let site = match number {
                NO_SITE => e.and_then(|e| e.step),
                n => self.sites.get(n as usize).copied(),
            };
            let step =
                site.and_then(|s| Op::from_byte(s.op).map(|op| Step::new(op, s.object, s.span)));
            let mut mark = Mark {
                step,
                at: rate.ns(at),
                ..Mark::default()
            };
            if let Some(e) = e {
                mark.parked = e.parked.map(|(p, w)| (rate.ns(p), rate.ns(w)));
                mark.spawned_by = e.spawned_by;
                mark.ended = e.ended;
            }
            marks.push(mark);
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
        super::own_lock::prepare();
        Recorder {
            done: Mutex::new(Vec::new()),
            others: Mutex::new(Vec::new()),
            stamps: Stamps::new(epoch),
        }
    }

    pub fn point(&self, me: &ThreadRecord, step: Step) {
        CURRENT.set(Some(me.id));
        let now = self.stamps.now();
        mine(me).note(Some(step), now);
    }

    /// `me` parks (again) in its current step.
    pub fn parked(&self, me: &ThreadRecord) {
        let now = self.stamps.now();
        if let Some(last) = mine(me).last_extra() {
            last.parked.get_or_insert((now, now));
        }
    }

    pub fn woke(&self, me: &ThreadRecord) {
        let now = self.stamps.now();
        let mut marks = mine(me);
        if let Some((_, woke)) = marks.last_extra().and_then(|e| e.parked.as_mut()) {
            *woke = now;
        }
    }

    /// `thread` is about to be started by the conc thread that last
    /// announced a step on this OS thread.
    pub fn starting(&self, thread: &ThreadRecord) {
        // SAFETY: the thread has not started, so it does not take its
        // marks yet, and its start (after this) happens after this does.
        let mut marks = unsafe { thread.marks.own() };
        marks.note(None, self.stamps.now());
        if let Some(e) = marks.last_extra() {
            e.spawned_by = CURRENT.get();
        }
    }

    /// `me` is over: its marks join the recorder's.
    pub fn ended(&self, me: &ThreadRecord) {
        let now = self.stamps.now();
        let marks = {
            let mut noted = mine(me);
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
            let marks = read_out(&mut *t.marks.visit(), keep);
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

/// The marks of `me`, the thread calling: the recorder's calls that take
/// a `me` are made by the thread it stands for (or, for a stand-in, by the
/// OS thread working through its queue, which hands it on under a mutex).
fn mine(me: &ThreadRecord) -> super::own_lock::OwnGuard<'_, Marks> {
    // SAFETY: as above, one thread at a time, each after the one before.
    unsafe { me.marks.own() }
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

    /// Packed marks give back what was noted: objects too wide for a
    /// word, more sites than the short form numbers, gaps too long for it
    /// and a stamp a little behind the one before, starts and parks.
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
        let mut at = 1u64;
        for i in 0..3000u32 {
            let object = if i % 7 == 0 {
                u64::MAX - u64::from(i % 400)
            } else {
                u64::from(i % 300)
            };
            let span_at = (i % 5 != 0).then(|| span(i % 90));
            at = match i % 11 {
                0 => at + (1 << 30),
                1 => at - 3,
                _ => at + u64::from(i),
            };
            marks.note(Some(Step::new(Op::Put, object, span_at)), at);
            noted.push((object, span_at, at));
        }
        let rate = Rate::identity();
        let got = marks.unpack(&rate);
        assert_eq!(got.len(), 3001);
        assert!(got[0].step.is_none());
        assert_eq!(got[0].spawned_by, Some(7));
        assert!(marks_sites_beyond_short(&got));
        for (m, (object, span_at, at)) in got[1..].iter().zip(noted) {
            let step = m.step.expect("a step");
            assert_eq!((step.object, step.at, m.at), (object, span_at, at));
        }
    }

    fn marks_sites_beyond_short(got: &[Mark]) -> bool {
        let mut seen = Vec::new();
        for m in got {
            let s = m.step.map(|s| (s.object, s.at));
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen.len() > 255
    }
}
