//! Threads: real OS threads, each running its own evaluator.
//!
//! A `ThreadRecord` is the runtime's view of a thread (name, parker, locks
//! held, result); a `ThreadHandle` is what scripts hold. When a thread fails
//! and no handle to it is left (or the last one goes away unjoined), its error
//! is reported then, since nobody can `join` it any more.

use super::engine::{Op, Parker, Time};
use super::object::{call_method, names, Cx, Members, Method, Object, Reply, Res};
use super::waits::{block_until, BlockOn, ThreadId, WaitQueue};
use super::Context;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::value::Value;
use crate::span::Span;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

pub type ThreadRef = Arc<ThreadRecord>;

/// A lock a thread holds, for reports; cheap to record on every acquire.
#[derive(Clone, Debug)]
pub struct Held {
    pub kind: &'static str,
    pub id: u64,
    /// Where it was acquired (to name it as the script does).
    pub span: Option<Span>,
}

/// Interpreter threads get a large stack so deep (bounded) recursion in
/// scripts never overflows it; untouched stack pages cost nothing.
pub const THREAD_STACK: usize = 64 * 1024 * 1024;

enum Outcome {
    Running,
    Done(Result<Value, RuntimeError>),
}

struct Finish {
    outcome: Outcome,
    waiters: WaitQueue,
    /// Someone took the result (join) or it was already reported.
    claimed: bool,
    /// Threads in `join` on it now (the end of the script waits too, but
    /// does not take the result: an error must still be shown).
    joining: usize,
}

pub struct ThreadRecord {
    pub id: ThreadId,
    pub name: String,
    pub daemon: bool,
    pub(crate) parker: Parker,
    interrupted: AtomicBool,
    interrupt: Mutex<Option<RuntimeError>>,
    held: Mutex<Vec<Held>>,
    finish: Mutex<Finish>,
    handle: Mutex<Weak<ThreadHandle>>,
    os_id: AtomicU64,
    /// Set when this record stands for a child process rather than a thread.
    pub process: Option<Arc<super::process::ProcessInfo>>,
    /// A stand-in doing another process's thread's operations here.
    pub stand_in: bool,
    /// Its steps, when a run on the OS engine is traced (`engine::recorder`).
    pub(crate) marks: super::engine::own_lock::OwnLock<super::engine::recorder::Marks>,
}

impl std::fmt::Debug for ThreadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<thread {}>", self.name)
    }
}

impl ThreadRecord {
    /// A thread record with id `id` (from its session's registry, which
    /// numbers its threads: `Registry::new_thread`).
    pub fn new(id: ThreadId, name: String, daemon: bool) -> ThreadRef {
        Self::build(id, name, daemon, None, false)
    }

    /// The stand-in for a thread of another process (always a daemon: the
    /// end of the script never waits for one).
    pub fn new_stand_in(id: ThreadId, name: String) -> ThreadRef {
        Self::build(id, name, true, None, true)
    }

    /// One of this process's own threads (not a child process, not a
    /// stand-in for another process's thread): what `threads()` lists.
    pub fn is_own_thread(&self) -> bool {
        self.process.is_none() && !self.stand_in
    }

    pub fn new_process(
        id: ThreadId,
        name: String,
        daemon: bool,
        info: Arc<super::process::ProcessInfo>,
    ) -> ThreadRef {
        Self::build(id, name, daemon, Some(info), false)
    }

