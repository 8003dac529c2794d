//! The runtime: threads, processes and every shared object. Every blocking
//! operation goes through `waits`, which records who waits for what and
//! where; time, parking and thread starts go through `engine`.

pub mod arena;
pub mod engine;
pub mod fd_pass;
pub mod footprint;
pub mod habits;
pub mod handoff;
pub mod int_hash;
pub mod lease;
pub mod locks;
pub mod object;
pub mod ops;
pub mod output;
pub mod pools;
pub mod process;
pub mod queues;
pub mod signals;
pub mod thread_slots;
pub mod threads;
pub mod value;
pub mod waits;

use crate::diagnostics::RuntimeError;
use crate::span::SourceMap;
use output::Output;
use std::fmt;
use std::sync::Arc;
pub use threads::{ThreadHandle, ThreadRecord, ThreadRef};
use value::globals::Globals;
use value::Function;

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
    /// Pools still accepting work; the end of the script drains them.
    pub pools: parking_lot::Mutex<Vec<std::sync::Weak<pools::Pool>>>,
    /// Every function of the program, to rebuild closures sent by other processes.
    pub functions: FnIndex,
    /// Every builtin the evaluator offers: they cross between processes by name.
    pub builtins: Vec<&'static value::Builtin>,
    /// This process was spawned as a daemon: it may not spawn processes.
    pub daemon_process: bool,
    /// Reports are coloured (children render the way their parent does).
    pub color: bool,
    /// Memory shared with the processes this one spawns (`arena.rs`),
    /// mapped on first use.
    pub arena: std::sync::OnceLock<Option<Arc<arena::Arena>>>,
    /// How a child process is simulated under the controlled engine (the
    /// session layer provides it: it makes the child's session).
    pub child_entry: process::simulated::ChildEntry,
    /// This process's connections to its parent and its children, for
    /// `settle_posts`.
    pub links: parking_lot::Mutex<Vec<std::sync::Weak<dyn SendsAhead>>>,
}

/// A connection that may send operations without waiting for them (a
/// put into another process's unbounded queue: `process::Link`).
pub trait SendsAhead: Send + Sync {
    /// Wait until whatever `me`'s process sent ahead has taken effect.
    fn settle(&self, ctx: &Context, me: &ThreadRef);
}

/// Function objects by where they are declared: the same in every process
/// of a program, since each parses the same sources.
#[derive(Default)]
pub struct FnIndex {
    by_place: parking_lot::Mutex<std::collections::HashMap<(u32, u32), Arc<Function>>>,
}

impl FnIndex {
    /// Another index with the same functions (a session that goes on from
    /// this one's definitions).
    pub fn copy(&self) -> FnIndex {
        FnIndex {
            by_place: parking_lot::Mutex::new(self.by_place.lock().clone()),
        }
    }

    pub fn add(&self, functions: &[Arc<crate::ast::FnDecl>]) {
        let mut map = self.by_place.lock();
        for f in functions {
            map.insert(place(f), Arc::new(Function::new(f.clone())));
        }
    }

    pub fn find(&self, src: u32, start: u32) -> Option<Arc<Function>> {
        self.by_place.lock().get(&(src, start)).cloned()
    }

    /// The function object of `decl` (made here if `add` never saw it).
    pub fn of(&self, decl: &Arc<crate::ast::FnDecl>) -> Arc<Function> {
        self.by_place
            .lock()
            .entry(place(decl))
            .or_insert_with(|| Arc::new(Function::new(decl.clone())))
            .clone()
    }
}

fn place(f: &crate::ast::FnDecl) -> (u32, u32) {
    (f.span.src.0, f.span.start)
}

impl Context {
    #[inline]
    pub fn engine(&self) -> &engine::Engine {
        self.registry.engine()
    }

    /// Before `me` acts on the world outside conc (writes a file): wait
    /// until every put this process sent ahead without waiting has taken
    /// effect at its owner, so whoever sees the effect cannot miss the put.
    pub fn settle_posts(&self, me: &ThreadRef) {
        let links: Vec<_> = self
            .links
            .lock()
            .iter()
            .filter_map(|l| l.upgrade())
            .collect();
        for link in links {
            link.settle(self, me);
        }
    }

