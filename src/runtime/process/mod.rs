//! Real OS processes. `spawn process` starts this same `conc` binary again
//! (a clone of the spawner taken at start, see `spawner.rs`, or by exec;
//! never a fork of this multi-threaded process, which is unsafe) in child mode
//! with one end of a socket pair as its standard input, and sends it the
//! program's sources, a copy of the globals and the call to make. Shared
//! objects stay with their owner; the child gets proxies (see `link.rs`).
//!
//! A child is represented here by a thread record with `process` set, so
//! `join`, the end-of-script wait and deadlock detection treat it like a
//! thread. A reaper thread per child reads its messages, and once the
//! connection closes, waits for the process (no zombies) and records how it
//! ended.

pub mod codec;
mod ghost;
pub mod link;
pub mod proxy;
mod remote;
mod serve;
pub mod simulated;
pub mod spawner;
pub mod ssh;
pub mod traced;
pub mod transport;
pub mod wire;

pub use link::Link;
pub use proxy::Remote;

use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::arena::Arena;
use crate::runtime::output::Output;
use crate::runtime::threads::{ThreadHandle, ThreadRecord, ThreadRef};
use crate::runtime::value::Value;
use crate::runtime::waits::BlockOn;
use crate::runtime::Context;
use crate::span::Span;
use parking_lot::Mutex;
use simulated::SimProcess;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use transport::{Inbox, Transport};
use wire::{Msg, Start};

/// The hidden first argument that starts `conc` as a child process.
pub const CHILD_FLAG: &str = "--conc-child";

/// What the parent knows about one child process.
pub struct ProcessInfo {
    pub pid: u32,
    pub link: Arc<Link>,
    /// The exit code once the process has been waited for: 0 ok, 1 error,
    /// -N killed by signal N. Held while waiting, so a signal is never sent
    /// to a pid the OS may already have reused.
    exit: Mutex<Option<i32>>,
    /// Run once the process has ended, just before its record says so.
    on_exit: Mutex<Vec<ExitHook>>,
    kind: Kind,
    /// The host `on` named, if any (kept under control too, where the
    /// process is simulated here: a script sees the same handle).
    host: Option<String>,
}

/// Where a child runs.
enum Kind {
    /// An OS process on this machine.
    Local,
    /// In this process, under the controlled engine.
    Simulated(Arc<SimProcess>),
    /// On another machine, through `ssh`.
    Remote(Arc<remote::RemoteProc>),
}

type ExitHook = Box<dyn FnOnce() + Send>;

impl ProcessInfo {
    fn new(pid: u32, link: Arc<Link>, kind: Kind, host: Option<String>) -> ProcessInfo {
        ProcessInfo {
            pid,
            link,
            exit: Mutex::new(None),
            on_exit: Mutex::new(Vec::new()),
            kind,
            host,
        }
    }

    /// The host the child runs on, as `on` named it.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    pub fn exitcode(&self) -> Option<i32> {
        *self.exit.lock()
    }

    /// Call `hook` once the process has ended (now, if it already has), so
    /// a thread waiting on something only the process could provide can
    /// wait without a timeout and still learn of its death.
    pub fn on_exit(&self, hook: ExitHook) {
        let exit = self.exit.lock();
        if exit.is_some() {
            drop(exit);
            hook();
        } else {
            // Under the exit lock: the reaper takes the hooks after it sets
            // the exit code, so none is missed.
            self.on_exit.lock().push(hook);
        }
    }

    /// Send `signal` unless the process has already been waited for.
    pub fn signal(&self, signal: i32) {
        let exit = self.exit.lock();
        if exit.is_none() {
            // It will end (or handle the signal): not quiet any more.
            self.link.quiet.store(false, Ordering::Release);
            match &self.kind {
                // A simulated child handles no signal: each ends it.
                Kind::Simulated(p) => p.end(-signal),
                Kind::Remote(r) => r.signal(&self.link, signal),
                // SAFETY: kill has no memory-safety preconditions; the pid
                // is still ours (not yet waited for, checked under the lock).
                Kind::Local => unsafe {
                    libc::kill(self.pid as i32, signal);
                },
            }
        }
    }
}