    /// "thread" or "process", for messages.
    pub fn noun(&self) -> &'static str {
        if self.process.is_some() {
            "process"
        } else {
            "thread"
        }
    }

    fn build(
        id: ThreadId,
        name: String,
        daemon: bool,
        process: Option<Arc<super::process::ProcessInfo>>,
        stand_in: bool,
    ) -> ThreadRef {
        Arc::new(ThreadRecord {
            id,
            name,
            daemon,
            parker: Parker::default(),
            interrupted: AtomicBool::new(false),
            interrupt: Mutex::new(None),
            held: Mutex::new(Vec::new()),
            finish: Mutex::new(Finish {
                outcome: Outcome::Running,
                waiters: WaitQueue::default(),
                claimed: false,
                joining: 0,
            }),
            handle: Mutex::new(Weak::new()),
            os_id: AtomicU64::new(0),
            process,
            stand_in,
            marks: super::engine::own_lock::OwnLock::new(Default::default()),
        })
    }

    pub fn set_interrupt(&self, err: RuntimeError) {
        *self.interrupt.lock() = Some(err);
        self.interrupted.store(true, Ordering::Release);
    }

    /// The pending interrupt, if any; cheap when there is none (checked at
    /// every loop iteration).
    #[inline]
    pub fn take_interrupt(&self) -> Option<RuntimeError> {
        if !self.interrupted.load(Ordering::Acquire) {
            return None;
        }
        self.interrupted.store(false, Ordering::Release);
        self.interrupt.lock().take()
    }

    /// Whether an interrupt waits to be taken (it stays pending).
    pub fn interrupt_pending(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }

    pub fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::Release);
        self.interrupt.lock().take();
    }

    pub fn add_held(&self, held: Held) {
        self.held.lock().push(held);
    }

    /// Forget the most recent holding of object `id`.
    pub fn remove_held(&self, id: u64) {
        let mut held = self.held.lock();
        if let Some(i) = held.iter().rposition(|h| h.id == id) {
            held.remove(i);
        }
    }

    /// Semaphore permits and other processes' locks it holds, in the order
    /// taken (its own locks and rlocks are recorded in the locks: see
    /// `Registry::held_by`).
    pub fn held_extra(&self) -> Vec<Held> {
        self.held.lock().clone()
    }

    pub fn alive(&self) -> bool {
        matches!(self.finish.lock().outcome, Outcome::Running)
    }

    /// Its number within its process (`ident`): under control a simulated
    /// process's thread ids carry the process in their high bits.
    pub fn ident(&self) -> u64 {
        self.id & ((1 << super::engine::THREAD_BITS) - 1)
    }

    pub fn os_id(&self) -> u64 {
        self.os_id.load(Ordering::Relaxed)
    }

    fn state_word(&self) -> &'static str {
        match &self.finish.lock().outcome {
            Outcome::Running => "running",
            Outcome::Done(Ok(_)) => "done",
            Outcome::Done(Err(_)) => "failed",
        }
    }

    /// Record the result and wake joiners; returns the error if no `join`
    /// is waiting for it, to be reported now: an error is shown when it
    /// happens, not when (or if) someone joins. A later join re-raises it;
    /// it is never reported twice.
    fn finish(&self, result: Result<Value, RuntimeError>, ctx: &Context) -> Option<RuntimeError> {
        let mut finish = self.finish.lock();
        let orphan_error = match &result {
            Err(e) if finish.joining == 0 => {
                finish.claimed = true;
                Some(e.clone())
            }
            _ => None,
        };
        // Out before anyone waiting learns that the thread is over: the
        // end of the script waits for it, then the process may exit.
        if let Some(e) = &orphan_error {
            ctx.report_unjoined(&self.name, e);
        }
        finish.outcome = Outcome::Done(result);
        finish.waiters.wake_all(&ctx.registry);
        orphan_error
    }
}

/// What a script holds for a thread (`spawn` gives one, so does `current()`).
pub struct ThreadHandle {
    pub record: ThreadRef,
    ctx: Weak<Context>,
}

impl std::fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<thread {}>", self.record.name)
    }
}

impl std::fmt::Display for ThreadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.record.process {
            Some(p) => write!(
                f,
                "<process {} pid {}{} {}>",
                self.record.name,
                p.pid,
                p.host().map(|h| format!(" on {}", h)).unwrap_or_default(),
                self.record.state_word()
            ),
            None => write!(
                f,
                "<thread {} {}>",
                self.record.name,
                self.record.state_word()
            ),
        }
    }
}

impl Drop for ThreadHandle {
    /// The last handle of a failed, never-joined thread: report its error now.
    fn drop(&mut self) {
        let mut finish = self.record.finish.lock();
        if finish.claimed {
            return;
        }
        if let Outcome::Done(Err(e)) = &finish.outcome {
            let e = e.clone();
            finish.claimed = true;
            drop(finish);
            if let Some(ctx) = self.ctx.upgrade() {
                ctx.report_unjoined(&self.record.name, &e);
            }
        }
    }
}

impl ThreadHandle {
    /// The handle for a record, shared while any script value holds it.
    pub fn for_record(record: &ThreadRef, ctx: &Arc<Context>) -> Arc<ThreadHandle> {
        let mut slot = record.handle.lock();
        if let Some(h) = slot.upgrade() {
            return h;
        }
        let h = Arc::new(ThreadHandle {
            record: record.clone(),
            ctx: Arc::downgrade(ctx),
        });
        *slot = Arc::downgrade(&h);
        h
    }

