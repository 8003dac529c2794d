//! The stacks conc threads run on under control: stackful coroutines, all
//! driven by the one OS thread that runs the session. A switch from one
//! conc thread to another is two context switches on that OS thread (to the
//! driver and on), a few nanoseconds, instead of a futex wake and a sleep.
//!
//! Code inside a fiber gives up the turn with [`suspend`]; the driver then
//! resumes whichever fiber the scheduler chose. Nothing may be locked when a
//! fiber suspends (the others run on the same OS thread and would wait on
//! it for ever): the runtime only reaches a scheduling point before it takes
//! a guard, and parks with its guards released.

use crate::runtime::waits::ThreadId;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, ScopedCoroutine, Yielder};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::HashMap;

/// A conc thread's body, waiting for its first turn.
pub type Job = Box<dyn FnOnce() + Send>;

type Fiber = Coroutine<(), (), (), DefaultStack>;

/// A fiber held between turns.
struct Held(Fiber);

// SAFETY: a fiber is only ever resumed by the OS thread that drives its
// session (`Fibers::owner`, checked on every drive), so whatever its stack
// holds never runs on another OS thread.
unsafe impl Send for Held {}

/// Stacks kept for reuse: a stack is an mmap and an munmap otherwise.
const SPARE_STACKS: usize = 64;

#[derive(Default)]
pub struct Fibers {
    running: Mutex<HashMap<ThreadId, Held>>,
    waiting: Mutex<HashMap<ThreadId, Job>>,
    stacks: Mutex<Vec<Held2>>,
    owner: Mutex<Option<std::thread::ThreadId>>,
}

/// A spare stack (moved between fibers of one driving thread only).
struct Held2(DefaultStack);

// SAFETY: a stack is plain memory; no fiber is running on a spare one.
unsafe impl Send for Held2 {}

thread_local! {
    /// The yielder of the fiber running on this OS thread (null: none).
    static CURRENT: Cell<*const Yielder<(), ()>> = const { Cell::new(std::ptr::null()) };
}

/// Give the turn back to the driver; returns when this fiber is resumed.
/// Outside a fiber (nothing to suspend) it returns at once.
pub fn suspend() {
    let me = CURRENT.with(Cell::get);
    if me.is_null() {
        return;
    }
    // SAFETY: `me` was set by the fiber now running (`enter`), from the
    // yielder its body was given, which lives as long as the fiber does.
    unsafe { (*me).suspend(()) };
    CURRENT.with(|c| c.set(me));
}

/// Whether the caller runs inside a fiber.
pub fn in_fiber() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// The first thing a fiber's body does: say whose yielder is current.
fn enter(yielder: &Yielder<(), ()>) {
    CURRENT.with(|c| c.set(yielder as *const _));
}

impl Fibers {
    /// `id`'s body, to start on its first turn.
    pub fn add(&self, id: ThreadId, job: Job) {
        self.waiting.lock().insert(id, job);
    }

    /// A thread that never got to run (its creation failed on the way).
    pub fn forget(&self, id: ThreadId) {
        self.waiting.lock().remove(&id);
    }

    fn stack(&self, size: usize) -> std::io::Result<DefaultStack> {
        match self.stacks.lock().pop() {
            Some(Held2(stack)) => Ok(stack),
            None => DefaultStack::new(size),
        }
    }

    fn spare(&self, stack: DefaultStack) {
        let mut stacks = self.stacks.lock();
        if stacks.len() < SPARE_STACKS {
            stacks.push(Held2(stack));
        }
    }

    /// Run `main` in a fiber of its own, and every other fiber whenever
    /// `next()` names it, until `main` returns. `next` says whose turn it
    /// is (it is called after every suspension).
    pub fn drive<R>(
        &self,
        stack_size: usize,
        main: ThreadId,
        next: impl Fn() -> Option<ThreadId>,
        body: impl FnOnce() -> R,
    ) -> std::io::Result<R> {
        self.claim()?;
        let stack = self.stack(stack_size)?;
        let fiber = ScopedCoroutine::with_stack(stack, |yielder: &Yielder<(), ()>, ()| {
            enter(yielder);
            body()
        });
        let outer = CURRENT.with(|c| c.replace(std::ptr::null()));
        let result = fiber.scope(|mut fiber| loop {
            match next() {
                Some(id) if id == main => {
                    if let CoroutineResult::Return(r) = fiber.as_mut().resume(()) {
                        return Ok(r);
                    }
                }
                Some(id) => self.step(id, stack_size)?,
                // Nobody can run and nothing waits: only `main` can end this.
                None => {
                    if let CoroutineResult::Return(r) = fiber.as_mut().resume(()) {
                        return Ok(r);
                    }
                }
            }
        });
        CURRENT.with(|c| c.set(outer));
        result
    }

    /// Give fiber `id` its turn (starting it if this is its first).
    fn step(&self, id: ThreadId, stack_size: usize) -> std::io::Result<()> {
        let held = self.running.lock().remove(&id);
        let mut fiber = match held {
            Some(Held(fiber)) => fiber,
            None => match self.waiting.lock().remove(&id) {
                Some(job) => {
                    let stack = self.stack(stack_size)?;
                    Fiber::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
                        enter(yielder);
                        job()
                    })
                }
                // Its body has already run to the end.
                None => return Ok(()),
            },
        };
        match fiber.resume(()) {
            CoroutineResult::Yield(()) => {
                self.running.lock().insert(id, Held(fiber));
            }
            CoroutineResult::Return(()) => self.spare(fiber.into_stack()),
        }
        Ok(())
    }

    /// Fibers run on the OS thread that first drove them, and on no other.
    fn claim(&self) -> std::io::Result<()> {
        let me = std::thread::current().id();
        let mut owner = self.owner.lock();
        match *owner {
            None => {
                *owner = Some(me);
                Ok(())
            }
            Some(o) if o == me => Ok(()),
            Some(_) => Err(std::io::Error::other(
                "a controlled session runs on the OS thread that started it",
            )),
        }
    }
}
