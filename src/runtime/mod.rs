//! The runtime: threads, processes and every shared object. Every blocking
//! operation goes through `waits`, which records who waits for what and where.

pub mod clock;
pub mod output;
pub mod threads;
pub mod waits;

use crate::diagnostics::RuntimeError;
use crate::eval::globals::Globals;
use crate::span::SourceMap;
use output::Output;
use std::fmt;
use std::sync::Arc;
pub use threads::{ThreadHandle, ThreadRecord, ThreadRef};

/// Reports an error that no script can see any more (a failed thread that
/// nobody will join). Installed by the front end, which knows how to render.
pub type ErrorReporter = Box<dyn Fn(&str, &RuntimeError) + Send + Sync>;

/// Everything the threads of one process share.
pub struct Context {
    pub globals: Globals,
    pub sources: SourceMap,
    pub out: Arc<dyn Output>,
    pub argv: Vec<String>,
    pub registry: waits::Registry,
    pub reporter: ErrorReporter,
    /// Per-base-name counters for default thread names (`worker-1`, `worker-2`).
    pub names: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
}

impl Context {
    pub fn next_name(&self, base: &str) -> String {
        let mut names = self.names.lock();
        let n = names.entry(base.to_string()).or_insert(0);
        *n += 1;
        format!("{}-{}", base, n)
    }

    pub fn report_unjoined(&self, thread: &str, err: &RuntimeError) {
        // A deadlock is reported once, by whoever detected it.
        if !err.is(crate::diagnostics::kind::DEADLOCK) && !err.is(crate::diagnostics::kind::INTERRUPTED) {
            (self.reporter)(thread, err);
        }
    }
}

pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A reference to a runtime object, as held by a `Value`.
#[derive(Clone, Debug)]
pub enum Handle {
    Thread(Arc<ThreadHandle>),
}

impl Handle {
    /// The name `type(v)` gives.
    pub fn kind(&self) -> &'static str {
        match self {
            Handle::Thread(_) => "thread",
        }
    }

    /// Identity: `==` on handles.
    pub fn same(&self, other: &Handle) -> bool {
        match (self, other) {
            (Handle::Thread(a), Handle::Thread(b)) => Arc::ptr_eq(&a.record, &b.record),
        }
    }

    /// `len(h)` for handles that have one (queues).
    pub fn len(&self) -> Option<usize> {
        None
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::Thread(t) => write!(f, "{}", t),
        }
    }
}