/// The program text, globals and call a child needs, encoded for `link`.
fn start_message(
    ctx: &Context,
    link: &Arc<Link>,
    name: &str,
    daemon: bool,
    callee: &Value,
    args: &[Value],
    span: Span,
) -> Result<Start, RuntimeError> {
    let mut enc = codec::Encoder::new(link);
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut left_out = Vec::new();
    for (global, value) in ctx.globals.defined() {
        if matches!(&value, Value::Builtin(b) if b.name == &*global) {
            continue;
        }
        // Globals that cannot cross (thread handles, pools ...) are left
        // out (reading one there says why); the child gets every other
        // global as it is now.
        match enc.value_or_undo(&value) {
            Ok(v) => {
                names.push(global.to_string());
                values.push(v);
            }
            Err(e) => left_out.push((global.to_string(), e.message)),
        }
    }
    values.push(enc.value(callee)?);
    for a in args {
        values.push(enc.value(a)?);
    }
    Ok(Start {
        sources: ctx
            .sources
            .all()
            .iter()
            .map(|s| (s.name.clone(), s.text.to_string()))
            .collect(),
        argv: ctx.argv.clone(),
        name: name.to_string(),
        daemon,
        color: ctx.color,
        seed: ctx.engine().random(),
        record: ctx.engine().recorder().is_some(),
        globals: names,
        left_out,
        payload: enc.finish(values),
        call_span: span.into(),
    })
}

fn child_exe() -> Result<std::path::PathBuf, RuntimeError> {
    if let Some(exe) = std::env::var_os("CONC_EXE") {
        return Ok(exe.into());
    }
    std::env::current_exe().map_err(|e| {
        RuntimeError::new(
            kind::PROCESS,
            format!("cannot find the conc binary to start: {}", e),
        )
    })
}

fn os_error(what: &str, e: std::io::Error) -> RuntimeError {
    RuntimeError::new(kind::PROCESS, format!("{}: {}", what, e))
}

/// `spawn process f(args) [on host]`: start the child, hand it its work,
/// and give the handle scripts hold.
pub fn spawn(
    ctx: &Arc<Context>,
    name: String,
    daemon: bool,
    callee: &Value,
    args: &[Value],
    span: Span,
    host: Option<ssh::Host>,
) -> Result<Arc<ThreadHandle>, RuntimeError> {
    crate::runtime::threads::check_thread_name(&name)?;
    if ctx.daemon_process {
        return Err(
            RuntimeError::new(kind::PROCESS, "a daemon process cannot spawn processes")
                .with_help("spawn the process from the parent, or make this one non-daemon"),
        );
    }
    if let Some(sched) = ctx.engine().scheduler() {
        // Under control every child is simulated here, wherever it would run.
        let n = name.clone();
        let host = host.map(|h| h.label());
        return simulated::spawn(ctx, sched, name, daemon, host, |link| {
            start_message(ctx, link, &n, daemon, callee, args, span)
        });
    }
    if let Some(host) = host.map(Ok).or_else(ssh::Host::from_env) {
        let n = name.clone();
        return remote::spawn(ctx, name, daemon, &host?, |link| {
            start_message(ctx, link, &n, daemon, callee, args, span)
        });
    }
    // The reaper's slot is taken before the child starts: a child nobody
    // watches would be left running.
    let slot = crate::runtime::thread_slots::reserve()?;
    let (mine, theirs) =
        UnixStream::pair().map_err(|e| os_error("cannot connect to a new process", e))?;
    let writer = mine
        .try_clone()
        .map_err(|e| os_error("cannot connect to a new process", e))?;
    let link = Link::new(
        format!("process {}", name),
        Transport::socket(writer),
        false,
        ctx.arena().cloned(),
    );
    link.attach(ctx);
    let start = start_message(ctx, &link, &name, daemon, callee, args, span)?;
    let pid = start_local(theirs)?;
    let info = Arc::new(ProcessInfo::new(pid, link.clone(), Kind::Local, None));
    let id = ctx.registry.next_thread_id();
    let record = ThreadRecord::new_process(id, name, daemon, info.clone());
    let handle = ThreadHandle::for_record(&record, ctx);
    ctx.registry.register(record.clone());
    // A child that cannot read its start message dies of EOF; its reaper
    // still records how it ended.
    let _ = Arena::send(link.arena().map(|a| &**a), &mine);
    let _ = link.send(&Msg::Start(Box::new(start)));
    let ctx2 = ctx.clone();
    let (pid, record_id) = (info.pid, record.id);
    let reaper = std::thread::Builder::new()
        .name(format!("{}-reaper", record.name))
        .spawn(move || {
            reap(ctx2, record, info, Inbox::socket(mine), move || {
                spawner::wait_pid(pid)
            });
            drop(slot);
        });
    if let Err(e) = reaper {
        // Nobody would ever wait for it or hear from it: end it now, and
        // wait for it here so it is not left a zombie.
        // SAFETY: kill has no memory-safety preconditions; the child has
        // not been waited for, so the pid is still this child's.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        spawner::wait_pid(pid);
        ctx.registry.unregister(record_id);
        return Err(os_error("cannot watch the new process", e));
    }
    Ok(handle)
}

