//! A lock for data that one thread writes all the time and other threads
//! touch rarely: a traced thread's marks (its own steps, many millions;
//! another thread only at its start and when the trace is read out).
//!
//! Taking it is one atomic swap and letting it go one plain store. A
//! `parking_lot::Mutex` lets go with a second locked instruction (it must
//! see whether anyone parked), and with the clock read those two were most
//! of what a traced step cost. Nobody parks here: a thread that finds it
//! taken yields until it is free, which happens only in the rare crossings
//! above, each held for the time of a few writes.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub struct OwnLock<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and a guard exists
// only while `taken` is held (acquired by the swap, released by the store),
// so at most one thread reaches it at a time, as with a mutex.
unsafe impl<T: Send> Sync for OwnLock<T> {}
unsafe impl<T: Send> Send for OwnLock<T> {}

impl<T> OwnLock<T> {
    pub fn new(value: T) -> OwnLock<T> {
        OwnLock {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        while self.taken.swap(true, Ordering::Acquire) {
            while self.taken.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
        }
        Guard { lock: self }
    }
}

pub struct Guard<'a, T> {
    lock: &'a OwnLock<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (see `Sync` above).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock, and `&mut self` makes this
        // the only reference through it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.taken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn threads_taking_it_in_turn_lose_no_update() {
        let lock = Arc::new(OwnLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a counting thread");
        }
        assert_eq!(*lock.lock(), 200_000);
    }
}
