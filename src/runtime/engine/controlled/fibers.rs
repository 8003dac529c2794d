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

use crate::runtime::int_hash::IntMap;
use crate::runtime::waits::ThreadId;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use parking_lot::Mutex;
use std::cell::Cell;

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
    running: Mutex<IntMap<ThreadId, Held>>,
    waiting: Mutex<IntMap<ThreadId, Job>>,
    owner: Mutex<Option<std::thread::ThreadId>>,
}

thread_local! {
    /// Stacks kept for reuse by the sessions this OS thread drives, with
    /// their sizes (an explorer runs thousands of sessions one after the
    /// other: each would map and unmap its stacks otherwise).
    static SPARE: std::cell::RefCell<Vec<(usize, DefaultStack)>> =
        const { std::cell::RefCell::new(Vec::new()) };
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

    /// Drop every fiber still held (its stack is unwound, so whatever it
    /// holds is let go). A run that ended in a deadlock leaves its threads
    /// suspended, and their stacks hold the session: without this, the
    /// session and its threads would never be freed.
    pub fn clear(&self) {
        let running = std::mem::take(&mut *self.running.lock());
        let waiting = std::mem::take(&mut *self.waiting.lock());
        drop(waiting);
        drop(running);
    }

    /// A thread that never got to run (its creation failed on the way).
    pub fn forget(&self, id: ThreadId) {
        self.waiting.lock().remove(&id);
    }

    fn stack(&self, size: usize) -> std::io::Result<DefaultStack> {
        let kept = SPARE.with(|s| {
            let mut s = s.borrow_mut();
            let i = s.iter().position(|(n, _)| *n == size)?;
            Some(s.swap_remove(i).1)
        });
        match kept {
            Some(stack) => Ok(stack),
            None => DefaultStack::new(size),
        }
    }

    fn spare(&self, size: usize, stack: DefaultStack) {
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_STACKS {
                s.push((size, stack));
            }
        });
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
        // SAFETY: `body` borrows from this frame, and the coroutine does not
        // outlive it: it is driven to completion below, or dropped (which
        // unwinds its stack) before this function returns.
        let mut fiber: Coroutine<(), (), R, DefaultStack> = unsafe {
            Coroutine::with_stack_unchecked(stack, |yielder: &Yielder<(), ()>, ()| {
                enter(yielder);
                body()
            })
        };
        let outer = CURRENT.with(|c| c.replace(std::ptr::null()));
        let result = loop {
            let main_turn = match next() {
                Some(id) if id != main => {
                    if let Err(e) = self.step(id, stack_size) {
                        break Err(e);
                    }
                    false
                }
                // Its turn, or nobody can run and nothing waits: only
                // `main` can end this.
                _ => true,
            };
            if main_turn {
                if let CoroutineResult::Return(r) = fiber.resume(()) {
                    break Ok(r);
                }
            }
        };
        CURRENT.with(|c| c.set(outer));
        if fiber.done() {
            self.spare(stack_size, fiber.into_stack());
        }
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
            CoroutineResult::Return(()) => self.spare(stack_size, fiber.into_stack()),
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
