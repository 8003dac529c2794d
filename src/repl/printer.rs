//! Where `print` goes in the REPL. Background threads keep printing while
//! the prompt waits; rustyline's external printer puts those lines above the
//! prompt and redraws the line being typed, so it is never garbled.

use crate::runtime::output::{Output, Stdout};
use parking_lot::Mutex;
use rustyline::ExternalPrinter;
use std::sync::atomic::{AtomicBool, Ordering};

/// A boxed printer: the concrete type is rustyline's per-platform one.
pub type Printer = Box<dyn ExternalPrinter + Send>;

pub struct ReplOutput {
    printer: Option<Mutex<Printer>>,
    /// True only while `readline` is running; otherwise lines go straight
    /// to stdout, in order with the REPL's own echo.
    prompt_active: AtomicBool,
}

impl ReplOutput {
    /// `printer` is None when the terminal cannot do it (e.g. TERM=dumb).
    pub fn new(printer: Option<Printer>) -> ReplOutput {
        ReplOutput {
            printer: printer.map(Mutex::new),
            prompt_active: AtomicBool::new(false),
        }
    }

    pub fn set_prompt_active(&self, active: bool) {
        self.prompt_active.store(active, Ordering::SeqCst);
    }
}

impl Output for ReplOutput {
    fn line(&self, text: &str) {
        if self.prompt_active.load(Ordering::SeqCst) {
            if let Some(printer) = &self.printer {
                // A failed external print falls back to plain stdout: losing
                // the line would be worse than a redrawn prompt.
                if printer.lock().print(format!("{text}\n")).is_ok() {
                    return;
                }
            }
        }
        Stdout.line(text);
    }

    fn text(&self, text: &str) {
        // Partial lines are held with standard output's own; the REPL
        // flushes them after each entry, and a line completed while the
        // prompt waits goes above it like any other.
        Stdout.text(text);
    }

    fn flush(&self) {
        Stdout.flush();
    }

    fn report(&self, text: &str) {
        if self.prompt_active.load(Ordering::SeqCst) {
            if let Some(printer) = &self.printer {
                if printer.lock().print(text.to_string()).is_ok() {
                    return;
                }
            }
        }
        eprint!("{}", text);
    }
}
