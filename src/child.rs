//! `conc` started as a child process (`spawn process`): read the start
//! message from the connection on standard input, load the parent's
//! program, take over the copied globals, make the call, and send back how
//! it ended. If the parent goes away, the child ends at once: no orphans.

use crate::diagnostics::{self, ConcError, RuntimeError};
use crate::runtime::arena::Arena;
use crate::runtime::process::wire::{self, Msg, Start, WireError};
use crate::runtime::process::{codec, traced, Link, LinkOutput};
use crate::runtime::value::Value;
use crate::runtime::waits::DeadlockPolicy;
use crate::session::{Session, SessionOptions};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use crate::runtime::process::CHILD_FLAG;

/// Run as a child; gives the process's exit status (0 ok, 1 error).
pub fn run() -> i32 {
    // SAFETY: in child mode the parent made standard input our end of a
    // socket pair, and nothing else in this process uses fd 0.
    let stream = unsafe { UnixStream::from_raw_fd(0) };
    let Ok(mut reader) = stream.try_clone() else {
        return 2;
    };
    // Only a socket pair from a conc parent carries a start message; a
    // terminal, file or pipe on standard input is a person trying the flag.
    // The parent's arena comes first, on one byte of its own.
    let mut arena = None;
    let opening = is_socket(&stream).then(|| {
        arena = Arena::receive(&stream).ok().flatten();
        wire::read_msg(&mut reader)
    });
    let start = match opening {
        Some(Ok(Some(Msg::Start(start)))) if start.check().is_ok() => *start,
        _ => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("conc: {CHILD_FLAG} is only for processes conc starts itself\n").as_bytes(),
            );
            return 2;
        }
    };
    let link = Link::new("the parent process".to_string(), stream, true, arena);
    let mut session = Session::new(SessionOptions {
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
    let serving = link.clone();
    let served = std::thread::Builder::new()
        .name("parent-link".into())
        .spawn(move || {
            serving.serve(reader, |_| {});
            // The parent is gone: so is this process (and, through their
            // own connections, its children).
            // SAFETY: _exit ends the process without running anything else.
            unsafe { libc::_exit(1) }
        });
    if served.is_err() {
        return 2;
    }
    let name = start.name.clone();
    let result = work(&mut session, &link, start);
    send_trace(&session, &link, name);
    let code = match &result {
        Ok(_) => 0,
        Err(e) if e.is(diagnostics::kind::DEADLOCK) => 3,
        Err(e) => e.exit_status().unwrap_or(1),
    };
    let done = result.and_then(|v| codec::encode(&link, &[v]));
    let _ = link.send(&Msg::Done(done.map_err(|e| WireError::from(&e))));
    code
}

/// A traced run: this process's steps, and its children's, to the parent.
fn send_trace(session: &Session, link: &Link, name: String) {
    let engine = session.context().engine();
    let Some(r) = engine.recorder() else { return };
    let own = r.tracks(&[session.main_thread()]);
    let name = format!("process {} (pid {})", name, engine.pid());
    let trace = traced::to_wire(
        engine.pid(),
        name,
        own,
        r.processes(),
        engine.epoch_monotonic(),
    );
    let _ = link.send(&Msg::Trace(Box::new(trace)));
}

fn is_socket(stream: &UnixStream) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::os::fd::AsFd::as_fd(stream)
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_socket())
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
