//! `spawn process f() on HOST`: a child on another machine. It is the same
//! conc binary started there by `ssh` (see `ssh.rs`), speaking the same link
//! protocol over the SSH channel, so this process stays the owner of every
//! object it shares and a remote child is served, joined, signalled and
//! caught in deadlocks exactly as a local one.
//!
//! What a network adds: a greeting before anything else (so a chatty shell,
//! a missing binary or another conc version is a clear error at the spawn),
//! and heartbeats both ways, so a host that goes away is a process that
//! died here within seconds, and a child whose parent went away ends there.

use super::ssh::{self, Host, Stderr};
use super::transport::{Heard, Inbox, LastHeard, Transport};
use super::wire::{Msg, Start};
use super::{os_error, Kind, Link, ProcessInfo};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::monotonic_now;
use crate::runtime::threads::{ThreadHandle, ThreadRecord};
use crate::runtime::Context;
use parking_lot::Mutex;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

/// How often each side says it is still there.
pub const BEAT: Duration = Duration::from_secs(1);
/// Silence after which the parent gives a remote child up for dead.
pub const PARENT_GIVES_UP: Duration = Duration::from_secs(4);
/// How long the exit report may take after the connection has ended.
const EXIT_REPORT: Duration = Duration::from_secs(3);

/// What the parent knows of a remote child beyond any child's.
pub struct RemoteProc {
    pub host: String,
    /// The local `ssh` client carrying the session.
    client: u32,
    /// Our end of the connection to `ssh`, to cut it when the host is lost.
    stream: UnixStream,
    heard: Arc<LastHeard>,
    /// The remote machine's monotonic clock less ours, in nanoseconds.
    pub clock_offset: i128,
    /// Why the connection was given up, if it was.
    lost: Mutex<Option<String>>,
    stderr: Arc<Stderr>,
}

impl RemoteProc {
    /// `terminate`/`kill`: the remote child signals itself when told; a
    /// child that cannot be told any more is cut off here.
    pub fn signal(&self, link: &Link, signal: i32) {
        if link.send(&Msg::Signal(signal)).is_err() {
            self.give_up(format!(
                "the connection to {} broke before signal {} could be sent",
                self.host, signal
            ));
        }
    }

