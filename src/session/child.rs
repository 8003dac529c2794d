//! The session of a child process: a real one (`conc` started by its
//! parent, see `crate::child`) or one simulated under the controlled engine
//! in its parent's OS process. Both load the parent's program, take over
//! the copied globals, make the call, and send back how it ended; only how
//! the messages travel differs.

use super::{Session, SessionOptions};
use crate::diagnostics::{self, ConcError, RuntimeError};
use crate::runtime::engine::Engine;
use crate::runtime::process::simulated::SimulatedChild;
use crate::runtime::process::transport::{Inbox, Transport};
use crate::runtime::process::wire::{Msg, Start, WireError};
use crate::runtime::process::{codec, traced, Link, LinkOutput};
use crate::runtime::threads::{ThreadRecord, ThreadRef, THREAD_STACK};
use crate::runtime::value::Value;
use crate::runtime::waits::DeadlockPolicy;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The child's session, connected to its parent through `link`: its
/// output, deadlocks and quiet reports go there. Start reading the link
/// only after this (messages need the session).
pub fn session(link: &Arc<Link>, start: &Start, simulated: Option<(Engine, ThreadRef)>) -> Session {
    let session = Session::new(SessionOptions {
        argv: start.argv.clone(),
        out: Arc::new(LinkOutput(link.clone())),
        deadlock_exits: false,
        color: start.color,
        main_name: start.name.clone(),
        daemon_process: start.daemon,
        seed: Some(start.seed),
        schedule: None,
        strategy: None,
        record: start.record,
        simulated,
    });
    let ctx = session.context().clone();
    link.attach(&ctx);
    // A deadlock here is a deadlock of the whole program: the run here
    // ends, and the parent reports it (and normally exits 3).
    ctx.registry.set_deadlock_policy(DeadlockPolicy::EndRun);
    let deadlock_link = link.clone();
    ctx.registry.set_deadlock_handler(Some(Box::new(move |err| {
        let _ = deadlock_link.send(&Msg::Deadlock(WireError::from(err)));
    })));
    let quiet_link = link.clone();
    ctx.registry.set_quiet_hook(Box::new(move |waits| {
        let _ = quiet_link.send(&Msg::Quiet {
            replies_seen: quiet_link.replies_in.load(Ordering::Acquire),
            waits,
        });
    }));
    session
}

/// Do the child's work and tell the parent how it ended; gives the exit
/// status (0 ok, 1 error, 3 deadlock, or the status `exit` asked for).
pub fn run(session: &mut Session, link: &Arc<Link>, start: Start) -> i32 {
    let name = start.name.clone();
    let result = work(session, link, start);
    send_trace(session, link, name);
    let code = match &result {
        Ok(_) => 0,
        Err(e) if e.is(diagnostics::kind::DEADLOCK) => 3,
        Err(e) => e.exit_status().unwrap_or(1),
    };
    let done = result.and_then(|v| codec::encode(link, &[v]));
    let _ = link.send(&Msg::Done(done.map_err(|e| WireError::from(&e))));
    code
}

/// Load the program, take over the globals, make the call, then wait for
/// the threads and processes it started (as at the end of a script).
fn work(session: &mut Session, link: &Arc<Link>, start: Start) -> Result<Value, RuntimeError> {
    for (name, text) in &start.sources {
        // Sources that failed in the parent never ran; their functions
        // cannot have been sent. Loading keeps source ids in step.
        let _ = session.load(name, text);
    }
    let ctx = session.context().clone();
    let mut values = codec::decode(link, &ctx, start.payload)?.into_iter();
    for name in &start.globals {
        ctx.globals.define(name, values.next().unwrap_or_default());
    }
    for (name, why) in start.left_out {
        ctx.globals.leave_out(&name, why);
    }
    let callee = values.next().unwrap_or_default();
    let result = session.call(&callee, values.collect(), start.call_span.into())?;
    session.finish().map_err(|e| match e {
        ConcError::Runtime(e) => e,
        ConcError::Syntax(e) => RuntimeError::new(diagnostics::kind::ERROR, e.message),
    })?;
    Ok(result)
}

/// A traced run: this process's steps, and its children's, to the parent.
fn send_trace(session: &Session, link: &Link, name: String) {
    let engine = session.context().engine();
    let Some(r) = engine.recorder() else { return };
    let own = r.tracks(&[session.main_thread()], false);
    let name = format!("process {} (pid {})", name, engine.pid());
    let trace = traced::to_wire(
        engine.pid(),
        name,
        own,
        r.processes(false),
        engine.epoch_monotonic(),
        &link.aliases(),
    );
    let _ = link.send(&Msg::Trace(Box::new(trace)));
}

/// An OS child's reader of its parent's messages (on a thread of its own):
/// serve them, hand the others to `other`, and once the parent is gone,
/// end this process at once (its own children then see their connections
/// end, and end too: no orphans).
pub fn serve_parent(
    link: &Arc<Link>,
    inbox: Inbox,
    other: impl FnMut(Msg) + Send + 'static,
) -> std::io::Result<()> {
    let serving = link.clone();
    std::thread::Builder::new()
        .name("parent-link".into())
        .spawn(move || {
            serving.serve(inbox, other);
            // SAFETY: _exit ends the process without running anything else.
            unsafe { libc::_exit(1) }
        })
        .map(drop)
}

/// A child simulated under the controlled engine, run on its main thread
/// (a thread of its parent's run): as `crate::child::run`, with channels in
/// memory for the socket, and the end of the process done by hand.
pub fn simulated(child: SimulatedChild) {
    let main = child.main.clone();
    let process = child.process.clone();
    // The engine moves into the session, which is gone once the run is:
    // the main thread's end is told to the scheduler they share.
    let sched = child.engine.scheduler().cloned();
    let code = simulated_run(child);
    process.end(code);
    if let Some(s) = sched {
        s.ended(&main);
    }
}

fn simulated_run(child: SimulatedChild) -> i32 {
    let SimulatedChild {
        main,
        inbox,
        outbox,
        engine,
        process,
    } = child;
    let mut first = Inbox::Memory {
        from: inbox.clone(),
        me: main.clone(),
    };
    let start = match first.receive() {
        Ok(Some(Msg::Start(start))) if start.check().is_ok() => *start,
        _ => return 1,
    };
    let link = Link::new(
        "the parent process".to_string(),
        Transport::Memory(outbox),
        true,
        None,
    );
    let mut session = session(&link, &start, Some((engine, main)));
    let ctx = session.context().clone();
    process.attach(&ctx);
    let reader = ThreadRecord::new(ctx.registry.next_thread_id(), "parent-link".into(), true);
    let from_parent = Inbox::Memory {
        from: inbox,
        me: reader.clone(),
    };
    let (serving, ctx2, process2, me) =
        (link.clone(), ctx.clone(), process.clone(), reader.clone());
    let started = ctx.engine().start_thread(
        &me,
        THREAD_STACK,
        Box::new(move || {
            serving.serve(from_parent, |_| {});
            // The parent is gone: so is this process (and, through their
            // own connections, its children).
            process2.end(1);
            ctx2.engine().helper_ended(&reader);
        }),
    );
    if started.is_err() {
        return 2;
    }
    run(&mut session, &link, start)
}
