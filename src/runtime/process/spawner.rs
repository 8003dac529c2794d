//! Child processes made by forking a copy of conc taken at start.
//!
//! Starting a child by exec costs a whole program start (about 1.3 ms on a
//! small VM, most of what `spawn process` costs), and forking the parent
//! itself is unsafe once it has threads. So a run that may spawn processes
//! forks, first thing, while it still has one thread, a **spawner**: a copy
//! of conc that only waits on a socket. For each `spawn process` the parent
//! sends it the child's end of the new connection; the spawner clones
//! itself with `CLONE_PARENT`, so the new process is the parent's own child
//! (the parent waits for it and signals it, and `getppid()` in it is the
//! parent's pid), and the clone goes on exactly as `conc --conc-child`
//! would, with that connection as its standard input. The spawner has one
//! thread and holds nothing but that socket, so a clone of it is as clean
//! as a fresh program.
//!
//! Whatever goes wrong (no spawner, it died, the clone was refused), the
//! parent starts the child by exec as before: slower, never different.
//! The spawner ends when the parent closes the socket (`stop`, at the end
//! of a run) or dies (PR_SET_PDEATHSIG): nothing is left behind. A child
//! whose program mentions processes makes a spawner of its own, once it
//! has read its start message and before it starts a thread.

use crate::runtime::fd_pass;
use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

/// Which side of `start` this process is on.
#[derive(Debug, PartialEq, Eq)]
pub enum Role {
    /// The parent (with a spawner, or without one if it could not be made).
    Parent,
    /// A child the spawner made: go on as `conc --conc-child`.
    Child,
}

struct Spawner {
    /// `None` once the spawner is known to be gone.
    socket: Mutex<Option<UnixStream>>,
    pid: i32,
}

static SPAWNER: OnceLock<Spawner> = OnceLock::new();

/// Whether a program with this text should have a spawner: it mentions
/// processes (`spawn process`, `process_pool`; the language has no import
/// or eval, so a program without the word cannot start one), and no
/// `CONC_EXE` names another binary for children (only exec starts that).
pub fn wanted(text: &str) -> bool {
    text.contains("process") && std::env::var_os("CONC_EXE").is_none()
}

/// Make the spawner. Must run while this process has one thread; the
/// parent gets `Parent` back at once, a child the spawner makes later gets
/// `Child` (the spawner itself never returns). The spawner first runs
/// `let_go`, which drops what it must not keep (a child's own connection
/// and arena, read before it made its spawner).
pub fn start(let_go: impl FnOnce()) -> Role {
    let Ok((parent_end, spawner_end)) = UnixStream::pair() else {
        return Role::Parent;
    };
    // SAFETY: this process has one thread (the caller's promise), so the
    // copy is consistent; the copy only runs `serve`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Role::Parent;
    }
    if pid == 0 {
        drop(parent_end);
        let_go();
        return serve(spawner_end);
    }
    drop(spawner_end);
    let _ = SPAWNER.set(Spawner {
        socket: Mutex::new(Some(parent_end)),
        pid,
    });
    Role::Parent
}

/// The spawner's loop: a clone per connection received, its pid sent back.
fn serve(socket: UnixStream) -> Role {
    // SAFETY: prctl and getppid touch no memory of ours. If the parent
    // died before the prctl took effect, no signal will come: end here.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() == 1 {
            libc::_exit(0);
        }
    }
    // Standard input stays taken (by /dev/null), so no connection received
    // lands on fd 0 and is closed by the clone that makes it fd 0; and the
    // spawner holds on to nobody's input.
    // SAFETY: opening a path we own the string of, and replacing fd 0.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
    }
    loop {
        let connection = match fd_pass::receive(&socket) {
            Ok(Some(fd)) => fd,
            Ok(None) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The parent closed its end: the run is over.
            // SAFETY: ending this one-thread process, which holds nothing.
            Err(_) => unsafe { libc::_exit(0) },
        };
        // SAFETY: a fork-like clone (no new stack: the child runs on a copy
        // of this one) of a process with one thread. CLONE_PARENT makes the
        // parent's process the new one's parent; SIGCHLD tells it of the end.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::CLONE_PARENT | libc::SIGCHLD,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            drop(socket);
            if connection.as_raw_fd() == 0 {
                // Already standard input (only if /dev/null was missing).
                std::mem::forget(connection);
                return Role::Child;
            }
            // SAFETY: replacing our own standard input with the connection.
            if unsafe { libc::dup2(connection.as_raw_fd(), 0) } < 0 {
                // SAFETY: as above.
                unsafe { libc::_exit(2) };
            }
            drop(connection);
            return Role::Child;
        }
        let reply = if pid < 0 {
            -io::Error::last_os_error().raw_os_error().unwrap_or(1)
        } else {
            pid as i32
        };
        drop(connection);
        if (&socket).write_all(&reply.to_le_bytes()).is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(0) };
        }
    }
}

/// Start a child with `connection` as its standard input; its pid, or
/// `Ok(None)` when the spawner cannot help (start the child by exec). An
/// error means a child may have been made but its pid was lost: the caller
/// must not start another on the same connection.
pub fn spawn(connection: BorrowedFd) -> io::Result<Option<u32>> {
    let Some(spawner) = SPAWNER.get() else {
        return Ok(None);
    };
    let mut guard = spawner.socket.lock();
    let Some(socket) = guard.as_ref() else {
        return Ok(None);
    };
    if fd_pass::send(socket, Some(connection.as_raw_fd())).is_err() {
        // Gone before it could read the request: nothing was made.
        *guard = None;
        return Ok(None);
    }
    let mut reply = [0u8; 4];
    if let Err(e) = (&*socket).read_exact(&mut reply) {
        *guard = None;
        return Err(e);
    }
    let pid = i32::from_le_bytes(reply);
    // A refused clone (say, too many processes) is tried again by exec,
    // which reports the OS's reason.
    Ok((pid > 0).then_some(pid as u32))
}

/// End the spawner and wait for it (the end of a run).
pub fn stop() {
    if let Some(spawner) = SPAWNER.get() {
        if spawner.socket.lock().take().is_some() {
            wait_pid(spawner.pid as u32);
        }
    }
}

/// Wait for child `pid` to end: 0 ok, its exit status, -N killed by
/// signal N (-1 if it cannot be waited for).
pub fn wait_pid(pid: u32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child, with a valid pointer.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        if r == pid as i32 {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return -libc::WTERMSIG(status);
            }
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return -1;
        }
    }
}
