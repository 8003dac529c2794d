//! The one seam between the runtime and what runs it.
//!
//! Everything a script can observe about *when* things happen goes through
//! here: the clock (`now`, deadlines), parking and waking a thread, starting
//! the OS thread under a conc thread and its end, busy-waiting before a park
//! (the "fast paths"), and the session's random numbers and machine facts.
//! Every visible operation also announces itself with [`Engine::point`]
//! before it takes any guard, which is where a scheduler that decides who
//! runs next plugs in.
//!
//! The OS engine is conc as it runs for real: OS threads, the monotonic
//! clock, futex parking; `point` costs one predictable branch. Nothing
//! outside this module parks a conc thread, reads the clock for a deadline
//! or spins waiting for another thread.

pub mod controlled;
mod fixed_buf;
mod os_threads;
pub(crate) mod own_lock;
mod parker;
pub mod recorder;
mod rng;
mod stamps;

pub use parker::Parker;
pub use rng::Rng;

use super::threads::{ThreadRecord, ThreadRef};
use crate::span::Span;
use controlled::strategy::Strategy;
use controlled::Scheduler;
use parking_lot::{Condvar, MutexGuard};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A moment on the session's clock: nanoseconds since the session began.
/// Real time on the OS engine; virtual time under a controlled scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

/// Timeouts beyond this are "forever, in practice" (about 292 years would
/// overflow the nanosecond count).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 100);

impl Time {
    pub const ZERO: Time = Time(0);

    pub fn from_nanos(ns: u64) -> Time {
        Time(ns)
    }

    pub fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `d` later, saturating (an absurd timeout is a very late deadline).
    pub fn after(self, d: Duration) -> Time {
        let ns = d.min(FAR_FUTURE).as_nanos() as u64;
        Time(self.0.saturating_add(ns))
    }

    /// How long from `earlier` to this moment (zero if it is not later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// What kind of visible operation a thread is about to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// A global variable is read / assigned.
    Read,
    Write,
    Acquire,
    Release,
    Put,
    Get,
    /// `wait` on an event, condition or barrier, `join` with a timeout,
    /// `sleep`, `select`.
    Wait,
    /// `join` without a timeout (object: `footprint::THREAD | id`): it can
    /// go on only once that thread is over.
    Join,
    /// `set`, `clear`, `notify`, a pool submit: changes what waiters see.
    Signal,
    /// Asks an object something without changing it (`size()`, `is_set()`).
    Inspect,
    Spawn,
    Print,
    /// A loop went round without any other visible operation.
    BackEdge,
    /// The thread is over.
    End,
}

impl Op {
    /// Every operation, in declaration order (so `op as u8` indexes it).
    const ALL: [Op; 14] = [
        Op::Read,
        Op::Write,
        Op::Acquire,
        Op::Release,
        Op::Put,
        Op::Get,
        Op::Wait,
        Op::Join,
        Op::Signal,
        Op::Inspect,
        Op::Spawn,
        Op::Print,
        Op::BackEdge,
        Op::End,
    ];

    /// The operation `op as u8` gave.
    pub fn from_byte(b: u8) -> Option<Op> {
        Op::ALL.get(usize::from(b)).copied()
    }

    /// Whether two operations on one object can be reordered without
    /// changing anything: only if both merely look.
    pub fn only_reads(self) -> bool {
        matches!(self, Op::Read | Op::Inspect | Op::Join)
    }
}

/// One visible operation, announced before it happens.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub op: Op,
    /// The object or global cell it touches (0: none).
    pub object: u64,
    pub at: Option<Span>,
}

impl Step {
    pub fn new(op: Op, object: u64, at: Option<Span>) -> Step {
        Step { op, object, at }
    }

    /// What announcing this step says its transition touches.
    pub fn access(&self) -> Option<super::footprint::Access> {
        match self.op {
            Op::BackEdge | Op::End => None,
            _ if self.object == 0 => None,
            op => Some(super::footprint::Access {
                key: self.object,
                write: !op.only_reads(),
            }),
        }
    }
}

/// What a bounded busy-wait sees on each look.
pub enum Spin {
    /// What it waited for happened.
    Done,
    /// Not yet; look again.
    Again,
    /// Give up now (say, others are already queued).
    Stop,
}

/// How long a thread may busy-wait before it parks: a few short spins,
/// then a few yields of its time slice.
#[derive(Clone, Copy)]
pub struct Backoff {
    pub spins: u32,
    pub yields: u32,
}