/// Serve the child until it closes the connection, wait for it (`wait`
/// gives its exit code), record how it ended and wake its joiners.
fn reap(
    ctx: Arc<Context>,
    record: ThreadRef,
    info: Arc<ProcessInfo>,
    inbox: Inbox,
    wait: impl FnOnce() -> i32,
) {
    let done = serve_child(&ctx, &record, &info, inbox);
    let code = {
        let mut exit = info.exit.lock();
        let code = wait();
        *exit = Some(code);
        code
    };
    ended(&ctx, &record, &info, done, code);
}

/// Start a child on this machine with `connection` as its standard input:
/// by the spawner when there is one, else by exec. Its pid; the caller
/// waits for it (`spawner::wait_pid`).
fn start_local(connection: UnixStream) -> Result<u32, RuntimeError> {
    match spawner::spawn(connection.as_fd()) {
        Ok(Some(pid)) => return Ok(pid),
        Ok(None) => {}
        Err(e) => return Err(os_error("the process spawner failed", e)),
    }
    let child = Command::new(child_exe()?)
        .arg(CHILD_FLAG)
        .stdin(Stdio::from(OwnedFd::from(connection)))
        .spawn()
        .map_err(|e| os_error("the OS refused to start a process", e))?;
    // Dropping a `Child` neither waits for nor kills it; the pid is waited
    // for by the reaper, as a spawner's child is.
    Ok(child.id())
}

/// Read a child's messages until its connection ends; what its `Done`
/// said, if it said it.
fn serve_child(
    ctx: &Arc<Context>,
    record: &ThreadRef,
    info: &ProcessInfo,
    inbox: Inbox,
) -> Option<Result<Value, RuntimeError>> {
    let link = info.link.clone();
    let mut done = None;
    let done_ends = matches!(info.kind, Kind::Remote(_));
    link.serve_until(
        inbox,
        |msg| match msg {
            Msg::Done(result) => {
                done = Some(result.map_err(RuntimeError::from).and_then(|packet| {
                    codec::decode(&link, ctx, packet)
                        .map(|values| values.into_iter().next().unwrap_or_default())
                }))
            }
            Msg::Deadlock(e) => {
                ctx.registry
                    .report_deadlock(&record.name, RuntimeError::from(e), ctx)
            }
            Msg::Quiet {
                replies_seen,
                waits,
            } => quiet(ctx, record, &link, replies_seen, waits),
            Msg::Trace(trace) => {
                if let Some(r) = ctx.engine().recorder() {
                    // A remote child's times are on its machine's clock.
                    let offset = match &info.kind {
                        Kind::Remote(r) => r.clock_offset,
                        _ => 0,
                    };
                    let epoch = ctx.engine().epoch_monotonic() as i128 + offset;
                    let epoch = epoch.clamp(0, u64::MAX as i128) as u64;
                    for p in traced::from_wire(*trace, epoch) {
                        r.add_process(p);
                    }
                }
            }
            _ => {}
        },
        done_ends,
    );
    done
}

