//! How many OS threads this process may have at once, and the slots that
//! count them.
//!
//! Each thread costs four memory mappings: its stack and guard page, and
//! the signal stack and guard page that Rust's std sets up first thing in
//! every new thread. Linux caps a process's mappings (`vm.max_map_count`,
//! usually 65,530). Near the cap `pthread_create` fails cleanly, but a
//! thread created a moment earlier can then fail to map its signal stack,
//! and std panics inside that thread, before any code of ours runs: the
//! process ends with an internal error, after the script already saw a
//! clean one. So threads are counted here and refused well before the cap,
//! leaving room for the rest of the program's mappings.

use crate::diagnostics::{kind, RuntimeError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Mappings a thread costs.
const MAPS_PER_THREAD: usize = 4;
/// Mappings left for everything else: the heap, large allocations,
/// libraries, helper threads.
const OTHER_MAPS: usize = 4096;
/// OS threads whose conc thread ended linger, idle, for the next spawn
/// (at most this many: engine/os_threads.rs); they keep their mappings.
const IDLE_THREADS: usize = 256;
/// If the cap cannot be read: Linux's default.
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The cap's source, and how many threads it allows.
struct Limit {
    max_map_count: usize,
    threads: usize,
}

fn limit() -> &'static Limit {
    static LIMIT: OnceLock<Limit> = OnceLock::new();
    LIMIT.get_or_init(|| {
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_MAP_COUNT);
        let threads = (max_map_count.saturating_sub(OTHER_MAPS) / MAPS_PER_THREAD)
            .saturating_sub(IDLE_THREADS)
            .max(64);
        Limit {
            max_map_count,
            threads,
        }
    })
}

/// How many threads may be alive at once in this process.
pub fn max_threads() -> usize {
    limit().threads
}

/// One OS thread's place in the count, given back when dropped: move it
/// into the thread's closure, so it goes when the thread's work is done,
/// or with the closure if the thread never starts.
pub struct ThreadSlot(());

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A slot for one more thread, or the error that says why there is none.
pub fn reserve() -> Result<ThreadSlot, RuntimeError> {
    let limit = limit();
    let before = LIVE.fetch_add(1, Ordering::AcqRel);
    let slot = ThreadSlot(());
    if before < limit.threads {
        return Ok(slot);
    }
    drop(slot);
    Err(RuntimeError::new(
        kind::ERROR,
        format!(
            "cannot start another thread: {} are running, the most this machine allows at once \
             (from vm.max_map_count = {})",
            limit.threads, limit.max_map_count
        ),
    )
    .with_help("join threads before starting more, or give the work to a thread_pool"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back() {
        // (Other tests start threads meanwhile: only these slots are known.)
        let slots: Vec<ThreadSlot> = (0..10).map(|_| reserve().unwrap()).collect();
        assert!(LIVE.load(Ordering::Acquire) >= 10);
        drop(slots);
        assert!(max_threads() >= 64);
    }
}