    /// End the session from this side: its reaper then sees the end.
    fn give_up(&self, why: String) {
        self.lost.lock().get_or_insert(why);
        // SAFETY: kill has no memory-safety preconditions. `client` is our
        // ssh child: its callers hold the process's exit lock with no exit
        // code set yet, and the reaper waits for the client only before it
        // sets one (under that lock) or after, so the pid is still ours.
        unsafe {
            libc::kill(self.client as i32, libc::SIGKILL);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Why a child silent this long is given up.
    fn silent_for(&self, silent: Duration) -> String {
        format!(
            "no word from {} for {} s (the host or the network is down)",
            self.host,
            silent.as_secs()
        )
    }

    /// The error a joiner gets when the child ended without returning.
    pub fn died(&self, name: &str, pid: u32, code: i32) -> RuntimeError {
        if let Some(why) = self.lost.lock().clone() {
            return RuntimeError::new(
                kind::PROCESS,
                format!(
                    "process {} (pid {} on {}) was lost: {}",
                    name, pid, self.host, why
                ),
            );
        }
        super::died_as(name, &format!("pid {} on {}", pid, self.host), code)
    }
}

/// Start the child on `host`, check its greeting, hand it its work.
pub fn spawn(
    ctx: &Arc<Context>,
    name: String,
    daemon: bool,
    host: &Host,
    make_start: impl FnOnce(&Arc<Link>) -> Result<Start, RuntimeError>,
) -> Result<Arc<ThreadHandle>, RuntimeError> {
    let slot = crate::runtime::thread_slots::reserve()?;
    let connect = |e| os_error("cannot connect to ssh", e);
    let (mine, theirs) = UnixStream::pair().map_err(connect)?;
    let clone = |s: &UnixStream| s.try_clone().map_err(connect);
    let (writer, reader, cutter) = (clone(&mine)?, clone(&mine)?, clone(&mine)?);
    let (mut client, stderr) = ssh::session(host, OwnedFd::from(theirs))?;
    let fail = |client: &mut Child, message: String, help: Option<&str>| {
        ssh::end(client);
        let e = RuntimeError::new(kind::PROCESS, message);
        match help {
            Some(h) => e.with_help(h.to_string()),
            None => e,
        }
    };
    let _ = mine.set_read_timeout(Some(ssh::GREETING_TIMEOUT));
    let greeting = match ssh::read_greeting(host, &mut &mine) {
        Ok(greeting) => greeting,
        Err(why) if why.is_empty() => {
            // Nothing came: ssh or the shell there says why.
            let status = client.wait().ok().and_then(|s| s.code());
            let said = stderr.text(Duration::from_secs(2));
            let said = said.lines().last().unwrap_or("").trim().to_string();
            let message = format!(
                "conc did not start on {}{}",
                host.label(),
                match (said.is_empty(), status) {
                    (false, _) => format!(": {}", said),
                    (true, Some(s)) => format!(" (ssh exited with status {})", s),
                    (true, None) => String::new(),
                }
            );
            let help = "the host runs the conc at the same path as this one unless the host map names its \"exe\": {\"host\": ..., \"exe\": \"/path/to/conc\"}";
            return Err(fail(&mut client, message, Some(help)));
        }
        Err(why) => return Err(fail(&mut client, why, None)),
    };
    // Their clock less ours (to within the greeting's way here).
    let clock_offset = greeting.monotonic as i128 - monotonic_now() as i128;
    let pid = greeting.pid;
    let _ = mine.set_read_timeout(None);
    stderr.pass_on();
    let heard = LastHeard::new();
    // A send that makes no progress for this long fails (and the host is
    // then given up), so no thread blocks forever on a dead network.
    let _ = writer.set_write_timeout(Some(PARENT_GIVES_UP));
    // A remote child maps no arena of ours: every shared object is served.
    let link = Link::new(
        format!("process {}", name),
        Transport::socket(writer),
        false,
        None,
    );
    link.attach(ctx);
    let start = match make_start(&link) {
        Ok(start) => start,
        Err(e) => {
            ssh::end(&mut client);
            return Err(e);
        }
    };
    let remote = Arc::new(RemoteProc {
        host: host.label(),
        client: client.id(),
        stream: cutter,
        heard: heard.clone(),
        clock_offset,
        lost: Mutex::new(None),
        stderr,
    });
    let info = Arc::new(ProcessInfo::new(
        pid,
        link.clone(),
        Kind::Remote(remote.clone()),
        Some(host.label()),
    ));
    let id = ctx.registry.next_thread_id();
    let record = ThreadRecord::new_process(id, name, daemon, info.clone());
    let handle = ThreadHandle::for_record(&record, ctx);
    ctx.registry.register(record.clone());
    let _ = link.send(&Msg::Start(Box::new(start)));
    let (ctx2, info2, remote2) = (ctx.clone(), info.clone(), remote.clone());
    let inbox = Heard {
        from: reader,
        last: heard,
    };
    let reaper = std::thread::Builder::new()
        .name(format!("{}-reaper", record.name))
        .spawn(move || {
            let wait = || exit_code(&mut client, &remote2);
            super::reap(ctx2, record, info2, Inbox::stream(Box::new(inbox)), wait);
            // After its joiners have woken: ssh takes a while to finish.
            let _ = client.wait();
            drop(slot);
        });
    if let Err(e) = reaper {
        remote.give_up("nobody could watch it".into());
        ctx.registry.unregister(id);
        return Err(os_error("cannot watch the new process", e));
    }
    let beats = std::thread::Builder::new()
        .name(format!("{}-beat", handle.record.name))
        .spawn(move || heartbeat(&info, &remote));
    if beats.is_err() {
        // Still served and joined; only a lost host would go unnoticed.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"conc: no heartbeat thread for a remote process\n",
        );
    }
    Ok(handle)
}

/// Say we are here every `BEAT`; give the child up once it has been
/// silent for `PARENT_GIVES_UP`.
fn heartbeat(info: &ProcessInfo, remote: &RemoteProc) {
    loop {
        std::thread::sleep(BEAT);
        {
            // Checked under the exit lock, so the ssh client is never
            // killed after its reaper has waited for it.
            let exit = info.exit.lock();
            if exit.is_some() {
                return;
            }
            let silent = remote.heard.silence();
            if silent >= PARENT_GIVES_UP {
                remote.give_up(remote.silent_for(silent));
                return;
            }
        }
        // Not under the lock: a send can wait (up to the write timeout).
        let _ = info.link.send(&Msg::Beat);
    }
}

/// How the remote child ended: what its supervisor reported, or 255 (as
/// `ssh` says) when the connection ended without a word.
fn exit_code(client: &mut Child, remote: &RemoteProc) -> i32 {
    if remote.lost.lock().is_some() {
        let _ = client.wait();
        return 255;
    }
    // The report comes just after the child has ended; ssh ends later.
    match remote.stderr.exit(EXIT_REPORT) {
        Some(code) => code,
        None => {
            let _ = client.wait();
            if let Some(code) = remote.stderr.exit(Duration::from_secs(1)) {
                return code;
            }
            // ssh's own keep-alive may see a dead host before our
            // heartbeat does: the same loss, told the same way.
            let silent = remote.heard.silence();
            let why = if silent >= 2 * BEAT {
                remote.silent_for(silent)
            } else {
                format!(
                    "the connection to {} ended without its exit status",
                    remote.host
                )
            };
            remote.lost.lock().get_or_insert(why);
            255
        }
    }
}