pub struct Engine {
    epoch: Instant,
    rng: Rng,
    seed: u64,
    /// Set for the controlled engine.
    sched: Option<Arc<Scheduler>>,
    /// Set for a traced run on the OS engine.
    recorder: Option<Arc<recorder::Recorder>>,
    /// Controlled or recording: `point` has work to do.
    watched: bool,
    /// Under control: what `getpid()` and `getppid()` say. A pid past
    /// `CONTROLLED_PID` is a simulated child process's: it shares its
    /// parent's scheduler, which the parent's session owns.
    pids: (u32, u32),
}

/// What `cpu_count()` says under control: a fixed number, so a script that
/// sizes its pools by it runs the same everywhere.
pub const CONTROLLED_CPUS: usize = 4;
/// `getpid()` of the main process under control.
pub const CONTROLLED_PID: u32 = 1000;
/// A thread's number within its process: the low bits of its id.
pub const THREAD_BITS: u32 = 32;

impl Default for Engine {
    fn default() -> Self {
        Engine::os(None)
    }
}

/// Now on this machine's monotonic clock, in nanoseconds.
pub fn monotonic_now() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// In a child on another machine: the pid of the process that spawned it
/// there (its OS parent here is only the supervisor `ssh` runs).
pub static REMOTE_PARENT: OnceLock<u32> = OnceLock::new();

impl Engine {
    /// The OS engine; `seed` fixes the random numbers (`--seed`).
    pub fn os(seed: Option<u64>) -> Engine {
        let seed = seed.unwrap_or_else(Rng::fresh_seed);
        Engine {
            epoch: Instant::now(),
            rng: Rng::seeded(seed),
            seed,
            sched: None,
            recorder: None,
            watched: false,
            pids: (CONTROLLED_PID, 1),
        }
    }

    /// The OS engine, noting every thread's steps for a trace.
    pub fn os_recording(seed: Option<u64>) -> Engine {
        let os = Engine::os(seed);
        Engine {
            recorder: Some(Arc::new(recorder::Recorder::new(os.epoch))),
            watched: true,
            ..os
        }
    }

    /// Where this session's clock starts, in nanoseconds of the machine's
    /// monotonic clock (the same in every process): to line up the traces
    /// of processes.
    pub fn epoch_monotonic(&self) -> u64 {
        monotonic_now().saturating_sub(self.epoch.elapsed().as_nanos() as u64)
    }

    /// What a traced OS run noted (`os_recording`).
    pub fn recorder(&self) -> Option<&Arc<recorder::Recorder>> {
        self.recorder.as_ref()
    }

    /// The controlled engine: one thread at a time, chosen by `strategy`,
    /// on a virtual clock; `seed` seeds the script's random numbers.
    pub fn controlled(strategy: Box<dyn Strategy>, seed: u64) -> Engine {
        Engine {
            sched: Some(Arc::new(Scheduler::new(strategy))),
            watched: true,
            ..Engine::os(Some(seed))
        }
    }

    /// The engine of a child process simulated under the same scheduler
    /// (`process/simulated.rs`), with its own pid and random numbers.
    pub fn simulated(parent: &Engine, seed: u64, pid: u32) -> Engine {
        Engine {
            sched: parent.sched.clone(),
            watched: true,
            pids: (pid, parent.pid()),
            ..Engine::os(Some(seed))
        }
    }

    /// Which process of a controlled run this is: 0 for the main one, n
    /// for the n-th simulated child (pid `CONTROLLED_PID + n`).
    fn process_index(&self) -> u64 {
        u64::from(self.pids.0.saturating_sub(CONTROLLED_PID))
    }

    /// Where this process's thread ids begin: the n-th simulated process
    /// numbers its threads from `n << THREAD_BITS`, so ids stay unique for
    /// the scheduler they share, and each process counts its own threads
    /// from 1, as a real one does.
    pub fn thread_base(&self) -> u64 {
        self.process_index() << THREAD_BITS
    }

    /// Footprint keys of what each process has of its own (its random
    /// numbers, its id counters): one per simulated process, so two
    /// processes drawing ids are not taken to race.
    pub fn own_key(&self, key: u64) -> u64 {
        key | (self.process_index() << 8)
    }

    /// The scheduler, under control.
    pub fn scheduler(&self) -> Option<&Arc<Scheduler>> {
        self.sched.as_ref()
    }

    /// The session that made this engine owns its scheduler (and ends it
    /// when it ends): false for a simulated child process.
    pub fn owns_scheduler(&self) -> bool {
        self.sched.is_some() && self.process_index() == 0
    }

