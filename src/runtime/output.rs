//! Where `print` goes. The evaluator never writes to stdout itself: it hands
//! whole lines to a sink, so a line is never torn by other threads, and the
//! REPL and tests can put the lines elsewhere.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::Arc;

pub trait Output: Send + Sync {
    fn line(&self, text: &str);

    /// A report no script will see otherwise (a failed thread nobody joins).
    /// Standard error by default; the REPL puts it above the prompt.
    fn report(&self, text: &str) {
        // Not `eprint!`, which panics when standard error is a closed pipe.
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// Standard output; one `write` per line, so lines stay whole even across
/// processes sharing the same stdout pipe.
pub struct Stdout;

impl Output for Stdout {
    fn line(&self, text: &str) {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                reader_gone();
            }
            // Other failures (a full disk...) lose the line, as before.
        }
    }
}

/// Standard output is a pipe whose reader has gone (`conc x.conc | head
/// -1`): the program's output can never be read again, so end it the way
/// a Unix filter ends, killed by SIGPIPE (the shell sees status 141, and
/// prints nothing). Rust ignores SIGPIPE so that a write to a closed
/// socket (a child's connection) is an error instead; standard output is
/// the one place where the default is what users expect. Child processes
/// see their connection close and end too.
pub fn reader_gone() -> ! {
    // SAFETY: resetting SIGPIPE's disposition and raising it on this
    // thread; no other signal state is touched.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached unless SIGPIPE is blocked: the same status by hand.
    std::process::exit(128 + libc::SIGPIPE)
}

/// Collects lines in memory (tests, embedding).
#[derive(Default, Clone)]
pub struct Capture {
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Output for Capture {
    fn line(&self, text: &str) {
        self.lines.lock().push(text.to_string());
    }
}
