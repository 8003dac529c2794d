//! Where `print` goes. The evaluator never writes to stdout itself: it hands
//! whole lines to a sink, so a line is never torn by other threads, and the
//! REPL and tests can put the lines elsewhere.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::Arc;

pub trait Output: Send + Sync {
    fn line(&self, text: &str);

    /// Text that need not end a line (`write`). Sinks that can hold a
    /// partial line keep it until a newline or `flush` completes it, so
    /// whole lines stay whole; the fallback treats each piece as a line.
    fn text(&self, text: &str) {
        self.line(text);
    }

    /// Emit a partial line still held (the end of a run or REPL entry).
    fn flush(&self) {}

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

/// The partial line `write` left on standard output: held here, not
/// written, so that a line is still one `write` when another process
/// shares the pipe. One per process, as standard output is.
static PENDING: Mutex<String> = Mutex::new(String::new());

impl Output for Stdout {
    fn line(&self, text: &str) {
        let mut pending = PENDING.lock();
        let mut buf = Vec::with_capacity(pending.len() + text.len() + 1);
        buf.extend_from_slice(pending.as_bytes());
        pending.clear();
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        // Written under the lock, so lines keep the order they were made in.
        write_stdout(&buf);
    }

    fn text(&self, text: &str) {
        let mut pending = PENDING.lock();
        pending.push_str(text);
        // Everything up to the last newline is whole lines: out now.
        if let Some(end) = pending.rfind('\n') {
            let rest = pending.split_off(end + 1);
            write_stdout(pending.as_bytes());
            *pending = rest;
        }
    }

    fn flush(&self) {
        let mut pending = PENDING.lock();
        if !pending.is_empty() {
            write_stdout(pending.as_bytes());
            pending.clear();
        }
    }
}

fn write_stdout(buf: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(buf).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            reader_gone();
        }
        // Other failures (a full disk...) lose the line, as before.
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
    /// A partial line from `write`, until a newline or `flush` ends it.
    pub pending: Arc<Mutex<String>>,
}

impl Output for Capture {
    fn line(&self, text: &str) {
        let head = std::mem::take(&mut *self.pending.lock());
        self.lines.lock().push(head + text);
    }

    fn text(&self, text: &str) {
        let mut pending = self.pending.lock();
        pending.push_str(text);
        while let Some(end) = pending.find('\n') {
            let line = pending[..end].to_string();
            pending.replace_range(..=end, "");
            self.lines.lock().push(line);
        }
    }

    fn flush(&self) {
        let head = std::mem::take(&mut *self.pending.lock());
        if !head.is_empty() {
            self.lines.lock().push(head);
        }
    }
}
