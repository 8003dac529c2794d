//! The REPL driven through a real pseudo-terminal, as a user would type.

use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};
use std::path::Path;
use std::process::Command;

/// Generous: a loaded CI machine may be slow; a passing test never waits this long.
const TIMEOUT_MS: u64 = 10_000;

type R = Result<(), rexpect::error::Error>;

fn start(history: &Path) -> Result<PtySession, rexpect::error::Error> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conc"));
    cmd.env("CONC_HISTORY", history)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let options = Options {
        timeout_ms: Some(TIMEOUT_MS),
        strip_ansi_escape_codes: true,
    };
    let mut p = spawn_with_options(cmd, options)?;
    p.exp_string("conc> ")?;
    Ok(p)
}

fn temp_history(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("conc-repl-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Type one line as a terminal would deliver it. rustyline 15 with an
/// external printer only notices input that arrives in separate reads
/// (upstream kkawakam/rustyline#976), so the text goes as one bracketed
/// paste, and Enter only once the text is on screen.
fn type_line(p: &mut PtySession, line: &str) -> R {
    p.send(&format!("\x1b[200~{line}\x1b[201~"))?;
    p.flush()?;
    p.exp_string(line)?;
    p.send("\r")?;
    p.flush()?;
    Ok(())
}

/// Ctrl-D leaves cleanly. Every test ends on an entry's output: wait for
/// the prompt after it, since a key sent while that entry is still
/// finishing can be lost before rustyline reads the terminal again.
fn quit(mut p: PtySession) -> R {
    p.exp_string("conc> ")?;
    p.send_control('d')?;
    p.exp_eof()?;
    Ok(())
}

#[test]
fn echo_state_and_multiline_entry() -> R {
    let mut p = start(&temp_history("multiline"))?;
    type_line(&mut p, "\"ab\" + \"cd\"")?;
    p.exp_string("\"abcd\"")?;
    type_line(&mut p, "fn add(a, b) {")?;
    p.exp_string("... ")?;
    type_line(&mut p, "return a + b")?;
    p.exp_string("... ")?;
    type_line(&mut p, "}")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "let base = 40")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "add(base, 2)")?;
    p.exp_string("42")?;
    quit(p)
}

#[test]
fn background_output_appears_at_the_prompt() -> R {
    let mut p = start(&temp_history("background"))?;
    type_line(&mut p, "spawn { sleep(0.2); print(\"b\" + \"g-done\") }")?;
    p.exp_string("conc> ")?;
    p.exp_string("bg-done")?;
    // The prompt is drawn again below the line.
    p.exp_string("conc> ")?;
    type_line(&mut p, "6 * 7")?;
    p.exp_string("42")?;
    quit(p)
}

#[test]
fn ctrl_c_interrupts_a_blocked_get_and_the_session_survives() -> R {
    let mut p = start(&temp_history("ctrl-c"))?;
    // A sleeping thread could still put, so the get is not a deadlock.
    type_line(
        &mut p,
        "let q = queue(); let kept = 41; spawn daemon thread { sleep(60) }",
    )?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "print(\"wait\" + \"ing\"); get q")?;
    p.exp_string("waiting")?;
    p.send_control('c')?;
    p.exp_string("Interrupted")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "kept + 1")?;
    p.exp_string("42")?;
    // Ctrl-C at the prompt clears the line being typed.
    p.exp_string("conc> ")?;
    p.send("\x1b[200~this is not run\x1b[201~")?;
    p.flush()?;
    p.exp_string("this is not run")?;
    p.send_control('c')?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "kept + 2")?;
    p.exp_string("43")?;
    quit(p)
}

#[test]
fn threads_lists_a_blocked_thread_and_where() -> R {
    let mut p = start(&temp_history("threads"))?;
    type_line(&mut p, "let q = queue(); let m = lock()")?;
    p.exp_string("conc> ")?;
    type_line(
        &mut p,
        "let t = spawn thread { lock m { return get q } } named \"getter\"",
    )?;
    p.exp_string("conc> ")?;
    type_line(&mut p, ":threads")?;
    p.exp_string("getter")?;
    p.exp_string("blocked on")?;
    p.exp_string("<repl:2>:1:")?;
    p.exp_string("holds lock#")?;
    p.exp_string("(m)")?;
    type_line(&mut p, "put q, 5; join t")?;
    p.exp_string("5")?;
    quit(p)
}

#[test]
fn an_error_is_reported_and_the_repl_continues() -> R {
    let mut p = start(&temp_history("error"))?;
    type_line(&mut p, "let n = 1 / 0")?;
    p.exp_string("ZeroDivisionError")?;
    p.exp_string("<repl:1>")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "let n = 3")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "n * 14")?;
    p.exp_string("42")?;
    quit(p)
}

#[test]
fn history_persists_across_runs() -> R {
    let history = temp_history("history");
    let mut p = start(&history)?;
    type_line(&mut p, "\"hist\" + \"ory\"")?;
    p.exp_string("\"history\"")?;
    quit(p)?;
    let mut p = start(&history)?;
    // Up arrow recalls the previous run's entry; Enter runs it.
    p.send("\x1b[A")?;
    p.flush()?;
    p.exp_string("\"hist\" + \"ory\"")?;
    p.send("\r")?;
    p.flush()?;
    p.exp_string("\"history\"")?;
    quit(p)
}

/// A function defined at the prompt runs in a child process, which sees the
/// globals of earlier entries, and prints through the REPL.
#[test]
fn repl_defined_function_in_a_process() -> R {
    let mut p = start(&temp_history("process"))?;
    type_line(&mut p, "let base = 40")?;
    p.exp_string("conc> ")?;
    type_line(
        &mut p,
        "fn grow(x) { print(\"child says\", getppid() != getpid()); return base + x }",
    )?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "let c = spawn process grow(2)")?;
    p.exp_string("child says true")?;
    type_line(&mut p, "join c")?;
    p.exp_string("42")?;
    quit(p)
}

/// Ctrl-C while joining a long-running child: the terminal's SIGINT ends
/// the child too, the entry stops, and the session goes on.
#[test]
fn ctrl_c_while_joining_a_process() -> R {
    let mut p = start(&temp_history("ctrl-c-process"))?;
    type_line(&mut p, "fn nap() { sleep(60) }")?;
    p.exp_string("conc> ")?;
    type_line(
        &mut p,
        "let c = spawn process nap(); print(\"join\" + \"ing\"); join c",
    )?;
    p.exp_string("joining")?;
    p.send_control('c')?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "join c timeout 10")?;
    p.exp_string("SIGINT")?;
    quit(p)
}