    /// This process's arena; none under the controlled engine (which
    /// starts no OS processes) or if the OS refused one.
    pub fn arena(&self) -> Option<&Arc<arena::Arena>> {
        self.arena
            .get_or_init(|| {
                self.engine()
                    .scheduler()
                    .is_none()
                    .then(|| arena::Arena::create().ok())
                    .flatten()
            })
            .as_ref()
    }

    /// The moment `d` from now on the session's clock.
    pub fn deadline_after(&self, d: std::time::Duration) -> engine::Time {
        self.engine().deadline_after(d)
    }

    /// Seconds left until `deadline`, as sent with an operation to the
    /// process that owns the object.
    pub fn seconds_left(&self, deadline: Option<engine::Time>) -> Option<f64> {
        deadline.map(|d| self.engine().seconds_left(d))
    }

    /// The builtin called `name`, however the program has rebound that name.
    pub fn builtin_named(&self, name: &str) -> Option<&'static value::Builtin> {
        self.builtins.iter().copied().find(|b| b.name == name)
    }

    /// The source text at `span` (objects are named in reports by the
    /// expression that reached them).
    pub fn source_text(&self, span: crate::span::Span) -> String {
        self.sources
            .get(span.src)
            .and_then(|s| {
                s.text
                    .get(span.start as usize..span.end as usize)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    pub fn next_name(&self, base: &str) -> String {
        let mut names = self.names.lock();
        let n = names.entry(base.to_string()).or_insert(0);
        *n += 1;
        format!("{}-{}", base, n)
    }

    pub fn report_unjoined(&self, thread: &str, err: &RuntimeError) {
        // A deadlock is reported once, by whoever detected it; an `exit`
        // ends the run silently.
        if !err.ends_the_run() {
            (self.reporter)(thread, err);
        }
    }
}

/// A reference to a runtime object, as held by a `Value`.
#[derive(Clone)]
pub enum Handle {
    Thread(Arc<ThreadHandle>),
    Lock(Arc<locks::Lock>),
    Event(Arc<signals::Event>),
    Condition(Arc<signals::Condition>),
    Barrier(Arc<signals::Barrier>),
    Queue(Arc<queues::Queue>),
    Pipe(Arc<queues::PipeEnd>),
    Pool(Arc<pools::Pool>),
    Future(Arc<pools::Future>),
    Timer(Arc<pools::Timer>),
    /// A shared object owned by another process.
    Remote(Arc<process::Remote>),
}

impl Handle {
    /// What the object is and can do (see `object.rs`): the one place that
    /// lists every kind.
    #[inline]
    pub fn object(&self) -> &dyn object::Object {
        match self {
            Handle::Thread(t) => &**t,
            Handle::Lock(l) => &**l,
            Handle::Event(e) => &**e,
            Handle::Condition(c) => &**c,
            Handle::Barrier(b) => &**b,
            Handle::Queue(q) => &**q,
            Handle::Pipe(p) => &**p,
            Handle::Pool(p) => &**p,
            Handle::Future(f) => &**f,
            Handle::Timer(t) => &**t,
            Handle::Remote(r) => &**r,
        }
    }

    /// The name `type(v)` gives.
    pub fn kind(&self) -> &'static str {
        self.object().kind()
    }

    /// Identity: `==` on handles (two handles of one thread are equal).
    pub fn same(&self, other: &Handle) -> bool {
        match (self, other) {
            (Handle::Thread(a), Handle::Thread(b)) => Arc::ptr_eq(&a.record, &b.record),
            _ => std::ptr::addr_eq(
                self.object() as *const dyn object::Object,
                other.object() as *const dyn object::Object,
            ),
        }
    }

    /// The lock behind a lock, rlock, semaphore or condition.
    pub fn lock(&self) -> Option<&Arc<locks::Lock>> {
        match self {
            Handle::Lock(l) => Some(l),
            Handle::Condition(c) => Some(&c.lock),
            _ => None,
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object().describe())
    }
}