    /// `join t [timeout s]`: the thread's value, or its error re-raised.
    pub fn join(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        deadline: Option<Time>,
        span: Span,
    ) -> Result<Value, RuntimeError> {
        let op = if deadline.is_none() {
            Op::Join
        } else {
            Op::Wait
        };
        let object = crate::runtime::footprint::THREAD | self.record.id;
        ctx.engine().point_on(me, op, object, Some(span));
        if Arc::ptr_eq(&self.record, me) {
            return Err(RuntimeError::new(
                kind::VALUE,
                format!("thread {} cannot join itself", me.name),
            ));
        }
        let noun = self.record.noun();
        let on = BlockOn {
            joins: Some(self.record.id),
            ..BlockOn::new(
                format!("{} {} to finish", noun, self.record.name),
                Some(span),
                deadline,
            )
        };
        let mut finish = self.record.finish.lock();
        finish.joining += 1;
        let done = block_until(
            &ctx.registry,
            me,
            &mut finish,
            &on,
            |f| &mut f.waiters,
            |f| match &f.outcome {
                Outcome::Running => None,
                Outcome::Done(r) => Some(r.clone()),
            },
        );
        finish.joining -= 1;
        let done = done?;
        match done {
            None => Err(RuntimeError::new(
                kind::TIMEOUT,
                format!("{} {} is still running", noun, self.record.name),
            )),
            Some(result) => {
                finish.claimed = true;
                result.map_err(|e| rejoin_error(e, &self.record.name, span))
            }
        }
    }
}

/// `sleep(d)`: a timed, interruptible wait.
pub fn sleep(ctx: &Context, me: &ThreadRef, d: std::time::Duration) -> Result<(), RuntimeError> {
    let on = BlockOn::new("sleep", None, Some(ctx.deadline_after(d)));
    super::waits::sleep_until(&ctx.registry, me, &on)
}

/// A joined thread's error keeps its own location; the join site is added.
pub fn rejoin_error(mut e: RuntimeError, name: &str, join_span: Span) -> RuntimeError {
    if !e.is(kind::DEADLOCK) {
        e.notes.push(crate::diagnostics::Note {
            message: format!("raised in {}, re-raised by this join", name),
            span: Some(join_span),
        });
    }
    e
}

/// A thread's (or process's) name becomes its OS thread's name, which is a
/// C string: a NUL byte cannot be part of it.
pub fn check_thread_name(name: &str) -> Result<(), RuntimeError> {
    if !name.contains('\0') {
        return Ok(());
    }
    Err(RuntimeError::new(
        kind::VALUE,
        format!("a thread name cannot contain a NUL byte: {}", quoted(name)),
    )
    .with_help("remove the \\u{0} from the name"))
}

fn quoted(name: &str) -> String {
    let mut out = String::new();
    crate::runtime::value::quote_str(&mut out, name);
    out
}

/// Start `body` on a new OS thread registered with the runtime. The handle
/// exists before the thread runs, so a quick failure is never mistaken for
/// an orphan.
pub fn spawn(
    ctx: &Arc<Context>,
    name: String,
    daemon: bool,
    body: Box<dyn FnOnce(ThreadRef) -> Result<Value, RuntimeError> + Send>,
) -> Result<Arc<ThreadHandle>, RuntimeError> {
    // Checked again here, not only where `named` is evaluated: the OS
    // thread is named after it, and std panics on a NUL in a thread name.
    check_thread_name(&name)?;
    let slot = super::thread_slots::reserve()?;
    let record = ctx.registry.new_thread(name, daemon);
    let handle = ThreadHandle::for_record(&record, ctx);
    ctx.registry.register(record.clone());
    let (ctx2, rec2) = (ctx.clone(), record.clone());
    let started = ctx.engine().start_thread(
        &record,
        THREAD_STACK,
        Box::new(move || {
            run_thread(ctx2, rec2, body);
            drop(slot);
        }),
    );
    if let Err(e) = started {
        ctx.registry.unregister(record.id);
        return Err(RuntimeError::new(
            kind::ERROR,
            format!("the OS refused to start a thread: {}", e),
        ));
    }
    Ok(handle)
}

fn run_thread(
    ctx: Arc<Context>,
    record: ThreadRef,
    body: Box<dyn FnOnce(ThreadRef) -> Result<Value, RuntimeError> + Send>,
) {
    let native = ctx.engine().native_id(&record);
    record.os_id.store(native, Ordering::Relaxed);
    let result = body(record.clone());
    // `exit()` in this thread ends the whole program, not just the thread.
    if let Err(e) = &result {
        if e.is(kind::EXIT) {
            ctx.registry.end_run(&record, e.clone());
        }
    }
    record.end(result, &ctx);
    ctx.engine().thread_ended(&record);
}

