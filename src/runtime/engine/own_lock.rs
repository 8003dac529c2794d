//! A lock for data that its owner writes all the time and other threads
//! touch rarely: a traced thread's marks (its own steps, many millions;
//! another thread only when the trace is read out).
//!
//! The owner's way in is two plain stores and a load: no locked
//! instruction, which was a third of what noting a step cost (the clock
//! read is most of the rest). It raises `busy`, then looks whether a
//! visitor `wanted` in; a visitor raises `wanted`, makes every thread of
//! the process pass a full memory barrier (Linux `membarrier`), then waits
//! for `busy` to fall. Each side's store is seen by the other's load in one
//! order or the other, so at most one of them is in (the asymmetric fence
//! of userspace RCU and of folly's hazard pointers). Where `membarrier` is
//! not to be had, the owner pays an ordinary full fence instead.
//!
//! The owner's way is `unsafe`: only one thread may take it at a time, in
//! an order where each taking happens after the one before (the thread the
//! data belongs to; or a thread that hands the data on through a mutex or
//! a thread's start).

use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU8, Ordering};

pub struct OwnLock<T> {
    busy: AtomicBool,
    wanted: AtomicBool,
    /// Visitors come in one at a time.
    visitors: Mutex<()>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard; an owner's guard and
// a visitor's exclude each other (see the module's comment), visitors
// exclude each other by their mutex, and owners take turns by the contract
// of `own`. So at most one thread reaches the value at a time.
unsafe impl<T: Send> Sync for OwnLock<T> {}
unsafe impl<T: Send> Send for OwnLock<T> {}

/// Whether the process may use `membarrier`: not yet known, yes, no.
static BARRIER: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const ASYMMETRIC: u8 = 1;
const SYMMETRIC: u8 = 2;

/// Find out (once) whether visitors can make every thread pass a barrier,
/// so owners can skip theirs. Called before tracing starts; a visitor
/// calls it too, so it never relies on a registration it did not see.
pub fn prepare() -> bool {
    let state = BARRIER.load(Ordering::Acquire);
    if state != UNKNOWN {
        return state == ASYMMETRIC;
    }
    let state = match membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
        true => ASYMMETRIC,
        false => SYMMETRIC,
    };
    // A racing first call found the same answer; either store is right.
    BARRIER.store(state, Ordering::Release);
    state == ASYMMETRIC
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

fn membarrier(cmd: libc::c_long) -> bool {
    // SAFETY: the call takes plain integers and touches no user memory.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_long,
            0 as libc::c_long,
        ) == 0
    }
}

/// A full barrier on every running thread of the process (the owner's
/// half of the bargain when it skips its own).
fn barrier_everywhere() {
    if !(prepare() && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        fence(Ordering::SeqCst);
    }
}

impl<T> OwnLock<T> {
    pub fn new(value: T) -> OwnLock<T> {
        OwnLock {
            busy: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            visitors: Mutex::new(()),
            value: UnsafeCell::new(value),
        }
    }

    /// The owner's way in.
    ///
    /// # Safety
    /// No other thread takes this way at the same time: each `own` happens
    /// after the previous one's guard is gone (see the module's comment).
    #[inline]
    pub unsafe fn own(&self) -> OwnGuard<'_, T> {
        loop {
            self.busy.store(true, Ordering::Relaxed);
            match BARRIER.load(Ordering::Relaxed) {
                ASYMMETRIC => compiler_fence(Ordering::SeqCst),
                _ => fence(Ordering::SeqCst),
            }
            if !self.wanted.load(Ordering::Acquire) {
                return OwnGuard { lock: self };
            }
            self.busy.store(false, Ordering::Release);
            while self.wanted.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
        }
    }

    /// Any thread's way in; costs a system call.
    pub fn visit(&self) -> VisitGuard<'_, T> {
        let one_at_a_time = self.visitors.lock();
        self.wanted.store(true, Ordering::Relaxed);
        barrier_everywhere();
        while self.busy.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        VisitGuard {
            lock: self,
            _one_at_a_time: one_at_a_time,
        }
    }
}

pub struct OwnGuard<'a, T> {
    lock: &'a OwnLock<T>,
}

pub struct VisitGuard<'a, T> {
    lock: &'a OwnLock<T>,
    _one_at_a_time: parking_lot::MutexGuard<'a, ()>,
}

/// Both guards reach the value the same way.
macro_rules! reach {
    ($guard:ident) => {
        impl<T> Deref for $guard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: this guard is in (see `Sync` above).
                unsafe { &*self.lock.value.get() }
            }
        }

        impl<T> DerefMut for $guard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: this guard is in, and `&mut self` makes this the
                // only reference through it.
                unsafe { &mut *self.lock.value.get() }
            }
        }
    };
}
reach!(OwnGuard);
reach!(VisitGuard);

impl<T> Drop for OwnGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.busy.store(false, Ordering::Release);
    }
}

impl<T> Drop for VisitGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.wanted.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Adds one to the value, slowly: a read, a pause, a write, so two
    /// threads in at once lose an update.
    fn bump(n: &mut u64) {
        let seen = *n;
        for _ in 0..20 {
            std::hint::spin_loop();
        }
        // SAFETY: `n` is a valid, exclusive reference. Volatile, so the
        // pause stays between the read and the write.
        unsafe { std::ptr::write_volatile(n, seen + 1) };
    }

    /// An owner counting all the time and visitors counting now and then
    /// lose no update: neither ever gets in while the other is.
    #[test]
    fn an_owner_and_visitors_lose_no_update() {
        prepare();
        let lock = Arc::new(OwnLock::new(0u64));
        let owner = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                for _ in 0..1_000_000 {
                    // SAFETY: this thread is the only owner.
                    bump(&mut *unsafe { lock.own() });
                }
            })
        };
        let visitors: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        bump(&mut lock.visit());
                    }
                })
            })
            .collect();
        owner.join().expect("the owner");
        for v in visitors {
            v.join().expect("a visitor");
        }
        assert_eq!(*lock.visit(), 1_000_000 + 2 * 20_000);
    }
}
