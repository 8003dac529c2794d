//! The OS threads under conc's threads. When a conc thread ends, its OS
//! thread waits a moment for the next `spawn` instead of exiting: a spawn
//! then costs a hand-over rather than a clone, a 64 MiB stack mapping and,
//! at the end, an unmapping (which on a busy machine means TLB shootdowns on
//! every core). Nothing of a finished thread carries over: each job builds
//! its own evaluator, and conc keeps no per-thread state outside it.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle OS thread waits for work before it exits.
#[cfg(not(test))]
const LINGER: Duration = Duration::from_secs(2);
#[cfg(test)]
const LINGER: Duration = Duration::from_millis(100);
/// At most this many wait at once; more exit at once.
const MAX_IDLE: usize = 256;

/// Where an idle OS thread waits for its next job.
#[derive(Default)]
struct Slot {
    job: Mutex<Option<Job>>,
    ready: Condvar,
}

static IDLE: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

/// Run `job` on an idle OS thread, or on a new one with `stack` bytes of
/// stack. `name` names the OS thread (as `ps -L` and debuggers show it).
pub fn run(name: &str, stack: usize, job: Job) -> std::io::Result<()> {
    let idle = IDLE.lock().pop();
    match idle {
        Some(slot) => {
            let name = name.to_string();
            *slot.job.lock() = Some(Box::new(move || {
                set_os_name(&name);
                job()
            }));
            slot.ready.notify_one();
            Ok(())
        }
        None => std::thread::Builder::new()
            .name(name.to_string())
            .stack_size(stack)
            .spawn(move || serve(job))
            .map(|_| ()),
    }
}

/// Run jobs until none comes for `LINGER`.
fn serve(first: Job) {
    let mut job = first;
    loop {
        job();
        match next_job() {
            Some(next) => job = next,
            None => return,
        }
    }
}

fn next_job() -> Option<Job> {
    let slot = Arc::new(Slot::default());
    {
        let mut idle = IDLE.lock();
        if idle.len() >= MAX_IDLE {
            return None;
        }
        idle.push(slot.clone());
    }
    let deadline = Instant::now() + LINGER;
    let mut job = slot.job.lock();
    while job.is_none() {
        if slot.ready.wait_until(&mut job, deadline).timed_out() {
            break;
        }
    }
    if let Some(next) = job.take() {
        return Some(next);
    }
    drop(job);
    let mut idle = IDLE.lock();
    if let Some(i) = idle.iter().position(|s| Arc::ptr_eq(s, &slot)) {
        idle.swap_remove(i);
        return None;
    }
    drop(idle);
    // A spawner took this slot just as the wait ended: its job is on the way.
    let mut job = slot.job.lock();
    loop {
        if let Some(next) = job.take() {
            return Some(next);
        }
        slot.ready.wait(&mut job);
    }
}

/// The OS-level name (at most 15 bytes), for a reused thread.
fn set_os_name(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|b| *b != 0).take(15).collect();
    bytes.push(0);
    // SAFETY: a NUL-terminated buffer that outlives the call.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::mpsc;

    fn os_id() -> i64 {
        // SAFETY: gettid has no preconditions.
        i64::from(unsafe { libc::gettid() })
    }

    /// One job after another: each runs once, on a thread an earlier job
    /// left behind; after the linger time the threads are gone.
    #[test]
    fn jobs_reuse_idle_threads_which_then_exit() {
        let (tx, rx) = mpsc::channel();
        let mut ids = HashSet::new();
        for i in 0..50 {
            let tx = tx.clone();
            run(
                "reuse-test",
                1 << 20,
                Box::new(move || tx.send((i, os_id())).unwrap()),
            )
            .unwrap();
            let (got, id) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, i);
            ids.insert(id);
            // Let the thread reach the idle list before the next spawn.
            std::thread::sleep(Duration::from_millis(2));
        }
        // (Other tests running meanwhile may take an idle thread or two.)
        assert!(
            ids.len() < 25,
            "{} OS threads for 50 sequential jobs",
            ids.len()
        );
        let give_up = Instant::now() + Duration::from_secs(20);
        while !IDLE.lock().is_empty() {
            assert!(
                Instant::now() < give_up,
                "idle threads outlived their linger time"
            );
            std::thread::sleep(LINGER);
        }
    }

    /// Jobs that run at the same time each get a thread of their own.
    #[test]
    fn concurrent_jobs_get_distinct_threads() {
        let n = 20;
        let barrier = Arc::new(std::sync::Barrier::new(n));
        let (tx, rx) = mpsc::channel();
        for _ in 0..n {
            let (barrier, tx) = (barrier.clone(), tx.clone());
            run(
                "distinct-test",
                1 << 20,
                Box::new(move || {
                    barrier.wait();
                    tx.send(os_id()).unwrap();
                }),
            )
            .unwrap();
        }
        let ids: HashSet<i64> = (0..n)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(ids.len(), n);
    }
}
