//! `conc` started as a child process (`spawn process`): read the start
//! message from the connection on standard input (`open`, while the process
//! has one thread) and run it as a child session (`run`, `session::child`).
//! If the parent goes away, the child ends at once: no orphans.

use crate::runtime::arena::Arena;
use crate::runtime::process::transport::{Inbox, Transport};
use crate::runtime::process::wire::{self, Msg, Start};
use crate::runtime::process::{spawner, Link};
use crate::session::child;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

pub use crate::runtime::process::CHILD_FLAG;

/// A child's connection and the start message read from it.
pub struct Opened {
    stream: UnixStream,
    reader: UnixStream,
    arena: Option<std::sync::Arc<Arena>>,
    start: Start,
}

impl Opened {
    /// The program mentions processes: this child may start some, and
    /// makes a spawner for them (see `runtime/process/spawner.rs`).
    pub fn may_spawn_processes(&self) -> bool {
        let text = |(_, text): &(String, String)| spawner::wanted(text);
        self.start.sources.iter().any(text)
    }
}

/// Read the start message from the connection on standard input (before
/// any thread is started); the exit status if there is none.
pub fn open() -> Result<Opened, i32> {
    // SAFETY: in child mode the parent made standard input our end of a
    // socket pair, and nothing else in this process uses fd 0.
    let stream = unsafe { UnixStream::from_raw_fd(0) };
    let Ok(mut reader) = stream.try_clone() else {
        return Err(2);
    };
    // Only a socket pair from a conc parent carries a start message; a
    // terminal, file or pipe on standard input is a person trying the flag.
    // The parent's arena comes first, on one byte of its own.
    let mut arena = None;
    let opening = is_socket(&stream).then(|| {
        arena = Arena::receive(&stream).ok().flatten();
        wire::read_msg(&mut reader)
    });
    match opening {
        Some(Ok(Some(Msg::Start(start)))) if start.check().is_ok() => Ok(Opened {
            stream,
            reader,
            arena,
            start: *start,
        }),
        _ => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("conc: {CHILD_FLAG} is only for processes conc starts itself\n").as_bytes(),
            );
            Err(2)
        }
    }
}

/// Run the child `open` read; gives the process's exit status (0 ok, 1
/// error).
pub fn run(opened: Opened) -> i32 {
    let Opened {
        stream,
        reader,
        arena,
        start,
    } = opened;
    let link = Link::new(
        "the parent process".to_string(),
        Transport::socket(stream),
        true,
        arena,
    );
    let mut session = child::session(&link, &start, None);
    if child::serve_parent(&link, Inbox::socket(reader), |_| {}).is_err() {
        return 2;
    }
    child::run(&mut session, &link, start)
}

fn is_socket(stream: &UnixStream) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::os::fd::AsFd::as_fd(stream)
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_socket())
}
