//! `spawn process` under the controlled engine: the child is simulated in
//! this OS process, as a session of its own on the same scheduler, so its
//! threads are scheduled (and explored) with the parent's.
//!
//! Everything else is as for a real child: the start message (sources, a
//! copy of the globals made by the codec, the call) and every later message
//! travel as the same frames over the same link protocol, only through
//! channels in memory (`transport.rs`) instead of a socket. The parent's
//! side is read by a "reaper" thread of the run, the child's side by a
//! reader thread of the child; each message they take is a scheduling
//! point. What a real child does at the OS level is done here by hand: it
//! gets a pid from the scheduler, `terminate()`/`kill()` end it at once
//! (its connection is cut first, so nothing it does afterwards reaches
//! anyone), and when it ends, its own children lose their parent.

use super::transport::{Channel, Inbox, Transport};
use super::wire::{Msg, Start};
use super::{Kind, Link, ProcessInfo};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::controlled::Scheduler;
use crate::runtime::engine::Engine;
use crate::runtime::footprint;
use crate::runtime::threads::{ThreadHandle, ThreadRecord, ThreadRef, THREAD_STACK};
use crate::runtime::Context;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

/// What the child's entry (`session::child::simulated`, above the runtime)
/// is handed: it runs as the child's main thread.
pub struct SimulatedChild {
    /// The child's main thread: the entry runs on it.
    pub main: ThreadRef,
    /// Frames from the parent; the first is the start message.
    pub inbox: Arc<Channel>,
    /// Frames to the parent.
    pub outbox: Arc<Channel>,
    /// The child's engine: the parent's scheduler, its own pid and seed.
    pub engine: Engine,
    pub process: Arc<SimProcess>,
}

/// How a session runs a simulated child (set by the session layer).
pub type ChildEntry = fn(SimulatedChild);

/// A simulated child process, as both sides know it.
pub struct SimProcess {
    /// Its exit code once it is over (the first way it ended wins).
    code: Mutex<Option<i32>>,
    /// Its session, once it runs.
    ctx: Mutex<Weak<Context>>,
    down: Arc<Channel>,
    up: Arc<Channel>,
}

impl SimProcess {
    /// Its session runs now: a kill from here on interrupts its threads.
    pub fn attach(&self, ctx: &Arc<Context>) {
        *self.ctx.lock() = Arc::downgrade(ctx);
        if self.code.lock().is_some() {
            interrupt_all(ctx, "the process was stopped before it started");
        }
    }

    /// How it ended, once it has.
    pub fn code(&self) -> Option<i32> {
        *self.code.lock()
    }

    /// The process is over with `code` (its own end, a signal as `-N`, or
    /// 1 when its parent is gone): it sends and reads nothing more, its
    /// children lose their parent, and its threads still running stop at
    /// their next step.
    pub fn end(&self, code: i32) {
        {
            let mut c = self.code.lock();
            if c.is_some() {
                return;
            }
            *c = Some(code);
        }
        self.up.close(false);
        self.down.close(true);
        let Some(ctx) = self.ctx.lock().upgrade() else {
            return;
        };
        for child in super::children(&ctx) {
            if let Some(p) = &child.process {
                p.link.hang_up();
            }
        }
        let why = if code < 0 {
            format!("the process was killed by signal {}", -code)
        } else {
            "the process has ended".to_string()
        };
        interrupt_all(&ctx, &why);
    }
}

/// Stop every thread of a process that is over: an interrupt cannot be
/// caught, so each unwinds at its next step.
fn interrupt_all(ctx: &Context, why: &str) {
    for info in ctx.registry.snapshot() {
        let err = RuntimeError::new(kind::INTERRUPTED, why);
        ctx.registry.interrupt(&info.thread, err);
    }
}

/// `spawn process` under control: the child's main thread and the
/// parent's reader of its messages become threads of this run.
pub fn spawn(
    ctx: &Arc<Context>,
    sched: &Arc<Scheduler>,
    name: String,
    daemon: bool,
    host: Option<String>,
    make_start: impl FnOnce(&Arc<Link>) -> Result<Start, RuntimeError>,
) -> Result<Arc<ThreadHandle>, RuntimeError> {
    let entry = ctx.child_entry;
    // Once nothing can run, this process asks its children whether they
    // are quiet (on the OS engine it asks whenever its own threads are
    // all blocked): a deadlock across processes is then seen as there.
    let weak = Arc::downgrade(ctx);
    sched.on_stall(
        Arc::as_ptr(ctx) as usize,
        Box::new(move || {
            weak.upgrade()
                .map(|ctx| ctx.registry.probe_stalled())
                .is_some()
        }),
    );
    let (down, up) = (Channel::new(sched.clone()), Channel::new(sched.clone()));
    let link = Link::new(
        format!("process {}", name),
        Transport::Memory(down.clone()),
        false,
        None,
    );
    link.attach(ctx);
    let start = make_start(&link)?;
    let pid = sched.next_pid();
    let engine = Engine::simulated(ctx.engine(), start.seed, pid);
    let process = Arc::new(SimProcess {
        code: Mutex::new(None),
        ctx: Mutex::new(Weak::new()),
        down: down.clone(),
        up: up.clone(),
    });
    let info = Arc::new(ProcessInfo::new(
        pid,
        link.clone(),
        Kind::Simulated(process.clone()),
        host,
    ));
    let record = ThreadRecord::new_process(ctx.registry.next_thread_id(), name, daemon, info);
    // (A start too big for a frame fails here, before anyone could wait
    // for the process.)
    link.send(&Msg::Start(Box::new(start)))?;
    let handle = ThreadHandle::for_record(&record, ctx);
    ctx.registry.register(record.clone());

    // The child's first thread id (its registry counts on from there).
    let main = ThreadRecord::new(engine.thread_base() | 1, record.name.clone(), false);
    let child = SimulatedChild {
        main: main.clone(),
        inbox: down,
        outbox: up.clone(),
        engine,
        process: process.clone(),
    };
    let reaper = ThreadRecord::new(
        ctx.registry.next_thread_id(),
        format!("{}-reaper", record.name),
        true,
    );
    let inbox = Inbox::Memory {
        from: up,
        me: reaper.clone(),
    };
    let (ctx2, reaper2) = (ctx.clone(), reaper.clone());
    let job = move || {
        reap(&ctx2, record, &process, inbox);
        ctx2.engine().helper_ended(&reaper2);
    };
    let e = ctx.engine();
    e.start_thread(&main, THREAD_STACK, Box::new(move || entry(child)))
        .and_then(|()| e.start_thread(&reaper, THREAD_STACK, Box::new(job)))
        .map_err(|e| {
            RuntimeError::new(kind::PROCESS, format!("cannot simulate a process: {}", e))
        })?;
    Ok(handle)
}

/// The parent's side: serve the child until its connection ends, then
/// record how it ended (as a real child's reaper does after `wait`).
fn reap(ctx: &Arc<Context>, record: ThreadRef, process: &SimProcess, inbox: Inbox) {
    let Some(info) = record.process.clone() else {
        return;
    };
    let done = super::serve_child(ctx, &record, &info, inbox);
    let code = process.code().unwrap_or(1);
    *info.exit.lock() = Some(code);
    // `join` on the process reads its end: exploration must see it written.
    footprint::touch(footprint::THREAD | record.id, true);
    super::ended(ctx, &record, &info, done, code);
}
