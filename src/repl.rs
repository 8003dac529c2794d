//! The interactive REPL: a rustyline editor over the same `Session` API the
//! CLI uses. Entries run on this (the session's main) thread; Ctrl-C while
//! one runs interrupts it through the session's `Interrupter`.

mod engines;
mod helper;
mod highlight;
mod keys;
mod meta;
mod printer;
mod reference;
mod stepper;

use crate::diagnostics::kind;
use crate::explore::Watched;
use crate::runtime::output::Output;
use crate::runtime::value::Value;
use crate::session::{Interrupter, Session, SessionOptions};
use engines::Mode;
use helper::{is_incomplete, may_continue_with_else, starts_with_else, ReplHelper};
use meta::Meta;
use parking_lot::Mutex;
use printer::ReplOutput;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const PROMPT: &str = "conc> ";
const CONTINUE: &str = "... ";

/// Run the REPL until `:quit` or Ctrl-D; gives the process exit status.
pub fn run(color: bool) -> i32 {
    let mut repl = match Repl::new(color) {
        Ok(repl) => repl,
        Err(e) => {
            eprintln!("conc: cannot start the REPL: {e}");
            return 2;
        }
    };
    println!(
        "conc {} — :help for commands, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    match repl.main_loop() {
        // `exit(code)` at the prompt leaves at once, as in a script.
        Some(code) => {
            repl.session.abandon_children();
            code
        }
        None => repl.finish(),
    }
}

struct Repl {
    editor: Editor<ReplHelper, FileHistory>,
    session: Session,
    out: Arc<ReplOutput>,
    /// What the Ctrl-C handler interrupts; replaced on `:reset`.
    interrupter: Arc<Mutex<Option<Interrupter>>>,
    history: Option<PathBuf>,
    entries: usize,
    color: bool,
    /// A line read while waiting for an `else` that turned out to start the
    /// next entry.
    carried: Option<String>,
    /// The engine entries run on, and whether they are traced.
    mode: Mode,
    /// What a traced controlled session writes down.
    watched: Option<Watched>,
    /// Under `:sched manual`: `:run` let the current entry go on unasked.
    free: Arc<AtomicBool>,
}

/// What one read at the prompt gave.
enum Input {
    Entry(String),
    /// Ctrl-C at the prompt: the line was dropped.
    Cleared,
    Eof,
}

