//! `conc` started on another machine by `ssh` (`spawn process ... on HOST`).
//!
//! Right at start, while the process still has one thread, it splits in
//! two: a supervisor that only waits, and the child proper. The child talks
//! to its parent over the standard input and output `ssh` gave it; once it
//! has ended, however it ended (even by SIGKILL), the supervisor writes its
//! exit code on standard error, which `ssh` carries back, so a remote
//! child's `exitcode` is as exact as a local one's. The child ends when its
//! parent does, or when the parent's heartbeats stop (the network or the
//! parent's host went away): nothing is left running here.

use crate::runtime::engine::monotonic_now;
use crate::runtime::process::ssh::{self, EXIT_MARK};
use crate::runtime::process::transport::{Heard, Inbox, LastHeard, Transport};
use crate::runtime::process::wire::{self, Msg};
use crate::runtime::process::Link;
use crate::session::child;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::time::Duration;

pub use crate::runtime::process::ssh::REMOTE_FLAG;

/// Silence after which a remote child gives its parent up.
const CHILD_GIVES_UP: Duration = Duration::from_secs(5);
const BEAT: Duration = Duration::from_secs(1);

/// Split into supervisor and child. Must run while this process has one
/// thread. The supervisor gets its exit status to return; the child gets
/// `None` and goes on to `run`.
pub fn split() -> Option<i32> {
    // SAFETY: fork in a process with a single thread (checked by the
    // caller: this runs first thing in `main`).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let _ = std::io::stderr().write_all(b"conc: cannot fork the remote child\n");
        return Some(2);
    }
    if pid == 0 {
        // The child: end if the supervisor does (it is ssh's process).
        // SAFETY: prctl touches no memory of ours.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        return None;
    }
    // The supervisor keeps no end of the child's connection: when the
    // child is gone, ssh sees the end of its output at once.
    // SAFETY: closing our copies of stdin and stdout, used by nothing here.
    unsafe {
        libc::close(0);
        libc::close(1);
    }
    let code = crate::runtime::process::spawner::wait_pid(pid as u32);
    let _ = std::io::stderr().write_all(format!("{}{}\n", EXIT_MARK, code).as_bytes());
    Some(0)
}

/// Run as a remote child; gives the process's exit status.
pub fn run() -> i32 {
    // The connection is standard output, kept on a descriptor of its own;
    // standard output itself now goes to standard error, so nothing a
    // library or grandchild prints can break a frame.
    // SAFETY: duplicating and replacing our own standard descriptors.
    let out = unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return 2;
        }
        File::from_raw_fd(fd)
    };
    // SAFETY: ssh gave us standard input, which nothing else here reads.
    let input = unsafe { File::from_raw_fd(0) };
    let mut out = out;
    if let Some(parent) = std::env::args().nth(2).and_then(|p| p.parse().ok()) {
        let _ = crate::runtime::engine::REMOTE_PARENT.set(parent);
    }
    if out
        .write_all(ssh::greeting(std::process::id(), monotonic_now()).as_bytes())
        .is_err()
    {
        return 2;
    }
    let last = LastHeard::new();
    let mut reader = Heard {
        from: input,
        last: last.clone(),
    };
    let start = match wire::read_msg(&mut reader) {
        Ok(Some(Msg::Start(start))) if start.check().is_ok() => *start,
        _ => {
            let _ = std::io::stderr().write_all(
                format!("conc: {REMOTE_FLAG} is only for processes conc starts itself\n")
                    .as_bytes(),
            );
            return 2;
        }
    };
    let link = Link::new(
        "the parent process".to_string(),
        Transport::Pipe(parking_lot::Mutex::new(Some(out))),
        true,
        None,
    );
    let mut session = child::session(&link, &start, None);
    let served = child::serve_parent(&link, Inbox::stream(Box::new(reader)), |msg| {
        if let Msg::Signal(signal) = msg {
            // SAFETY: signalling ourselves, as the parent asked.
            unsafe {
                libc::kill(libc::getpid(), signal);
            }
        }
    });
    let beating = link.clone();
    let beats = std::thread::Builder::new()
        .name("parent-beat".into())
        .spawn(move || loop {
            std::thread::sleep(BEAT);
            let silent = last.silence();
            if silent >= CHILD_GIVES_UP {
                let _ = std::io::stderr().write_all(
                    format!(
                        "conc: no word from the parent process for {} s: ending\n",
                        silent.as_secs()
                    )
                    .as_bytes(),
                );
                // SAFETY: _exit ends the process without running anything else.
                unsafe { libc::_exit(1) }
            }
            let _ = beating.send(&Msg::Beat);
        });
    if served.is_err() || beats.is_err() {
        return 2;
    }
    child::run(&mut session, &link, start)
}