/// The child has ended with `code` (already in `info.exit`): its record
/// says how, and its joiners wake.
fn ended(
    ctx: &Context,
    record: &ThreadRef,
    info: &ProcessInfo,
    done: Option<Result<Value, RuntimeError>>,
    code: i32,
) {
    let result = match (done, &info.kind) {
        (Some(result), _) => result,
        (None, Kind::Remote(r)) => Err(r.died(&record.name, info.pid, code)),
        (None, _) => Err(died(&record.name, info.pid, code)),
    };
    // Before the record ends: ending it may find every other thread
    // blocked, and a thread a hook is about to wake must not count as such.
    let hooks = std::mem::take(&mut *info.on_exit.lock());
    for hook in hooks {
        hook();
    }
    record.end(result, ctx);
}

/// The child says every thread of it waits on something only this process
/// can end. Unless a reply is on its way to it, its record now waits too,
/// and a deadlock of the whole program can be seen here.
fn quiet(ctx: &Context, record: &ThreadRef, link: &Link, replies_seen: u64, waits: Vec<String>) {
    link.probe_answered();
    // Checked and set under the count's lock, so a reply sent meanwhile
    // (which clears `quiet`) cannot be missed.
    let out = link.replies_out.lock();
    if replies_seen != *out {
        return;
    }
    link.quiet.store(true, Ordering::Release);
    drop(out);
    let what = if waits.is_empty() {
        "objects of this process (every thread of it is blocked)".to_string()
    } else {
        format!(
            "objects of this process (every thread of it is blocked; inside it: {})",
            waits.join("; ")
        )
    };
    let on = BlockOn {
        quiet: Some(link.quiet.clone()),
        ..BlockOn::new(what, None, None)
    };
    // A deadlock found here is reported by the registry's handler.
    let _ = ctx.registry.begin_wait(record, &on);
}

fn died(name: &str, pid: u32, code: i32) -> RuntimeError {
    died_as(name, &format!("pid {}", pid), code)
}

/// `who`: "pid 42", or "pid 42 on node1".
fn died_as(name: &str, who: &str, code: i32) -> RuntimeError {
    let how = if code < 0 {
        format!("was killed by signal {} ({})", -code, signal_name(-code))
    } else {
        format!("exited with status {} before returning", code)
    };
    RuntimeError::new(kind::PROCESS, format!("process {} ({}) {}", name, who, how))
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "a signal",
    }
}

/// Live child processes of this process (daemon or not).
pub fn children(ctx: &Context) -> Vec<ThreadRef> {
    ctx.registry
        .snapshot()
        .into_iter()
        .map(|info| info.thread)
        .filter(|t| t.process.is_some() && t.alive())
        .collect()
}

/// Stop `children` with `signal`, then wait (bounded) until each has been
/// reaped; whatever is still alive after `grace` gets SIGKILL.
pub fn stop_children(
    ctx: &Context,
    me: &ThreadRef,
    children: &[ThreadRef],
    signal: i32,
    grace: Duration,
) {
    for c in children {
        if let Some(p) = &c.process {
            p.signal(signal);
        }
    }
    let deadline = ctx.deadline_after(grace);
    for c in children {
        let on = BlockOn::new(format!("process {} to stop", c.name), None, Some(deadline));
        if !matches!(c.wait_finished(ctx, me, &on), Ok(true)) {
            if let Some(p) = &c.process {
                p.signal(libc::SIGKILL);
            }
            let on = BlockOn::new(format!("process {} to stop", c.name), None, None);
            let _ = c.wait_finished(ctx, me, &on);
        }
    }
}

/// Where a child's `print` goes: over the connection, to the parent's output.
pub struct LinkOutput(pub Arc<Link>);

impl Output for LinkOutput {
    fn line(&self, text: &str) {
        let _ = self.0.send(&Msg::Print(text.to_string()));
    }

    fn text(&self, text: &str) {
        let _ = self.0.send(&Msg::Text(text.to_string()));
    }

    fn report(&self, text: &str) {
        let _ = self.0.send(&Msg::Report(text.to_string()));
    }
}