impl Repl {
    fn new(color: bool) -> rustyline::Result<Repl> {
        let config = Config::builder()
            .auto_add_history(false)
            .bracketed_paste(false)
            .build();
        let mut editor: Editor<ReplHelper, FileHistory> = Editor::with_config(config)?;
        keys::bind(&mut editor);
        // No external printer on a terminal rustyline cannot drive (TERM=dumb):
        // background lines then go straight to stdout.
        let printer = editor
            .create_external_printer()
            .ok()
            .map(|p| Box::new(p) as printer::Printer);
        let out = Arc::new(ReplOutput::new(printer));
        let session = new_session(out.clone(), color);
        editor.set_helper(Some(ReplHelper {
            ctx: session.context().clone(),
            color,
        }));
        let history = history_path();
        if let Some(path) = &history {
            // A missing file is the normal first run.
            let _ = editor.load_history(path);
        }
        let interrupter = Arc::new(Mutex::new(Some(session.interrupt_handle())));
        install_ctrl_c(interrupter.clone());
        Ok(Repl {
            editor,
            session,
            out,
            interrupter,
            history,
            entries: 0,
            color,
            carried: None,
            mode: Mode::default(),
            watched: None,
            free: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Until Ctrl-D or `:quit` (None), or an `exit(code)` (its status).
    fn main_loop(&mut self) -> Option<i32> {
        loop {
            let text = match self.read_entry() {
                Input::Entry(text) => text,
                Input::Cleared => continue,
                Input::Eof => return None,
            };
            if text.trim().is_empty() {
                continue;
            }
            self.remember(&text);
            if text.trim_start().starts_with(':') {
                match meta::command(&text, &self.session) {
                    Meta::Continue => {}
                    Meta::Run(name, source) => {
                        if let Some(code) = self.eval(&name, &source) {
                            return Some(code);
                        }
                    }
                    Meta::Reset => self.reset(),
                    Meta::Quit => return None,
                    Meta::Sched(arg) => self.sched(&arg),
                    Meta::Trace(arg) => self.trace(&arg),
                    Meta::Timeline(path) => self.write_trace(&path, true),
                }
            } else {
                self.entries += 1;
                let name = format!("<repl:{}>", self.entries);
                if let Some(code) = self.eval(&name, &text) {
                    return Some(code);
                }
            }
        }
    }

    /// Read lines until they form a complete entry (or a meta command).
    fn read_entry(&mut self) -> Input {
        let mut text = String::new();
        let mut waiting_for_else = false;
        loop {
            let line = match self.carried.take() {
                Some(line) => line,
                None => match self.read_line(if text.is_empty() { PROMPT } else { CONTINUE }) {
                    Ok(line) => line,
                    // Ctrl-D after a finished `if`: run it (Ctrl-D again leaves).
                    Err(Input::Eof) if waiting_for_else => return Input::Entry(text),
                    Err(input) => return input,
                },
            };
            if waiting_for_else && !starts_with_else(&line) {
                // Not the `else`: the `if` is done, and this line starts the next entry.
                if !line.trim().is_empty() {
                    self.carried = Some(line);
                }
                return Input::Entry(text);
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&line);
            if text.trim_start().starts_with(':') {
                return Input::Entry(text);
            }
            if !is_incomplete(&text) {
                waiting_for_else = may_continue_with_else(&text);
                if !waiting_for_else {
                    return Input::Entry(text);
                }
            }
        }
    }

    /// One line from the editor; Ctrl-C and Ctrl-D end the entry.
    fn read_line(&mut self, prompt: &str) -> Result<String, Input> {
        self.out.set_prompt_active(true);
        let line = self.editor.readline(prompt);
        self.out.set_prompt_active(false);
        match line {
            Ok(line) => Ok(line),
            Err(ReadlineError::Interrupted) => Err(Input::Cleared),
            Err(ReadlineError::Eof) => Err(Input::Eof),
            Err(e) => {
                eprintln!("conc: cannot read the terminal: {e}");
                Err(Input::Eof)
            }
        }
    }

    /// Add an entry to history and append it to the file at once, so a
    /// killed terminal loses nothing.
    fn remember(&mut self, text: &str) {
        let _ = self.editor.add_history_entry(text);
        if let Some(path) = &self.history {
            if let Err(e) = self.editor.append_history(path) {
                eprintln!("conc: cannot write history to {}: {e}", path.display());
                self.history = None;
            }
        }
    }

    /// Run one entry; echo its value, or report its error, then carry on.
    /// Gives the status when the entry called `exit`.
    fn eval(&mut self, name: &str, source: &str) -> Option<i32> {
        self.free.store(false, Ordering::Relaxed);
        let mut result = self.session.run(name, source);
        if self.mode.controlled() && result.is_ok() {
            // Under control nothing runs between entries: the threads this
            // one started take their turns now.
            if let Err(e) = self.session.settle() {
                result = Err(e);
            }
        }
        // A partial line `write` left is shown before the echo or error.
        self.out.flush();
        match result {
            Ok(Some(Value::Nil)) | Ok(None) => {}
            Ok(Some(value)) => self.out.line(&value.to_repr()),
            Err(e) if e.kind() == kind::EXIT => return Some(e.exit_code()),
            Err(e) if e.kind() == kind::INTERRUPTED => eprintln!("Interrupted"),
            Err(e) => eprint!("{}", self.session.render(&e)),
        }
        None
    }

    /// `:reset`: a fresh session (under the same `:sched` and `:trace`);
    /// threads of the old one run on unowned.
    fn reset(&mut self) {
        self.session = new_session(self.out.clone(), self.color);
        self.watched = None;
        if self.mode.controlled() || self.mode.tracing {
            let mode = std::mem::take(&mut self.mode);
            self.switch_to(mode, false);
        }
        self.session_changed();
        println!("session reset");
    }

    /// Ctrl-C and completion follow the session.
    fn session_changed(&mut self) {
        *self.interrupter.lock() = Some(self.session.interrupt_handle());
        if let Some(helper) = self.editor.helper_mut() {
            helper.ctx = self.session.context().clone();
        }
    }

    /// `:sched`, `:sched S`.
    fn sched(&mut self, arg: &str) {
        if arg.is_empty() {
            println!("{}", self.mode.describe());
            return;
        }
        match engines::parse_sched(arg) {
            Ok(sched) => {
                let mode = Mode {
                    sched,
                    tracing: self.mode.tracing,
                };
                self.switch_to(mode, true);
            }
            Err(e) => eprintln!(":sched {arg}: {e}"),
        }
    }

    /// `:trace`, `:trace on|off`, `:trace FILE`.
    fn trace(&mut self, arg: &str) {
        match arg {
            "" => println!("{}", self.mode.describe()),
            "on" | "off" => {
                let mode = Mode {
                    sched: self.mode.sched.clone(),
                    tracing: arg == "on",
                };
                self.switch_to(mode, true);
            }
            path => self.write_trace(path, false),
        }
    }

    /// Go on under `mode` (definitions stay); says so when `tell`.
    fn switch_to(&mut self, mode: Mode, tell: bool) {
        match engines::switch(&mut self.session, &mode, &self.out, self.color, &self.free) {
            Ok(watched) => {
                self.watched = watched;
                self.mode = mode;
                self.session_changed();
                if tell {
                    println!("{}", self.mode.describe());
                }
            }
            Err(e) => eprintln!("cannot switch: {e}"),
        }
    }

    /// `:trace FILE` (JSON) or `:timeline FILE` (the page).
    fn write_trace(&self, path: &str, page: bool) {
        let what = if page { ":timeline" } else { ":trace" };
        if path.is_empty() {
            eprintln!("{what} needs a file name, e.g. {what} run.json");
            return;
        }
        if !self.mode.tracing {
            eprintln!("nothing was recorded: :trace on first, then the entries to trace");
            return;
        }
        let Some(text) = engines::traced(&self.session, self.watched.as_ref(), page) else {
            eprintln!("nothing was recorded");
            return;
        };
        match std::fs::write(path, text) {
            Ok(()) => println!("wrote {path}"),
            Err(e) => eprintln!("cannot write {path}: {e}"),
        }
    }

    /// Leaving: wait for non-daemon threads, as a script does at its end.
    fn finish(mut self) -> i32 {
        let main = self.session.main_thread().id;
        let waiting = (self.session.context().registry.snapshot().iter())
            .filter(|i| i.thread.id != main && !i.thread.daemon && i.thread.alive())
            .count();
        if waiting > 0 {
            // Say why leaving pauses, and how to skip it.
            eprintln!("waiting for {waiting} thread(s) to finish (Ctrl-C to leave now)");
        }
        match self.session.finish() {
            Ok(()) => 0,
            Err(e) if e.kind() == kind::INTERRUPTED => 0,
            Err(e) => {
                eprint!("{}", self.session.render(&e));
                e.exit_code()
            }
        }
    }
}

fn new_session(out: Arc<ReplOutput>, color: bool) -> Session {
    Session::new(SessionOptions {
        argv: Vec::new(),
        out,
        // A deadlock reports and returns to the prompt.
        deadlock_exits: false,
        color,
        ..Default::default()
    })
}

/// `$CONC_HISTORY`, else `~/.conc_history`; None without a home.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CONC_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".conc_history"))
}

/// While an entry runs the terminal is in cooked mode, so Ctrl-C is a
/// SIGINT; turn it into an interrupt of the session's main thread. (At the
/// prompt rustyline reads Ctrl-C as a key instead.)
fn install_ctrl_c(target: Arc<Mutex<Option<Interrupter>>>) {
    let handler = move || {
        if let Some(interrupter) = target.lock().as_ref() {
            interrupter.interrupt();
        }
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("conc: Ctrl-C will not interrupt entries: {e}");
    }
}
