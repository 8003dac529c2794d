//! Meta commands (`:help`, `:load`, `:threads`, `:reset`, `:quit`): REPL
//! verbs that are not part of the language.

use crate::runtime::waits::ThreadInfo;
use crate::session::Session;

pub const HELP: &str = "\
Type conc code; an expression's value is echoed. Unfinished blocks, brackets
and strings continue on the next line (prompt `... `).
  :help          this text, then the statements and builtins
  :help NAME     that entry of the language reference (docs/language.md)
  :load FILE     run a script into this session (its functions and globals stay)
  :threads       every live thread: name, id, state, what it waits for and
                 where, and the locks it holds
  :reset         start a fresh session (threads already running keep running)
  :sched [S]     run the following entries under S: os (real threads, the
                 default), random[:SEED], pct:DEPTH[:SEED] (the controlled
                 engine: virtual time, one thread at a time, same seed same
                 run) or manual (you pick the thread at every step: Enter or
                 :step [N|NAME] to step, :run to finish the entry); definitions
                 stay; without S, says which is in use
  :trace on|off  record what the following entries do (on: starts afresh)
  :trace FILE    write what was recorded as Chrome Trace JSON (Perfetto)
  :timeline FILE write it as a self-contained HTML page of swim lanes
  :quit          leave (also Ctrl-D); waits for non-daemon threads first
Keys: Tab completes, Up/Down and Ctrl-R search history, Ctrl-C interrupts a
running entry or clears the line.";

/// What the REPL loop does after a meta command.
pub enum Meta {
    /// Done; show the prompt again.
    Continue,
    /// Run this script (from `:load`) as an entry: (name, source).
    Run(String, String),
    Reset,
    Quit,
    /// `:sched ARG`.
    Sched(String),
    /// `:trace ARG`.
    Trace(String),
    /// `:timeline FILE`.
    Timeline(String),
}

/// Interpret one `:command args` line.
pub fn command(line: &str, session: &Session) -> Meta {
    let line = line.trim();
    let (cmd, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match cmd {
        ":help" | ":h" | ":?" if arg.trim().is_empty() => {
            println!("{HELP}\n\n{}", super::reference::index())
        }
        ":help" | ":h" | ":?" => match super::reference::entry(arg) {
            Some(text) => println!("{text}"),
            None => eprintln!("no entry for {}; :help lists them", arg.trim()),
        },
        ":quit" | ":q" | ":exit" => return Meta::Quit,
        ":reset" => return Meta::Reset,
        ":threads" | ":t" => println!("{}", threads(session)),
        ":load" | ":l" => return load(arg.trim()),
        ":sched" => return Meta::Sched(arg.trim().to_string()),
        ":trace" => return Meta::Trace(arg.trim().to_string()),
        ":timeline" => return Meta::Timeline(arg.trim().to_string()),
        _ => eprintln!("unknown command {cmd}; :help lists them"),
    }
    Meta::Continue
}

fn load(path: &str) -> Meta {
    if path.is_empty() {
        eprintln!(":load needs a file name, e.g. :load examples/pool.conc");
        return Meta::Continue;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Meta::Run(path.to_string(), text),
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            Meta::Continue
        }
    }
}

/// One line per live thread, main first, then in creation order.
pub fn threads(session: &Session) -> String {
    let mut infos: Vec<ThreadInfo> = session
        .context()
        .registry
        .snapshot()
        .into_iter()
        .filter(|i| i.thread.alive())
        .collect();
    infos.sort_by_key(|i| i.thread.id);
    let main_id = session.main_thread().id;
    let lines: Vec<String> = infos
        .iter()
        .map(|i| describe(i, session, i.thread.id == main_id))
        .collect();
    lines.join("\n")
}

fn describe(info: &ThreadInfo, session: &Session, is_main: bool) -> String {
    let t = &info.thread;
    let daemon = if t.daemon { " daemon" } else { "" };
    let state = match &info.waiting {
        Some(on) => {
            let place = on
                .span
                .map(|s| format!(" at {}", session.context().sources.location(s)))
                .unwrap_or_default();
            format!("blocked on {}{}", on.what, place)
        }
        None if is_main => "at the prompt".to_string(),
        None => "running".to_string(),
    };
    let held = session.context().registry.holdings(t);
    let holds = if held.is_empty() {
        String::new()
    } else {
        format!(", holds {}", held.join(", "))
    };
    format!("{:<12} id {:<4}{} {}{}", t.name, t.id, daemon, state, holds)
}
