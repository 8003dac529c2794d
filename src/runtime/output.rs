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
        eprint!("{}", text);
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
        // A closed stdout (e.g. `conc x.conc | head -1`) must not kill the program.
        let _ = out.write_all(&buf).and_then(|_| out.flush());
    }
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