    /// The session's first thread is running: under control it holds the
    /// turn.
    pub fn adopt(&self, main: &ThreadRef) {
        if let Some(s) = &self.sched {
            s.adopt(main);
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    #[inline]
    pub fn now(&self) -> Time {
        match &self.sched {
            None => Time(self.epoch.elapsed().as_nanos() as u64),
            Some(s) => s.now(),
        }
    }

    pub fn deadline_after(&self, d: Duration) -> Time {
        self.now().after(d)
    }

    /// Whether `deadline` has passed.
    #[inline]
    pub fn passed(&self, deadline: Option<Time>) -> bool {
        deadline.is_some_and(|d| self.now() >= d)
    }

    /// Seconds from now until `deadline` (never negative).
    pub fn seconds_left(&self, deadline: Time) -> f64 {
        deadline.since(self.now()).as_secs_f64()
    }

    fn instant(&self, t: Time) -> Instant {
        self.epoch
            .checked_add(Duration::from_nanos(t.0))
            .unwrap_or_else(|| self.epoch + FAR_FUTURE)
    }

    /// `me` is about to perform `step`. The OS engine lets it go ahead;
    /// under control another thread may run first.
    #[inline(always)]
    pub fn point(&self, me: &ThreadRecord, step: Step) {
        if self.watched {
            self.watched_point(me, step)
        }
    }

    /// `point` for the hot paths (a lock, a queue): the step is only made
    /// once somebody watches, so the OS engine builds nothing.
    #[inline(always)]
    pub fn point_on(&self, me: &ThreadRecord, op: Op, object: u64, at: Option<Span>) {
        if self.watched {
            self.watched_point(me, Step::new(op, object, at))
        }
    }

    #[inline(never)]
    fn watched_point(&self, me: &ThreadRecord, step: Step) {
        if let Some(s) = &self.sched {
            s.point(me, step)
        } else if let Some(r) = &self.recorder {
            r.point(me, step)
        }
    }

    /// Whether busy-waits and other shortcuts that assume threads really
    /// run at once are allowed.
    #[inline(always)]
    pub fn fast_paths(&self) -> bool {
        self.sched.is_none()
    }

    /// `wait` waits without parking (a getter yielding for a handoff): a
    /// traced run notes it as a park all the same, so the step counts as
    /// done when the wait ends (after the put that fed it).
    pub fn busy_wait<T>(&self, me: &ThreadRecord, wait: impl FnOnce() -> T) -> T {
        match &self.recorder {
            Some(r) => {
                r.parked(me);
                let got = wait();
                r.woke(me);
                got
            }
            None => wait(),
        }
    }

    /// Park `me` until it is unparked or `deadline` passes. Callers
    /// re-check what they wait for: a stale permit may end this early.
    pub fn park(&self, me: &ThreadRecord, deadline: Option<Time>) {
        match (&self.sched, &self.recorder) {
            (None, None) => me.parker.park(deadline.map(|d| self.instant(d))),
            (None, Some(r)) => {
                r.parked(me);
                me.parker.park(deadline.map(|d| self.instant(d)));
                r.woke(me);
            }
            (Some(s), _) => s.park(me, deadline),
        }
    }

    pub fn unpark(&self, thread: &ThreadRecord) {
        match &self.sched {
            None => thread.parker.unpark(),
            Some(s) => s.unpark(thread),
        }
    }

    /// Busy-wait within `backoff` until `look` says `Done` (true) or
    /// `Stop` or the budget is used up (false).
    pub fn spin(&self, backoff: Backoff, mut look: impl FnMut() -> Spin) -> bool {
        if !self.fast_paths() {
            return false;
        }
        for round in 0..backoff.spins + backoff.yields {
            if round < backoff.spins {
                for _ in 0..(2u32 << round.min(16)) {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
            match look() {
                Spin::Done => return true,
                Spin::Stop => return false,
                Spin::Again => {}
            }
        }
        false
    }

    /// Start the OS thread that runs `thread`'s `job` (named after it for
    /// `ps -L` and debuggers). Under control it runs once it is chosen.
    pub fn start_thread(
        &self,
        thread: &ThreadRef,
        stack: usize,
        job: Box<dyn FnOnce() + Send>,
    ) -> std::io::Result<()> {
        match &self.sched {
            None => {
                if let Some(r) = &self.recorder {
                    r.starting(thread);
                }
                os_threads::run(&thread.name, stack, job)
            }
            Some(s) => {
                s.start(thread, job);
                Ok(())
            }
        }
    }

    /// Run `body` as the session's main thread. Under control it runs as
    /// the first fiber, and the session's other threads take their turns
    /// until it is done; on the OS engine it simply runs.
    pub fn enter<R>(
        &self,
        main: &ThreadRecord,
        stack: usize,
        body: impl FnOnce() -> R,
    ) -> std::io::Result<R> {
        match &self.sched {
            None => Ok(body()),
            Some(s) => s.run_main(main, stack, body),
        }
    }

    /// `me` is over (after its record says so): under control the turn
    /// moves on.
    pub fn thread_ended(&self, me: &ThreadRecord) {
        if let Some(s) = &self.sched {
            s.ended(me)
        } else if let Some(r) = &self.recorder {
            r.ended(me)
        }
    }

    /// A helper of the runtime that runs as a thread under control (a
    /// stand-in, a connection's reader, a simulated process's main thread)
    /// is over: the turn moves on. Nothing to do on the OS engine.
    pub fn helper_ended(&self, me: &ThreadRecord) {
        if let Some(s) = &self.sched {
            s.ended(me)
        }
    }

    /// Wait on `cv` for at most `limit` for a helper of the runtime (not a
    /// conc thread) to finish something; true if the time ran out.
    pub fn helper_wait<T>(
        &self,
        cv: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        limit: Duration,
    ) -> bool {
        cv.wait_for(guard, limit).timed_out()
    }

    /// A uniformly random 64-bit number from the session's generator.
    pub fn random(&self) -> u64 {
        super::footprint::touch(self.own_key(super::footprint::RANDOM), true);
        self.rng.next()
    }

    pub fn cpu_count(&self) -> usize {
        match &self.sched {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(_) => CONTROLLED_CPUS,
        }
    }

    pub fn pid(&self) -> u32 {
        match &self.sched {
            None => std::process::id(),
            Some(_) => self.pids.0,
        }
    }

    pub fn parent_pid(&self) -> u32 {
        match &self.sched {
            None => match REMOTE_PARENT.get() {
                Some(pid) => *pid,
                // SAFETY: getppid has no preconditions and cannot fail.
                None => unsafe { libc::getppid() as u32 },
            },
            Some(_) => self.pids.1,
        }
    }

    /// The OS thread id of `me`, called on its own thread (under control, a
    /// number made from its conc id).
    pub fn native_id(&self, me: &ThreadRecord) -> u64 {
        match &self.sched {
            // SAFETY: gettid has no preconditions.
            None => unsafe { libc::gettid() as u64 },
            Some(_) => u64::from(self.pids.0) + me.ident(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_saturates_and_orders() {
        let t = Time::from_nanos(5);
        assert!(t.after(Duration::from_secs(1)) > t);
        assert_eq!(t.after(Duration::MAX), t.after(FAR_FUTURE));
        assert_eq!(t.since(t.after(Duration::from_secs(1))), Duration::ZERO);
    }

    #[test]
    fn an_op_survives_its_byte() {
        for op in Op::ALL {
            assert_eq!(Op::from_byte(op as u8), Some(op));
        }
        assert_eq!(Op::from_byte(Op::ALL.len() as u8), None);
    }

    #[test]
    fn deadlines_pass() {
        let e = Engine::os(Some(1));
        assert!(!e.passed(None));
        assert!(e.passed(Some(Time::ZERO)));
        assert!(!e.passed(Some(e.deadline_after(Duration::from_secs(60)))));
    }

    #[test]
    fn a_parked_thread_wakes_on_unpark_or_deadline() {
        let e = std::sync::Arc::new(Engine::os(Some(1)));
        let me = ThreadRecord::new(1, "t".into(), false);
        let start = Instant::now();
        e.park(&me, Some(e.deadline_after(Duration::from_millis(20))));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // A permit given before the park is not lost.
        e.unpark(&me);
        e.park(&me, None);
    }

    #[test]
    fn spin_stops_early_and_gives_up() {
        let e = Engine::os(Some(1));
        let b = Backoff {
            spins: 3,
            yields: 2,
        };
        let mut n = 0;
        assert!(e.spin(b, || {
            n += 1;
            if n == 3 {
                Spin::Done
            } else {
                Spin::Again
            }
        }));
        assert!(!e.spin(b, || Spin::Stop));
        let mut looks = 0;
        assert!(!e.spin(b, || {
            looks += 1;
            Spin::Again
        }));
        assert_eq!(looks, 5);
    }
}
