//! What one stretch of a controlled run touched, for exploration.
//!
//! Under the controlled engine a thread runs from one scheduling point to
//! the next without interruption: a *transition*. Exploration must know
//! which transitions of different threads can be swapped without changing
//! anything, so it needs each transition's footprint: every global, object,
//! list, map and shared variable it read or wrote. Announced operations
//! (`Step`) name their object; data reached without a scheduling point
//! (a list shared by reference, a captured variable two closures share,
//! the session's random numbers) is recorded here as it is touched.
//!
//! The recorder is per OS thread: every fiber of a controlled session runs
//! on the one OS thread that drives it, so "this OS thread" is "the
//! transition running now". Recording is off unless an explorer turns it
//! on, and then costs a flag test per access.

use std::cell::{Cell, RefCell};

/// One thing a transition touched, and whether it may have changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub key: u64,
    pub write: bool,
}

impl Access {
    /// Whether two accesses (of different threads) conflict.
    pub fn conflicts(self, other: Access) -> bool {
        (self.key == other.key || self.key == EVERYTHING || other.key == EVERYTHING)
            && (self.write || other.write)
    }
}

/// Key spaces; object ids and global cells (`1 << 63`) use the rest.
/// A thread's end, which `join` waits for: `THREAD | id`.
pub const THREAD: u64 = 1 << 62;
/// A list, map or shared variable: `DATA | its number in this run`.
pub const DATA: u64 = 1 << 61;
/// The session's random numbers, and its counters of ids and names.
pub const RANDOM: u64 = (1 << 60) | 1;
pub const IDS: u64 = (1 << 60) | 2;
/// Time passing to the next deadline (adversarial time): it may change what
/// any waiting thread does next, so it conflicts with every access.
pub const EVERYTHING: u64 = (1 << 60) | 3;

#[derive(Default)]
struct Recorder {
    touched: Vec<Access>,
}

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    /// Data made in this run so far. Data is named by the order it was
    /// made in: an address means nothing in another run (the allocator
    /// differs), the order of creation does, since a run is a function of
    /// its schedule.
    static MADE: Cell<u64> = const { Cell::new(0) };
    static RECORDER: RefCell<Recorder> = RefCell::new(Recorder::default());
}

/// Start recording a new run on this OS thread.
pub fn start() {
    RECORDER.with(|r| *r.borrow_mut() = Recorder::default());
    MADE.with(|m| m.set(0));
    ON.with(|on| on.set(true));
}

/// Stop recording (the run is over).
pub fn stop() {
    ON.with(|on| on.set(false));
    RECORDER.with(|r| *r.borrow_mut() = Recorder::default());
}

#[inline(always)]
fn recording() -> bool {
    ON.with(Cell::get)
}

/// The accesses since the last call.
pub fn take() -> Vec<Access> {
    RECORDER.with(|r| std::mem::take(&mut r.borrow_mut().touched))
}

/// `key` was read (`write` false) or may have been changed.
#[inline(always)]
pub fn touch(key: u64, write: bool) {
    if recording() {
        record(key, write);
    }
}

#[cold]
fn record(key: u64, write: bool) {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        // Transitions are short: a linear check keeps the list small.
        if let Some(a) = r.touched.iter_mut().find(|a| a.key == key) {
            a.write |= write;
        } else {
            r.touched.push(Access { key, write });
        }
    })
}

/// The number of data made now (0 when not recording: all such data is
/// one key, which only ever adds conflicts).
#[inline(always)]
fn serial() -> u64 {
    if recording() {
        MADE.with(|m| {
            let n = m.get() + 1;
            m.set(n);
            n
        })
    } else {
        0
    }
}

/// The key `key` (an object id, or a global cell `1 << 63 | n`) names in
/// process `process` of a controlled run (0: the top one; see
/// `engine::THREAD_BITS`). Simulated processes number their objects and
/// globals from the same start: their keys must not meet.
pub fn in_process(key: u64, process: u64) -> u64 {
    if process == 0 || !(key >> 60 == 0 || key >> 60 == 8) {
        return key;
    }
    key | (process.min((1 << 28) - 1) << 32)
}

/// Whether `key` is a global cell (of any process).
pub fn is_global(key: u64) -> bool {
    key >> 60 == 8
}

/// A key of its own for something made now that exploration must see
/// touched (a channel between simulated processes).
pub fn new_key() -> u64 {
    DATA | serial()
}

/// A mutex around data scripts share by reference (lists, maps, captured
/// variables): every lock is an access the recorder sees.
pub struct Shared<T> {
    serial: u64,
    inner: parking_lot::Mutex<T>,
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared {
            serial: serial(),
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// A lock is a read or a change (it does not say which: counted as a
    /// change).
    #[inline(always)]
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
        touch(DATA | self.serial, true);
        self.inner.lock()
    }

    /// A lock to read only.
    #[inline(always)]
    pub fn read(&self) -> parking_lot::MutexGuard<'_, T> {
        touch(DATA | self.serial, false);
        self.inner.lock()
    }

    /// How the scheduler names this data among objects (`Step::object`).
    pub fn key(&self) -> u64 {
        DATA | self.serial
    }

    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_when_on_and_numbers_data_by_creation() {
        touch(5, true);
        assert!(take().is_empty());
        start();
        let a = Shared::new(1);
        let b = Shared::new(2);
        drop(b.lock());
        drop(a.lock());
        touch(7, false);
        touch(7, true);
        let got = take();
        stop();
        assert_eq!(
            got,
            vec![
                Access {
                    key: DATA | 2,
                    write: true
                },
                Access {
                    key: DATA | 1,
                    write: true
                },
                Access {
                    key: 7,
                    write: true
                },
            ]
        );
        assert!(Access {
            key: 7,
            write: false
        }
        .conflicts(Access {
            key: 7,
            write: true
        }));
        assert!(!Access {
            key: 7,
            write: false
        }
        .conflicts(Access {
            key: 7,
            write: false
        }));
    }
}