impl ThreadRecord {
    /// The thread (or process) is over: record its result, wake joiners,
    /// leave the registry, and report an error nobody can join any more.
    pub(crate) fn end(&self, result: Result<Value, RuntimeError>, ctx: &Context) {
        // An error nobody joins is reported by `finish`, before leaving the
        // registry: if its end leaves the others stuck, the error that
        // caused it comes first, and the deadlock report names it.
        if let Some(e) = self.finish(result, ctx) {
            ctx.registry
                .note_failure(format!("{} {}", self.noun(), self.name), &e);
        }
        ctx.registry.unregister(self.id);
    }

    /// Wait until it has ended; false if `on.deadline` came first.
    pub fn wait_finished(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        on: &BlockOn,
    ) -> Result<bool, RuntimeError> {
        let mut finish = self.finish.lock();
        let done = block_until(
            &ctx.registry,
            me,
            &mut finish,
            on,
            |f| &mut f.waiters,
            |f| matches!(f.outcome, Outcome::Done(_)).then_some(()),
        )?;
        Ok(done.is_some())
    }
}

/// The end of the main script: wait for every non-daemon thread.
pub fn join_non_daemon(ctx: &Arc<Context>, me: &ThreadRef, span: Span) -> Result<(), RuntimeError> {
    loop {
        let pending: Vec<ThreadRef> = ctx
            .registry
            .snapshot()
            .into_iter()
            .map(|info| info.thread)
            .filter(|t| !t.daemon && t.id != me.id && t.alive())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        for t in pending {
            let on = BlockOn::new(
                format!("{} {} to finish (end of script)", t.noun(), t.name),
                Some(span),
                None,
            );
            t.wait_finished(ctx, me, &on)?;
        }
    }
}

fn alive_method(t: &ThreadHandle, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, t.record.id);
    Ok(Value::Bool(t.record.alive()).into())
}

/// `p.terminate()` / `p.kill()`: only processes can be stopped.
fn stop_method(t: &ThreadHandle, cx: &Cx, signal: i32) -> Res<Reply> {
    let Some(p) = &t.record.process else {
        return Err(RuntimeError::new(
            kind::TYPE,
            format!(
                "thread {} cannot be terminated: only processes can",
                t.record.name
            ),
        )
        .with_help("ask the thread to stop with an event it checks, or use `spawn process`"));
    };
    cx.point(Op::Signal, t.record.id);
    p.signal(signal);
    Ok(Value::Nil.into())
}

static METHODS: &[Method<ThreadHandle>] = &[
    Method {
        name: "alive",
        args: (0, 0),
        call: alive_method,
    },
    Method {
        name: "is_alive",
        args: (0, 0),
        call: alive_method,
    },
    Method {
        name: "terminate",
        args: (0, 0),
        call: |t, cx, _| stop_method(t, cx, libc::SIGTERM),
    },
    Method {
        name: "kill",
        args: (0, 0),
        call: |t, cx, _| stop_method(t, cx, libc::SIGKILL),
    },
];

impl Object for ThreadHandle {
    fn kind(&self) -> &'static str {
        self.record.noun()
    }

    fn id(&self) -> u64 {
        self.record.id
    }

    fn label(&self) -> String {
        format!("{} {}", self.record.noun(), self.record.name)
    }

    fn describe(&self) -> String {
        self.to_string()
    }

    fn field(&self, _cx: &Cx, name: &str) -> Option<Value> {
        let r = &self.record;
        match name {
            "name" => Some(Value::str(&r.name)),
            "ident" => Some(Value::Int(r.ident() as i64)),
            "native_id" => Some(Value::Int(r.os_id() as i64)),
            "daemon" => Some(Value::Bool(r.daemon)),
            "pid" => r.process.as_ref().map(|p| Value::Int(i64::from(p.pid))),
            // The host a process runs on; `nil` for one on this machine.
            "host" => r
                .process
                .as_ref()
                .map(|p| p.host().map_or(Value::Nil, Value::str)),
            "exitcode" => r.process.as_ref().map(|p| {
                p.exitcode()
                    .map_or(Value::Nil, |c| Value::Int(i64::from(c)))
            }),
            _ => None,
        }
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(METHODS),
            fields: &[
                "name",
                "ident",
                "native_id",
                "daemon",
                "pid",
                "exitcode",
                "host",
            ],
        }
    }

    fn join(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        Some(ThreadHandle::join(self, cx.ctx, cx.me, deadline, cx.at))
    }
}
