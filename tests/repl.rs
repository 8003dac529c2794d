//! The REPL driven through a real pseudo-terminal, as a user would type.

#[path = "support/chrome.rs"]
mod chrome;

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

/// Type one line: the text (wrapped in bracketed-paste markers, which the
/// REPL ignores, so they are covered by every test), then Enter once the
/// text is on screen.
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
fn a_background_thread_s_error_appears_when_it_happens() -> R {
    let mut p = start(&temp_history("thread-error"))?;
    type_line(&mut p, "let t = spawn { 1 // 0 }")?;
    p.exp_string("error in thread")?;
    p.exp_string("ZeroDivisionError")?;
    type_line(&mut p, "print(40 + 2)")?;
    p.exp_string("42")?;
    quit(p)
}

#[test]
fn a_background_lock_cycle_is_reported_at_once() -> R {
    let mut p = start(&temp_history("background-cycle"))?;
    type_line(&mut p, "let a = lock(); let b = lock()")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "fn one() { lock a { sleep(0.1); lock b { } } }")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "fn two() { lock b { sleep(0.1); lock a { } } }")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "let t1 = spawn one(); let t2 = spawn two()")?;
    p.exp_string("Deadlock")?;
    p.exp_string("wait for each other's locks in a cycle")?;
    type_line(&mut p, "print(6 * 7)")?;
    p.exp_string("42")?;
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

// ---------------------------------------------------------------- bursts of input
//
// A paste, `tmux send-keys`, or keys typed ahead while an entry runs reach
// the REPL in one write. Each case below sends its input in one write and
// then waits for what it must produce (never a sleep).

/// Send `text` in one write, as a paste or `tmux send-keys` does.
fn burst(p: &mut PtySession, text: &str) -> R {
    p.send(text)?;
    p.flush()?;
    Ok(())
}

/// An expression of exactly `n` characters and the value it echoes.
fn expression_of_length(n: usize) -> (String, String) {
    if n == 5 {
        return ("6 * 7".to_string(), "42".to_string());
    }
    let filler = "a".repeat(n - 7);
    (format!("len(\"{filler}\")"), (n - 7).to_string())
}

/// A daemon thread printing above the prompt all through the test.
fn start_ticker(p: &mut PtySession) -> R {
    type_line(
        p,
        "spawn daemon thread { while true { print(\"ti\" + \"ck\"); sleep(0.05) } }",
    )?;
    p.exp_string("tick")?;
    Ok(())
}

/// Each helper below starts right after a prompt and ends on output, so the
/// caller (or `quit`) waits for the next prompt.
fn bursts_of_every_size(p: &mut PtySession) -> R {
    for n in [5, 20, 200] {
        if n != 5 {
            p.exp_string("conc> ")?;
        }
        let (code, value) = expression_of_length(n);
        assert_eq!(code.len(), n);
        // Without Enter: all of it is drawn, and Enter then runs all of it.
        burst(p, &code)?;
        p.exp_string(&code[n - 4..])?;
        burst(p, "\r")?;
        p.exp_string(&value)?;
        p.exp_string("conc> ")?;
        // With Enter in the same write.
        burst(p, &format!("{code}\r"))?;
        p.exp_string(&value)?;
    }
    Ok(())
}

#[test]
fn bursts_with_and_without_enter_run_at_once() -> R {
    let mut p = start(&temp_history("bursts"))?;
    bursts_of_every_size(&mut p)?;
    quit(p)
}

#[test]
fn bursts_run_at_once_while_a_thread_prints() -> R {
    let mut p = start(&temp_history("bursts-ticking"))?;
    start_ticker(&mut p)?;
    bursts_of_every_size(&mut p)?;
    quit(p)
}

fn three_entries_in_one_paste(p: &mut PtySession) -> R {
    burst(
        p,
        "let a = 10\rlet b = a * 3\rprint(str(a + b + 2) + \"!\")\r",
    )?;
    p.exp_string("42!")?;
    Ok(())
}

#[test]
fn a_paste_of_three_entries_runs_all_three() -> R {
    let mut p = start(&temp_history("three"))?;
    three_entries_in_one_paste(&mut p)?;
    quit(p)
}

#[test]
fn a_paste_of_three_entries_runs_all_three_while_a_thread_prints() -> R {
    let mut p = start(&temp_history("three-ticking"))?;
    start_ticker(&mut p)?;
    three_entries_in_one_paste(&mut p)?;
    quit(p)
}

const FUNCTION: &str = "fn add(a, b) {\r  let s = a + b\r  # a comment\r  return s\r}\r";

/// The function is defined whole: a call gives its value, and the session
/// is back at the top level (a following entry runs on its own).
fn check_function_defined(p: &mut PtySession) -> R {
    type_line(p, "add(40, 2)")?;
    p.exp_string("42")?;
    p.exp_string("conc> ")?;
    type_line(p, "6 * 9")?;
    p.exp_string("54")?;
    Ok(())
}

fn pasted_functions(p: &mut PtySession) -> R {
    burst(p, FUNCTION)?;
    p.exp_string("conc> ")?;
    check_function_defined(p)?;
    // The same, as a bracketed paste whose text ends in a newline: it runs
    // without an extra Enter.
    let bracketed = FUNCTION.replace("add", "plus").replace('\r', "\n");
    burst(
        p,
        &format!("\x1b[200~{bracketed}plus(1, 1) * 21\n\x1b[201~"),
    )?;
    p.exp_string("42")?;
    p.exp_string("conc> ")?;
    burst(p, "\x1b[200~7 * 7\n\x1b[201~")?;
    p.exp_string("49")?;
    Ok(())
}

#[test]
fn a_pasted_function_is_defined_whole_plain_or_bracketed() -> R {
    let mut p = start(&temp_history("paste-fn"))?;
    pasted_functions(&mut p)?;
    quit(p)
}

#[test]
fn a_pasted_function_is_defined_whole_while_a_thread_prints() -> R {
    let mut p = start(&temp_history("paste-fn-ticking"))?;
    start_ticker(&mut p)?;
    pasted_functions(&mut p)?;
    quit(p)
}

fn keys_typed_ahead(p: &mut PtySession) -> R {
    type_line(p, "sleep(1); print(\"slept\" + \"!\")")?;
    // Typed while the entry sleeps (the REPL is not reading yet).
    burst(p, "let ahead = 6\rahead * 7\r")?;
    p.exp_string("slept!")?;
    p.exp_string("42")?;
    Ok(())
}

#[test]
fn keys_typed_ahead_during_an_entry_run_after_it() -> R {
    let mut p = start(&temp_history("ahead"))?;
    keys_typed_ahead(&mut p)?;
    quit(p)
}

#[test]
fn keys_typed_ahead_run_after_it_while_a_thread_prints() -> R {
    let mut p = start(&temp_history("ahead-ticking"))?;
    start_ticker(&mut p)?;
    keys_typed_ahead(&mut p)?;
    quit(p)
}

// ---------------------------------------------------------------- as in a script

#[test]
fn else_on_the_line_after_the_closing_brace() -> R {
    let mut p = start(&temp_history("else"))?;
    burst(
        &mut p,
        "if 1 > 2 {\r  print(\"no\")\r}\relse {\r  print(\"other\" + \"wise\")\r}\r",
    )?;
    p.exp_string("otherwise")?;
    // After a multi-line `if`, a line that is not `else` is the next entry...
    burst(&mut p, "if true {\r  print(\"ye\" + \"s\")\r}\r6 * 7\r")?;
    p.exp_string("yes")?;
    p.exp_string("42")?;
    // ...and an empty line runs the `if` at once.
    burst(&mut p, "if true {\r  print(\"do\" + \"ne\")\r}\r")?;
    p.exp_string("... ")?;
    burst(&mut p, "\r")?;
    p.exp_string("done")?;
    // A one-line `if` runs at once.
    p.exp_string("conc> ")?;
    type_line(&mut p, "if true { print(\"at \" + \"once\") }")?;
    p.exp_string("at once")?;
    quit(p)
}

#[test]
fn an_open_string_continues_on_the_next_line() -> R {
    let mut p = start(&temp_history("string"))?;
    type_line(&mut p, "let s = \"two")?;
    p.exp_string("... ")?;
    type_line(&mut p, "lines\"")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "len(s) * 10 + len(s.split(\"\\n\"))")?;
    p.exp_string("92")?;
    quit(p)
}

#[test]
fn help_lists_builtins_and_shows_an_entry_of_the_reference() -> R {
    let mut p = start(&temp_history("help"))?;
    type_line(&mut p, ":help")?;
    p.exp_string("Builtins:")?;
    p.exp_string("thread_pool")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, ":help select")?;
    p.exp_string("Waits for the first ready case")?;
    quit(p)
}

/// A line typed at the stepper's `step>` prompt (a plain read of the
/// terminal, so no paste markers).
fn answer_step(p: &mut PtySession, line: &str) -> R {
    p.exp_string("step> ")?;
    p.send(&format!("{line}\r"))?;
    p.flush()?;
    Ok(())
}

#[test]
fn sched_and_trace_switch_engines_and_keep_definitions() -> R {
    let dir = temp_history("traces-dir");
    let _ = std::fs::create_dir_all(&dir);
    let (os, os_again, controlled, page) = (
        dir.join("os.json"),
        dir.join("os-again.json"),
        dir.join("controlled.json"),
        dir.join("controlled.html"),
    );
    let mut p = start(&temp_history("sched"))?;
    type_line(&mut p, ":trace on")?;
    p.exp_string("tracing is on")?;
    type_line(&mut p, "let q = queue()")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "fn feed() { for i in range(3) { put q, i * 10 } }")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "let t = spawn feed()")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "print(get q, get q, get q)")?;
    p.exp_string("0 10 20")?;
    type_line(&mut p, &format!(":trace {}", os.display()))?;
    p.exp_string("wrote")?;
    // Writing it does not use it up: a second file holds the same run.
    type_line(&mut p, &format!(":trace {}", os_again.display()))?;
    p.exp_string("wrote")?;
    // The function and the queue made on real threads go on under control.
    type_line(&mut p, ":sched random:5")?;
    p.exp_string("random:5 (controlled, virtual time); tracing is on")?;
    // The spawned thread runs before the prompt comes back.
    type_line(&mut p, "let t2 = spawn feed()")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "print(q.size(), time() < 1)")?;
    p.exp_string("3 true")?;
    type_line(&mut p, &format!(":trace {}", controlled.display()))?;
    p.exp_string("wrote")?;
    type_line(&mut p, &format!(":timeline {}", page.display()))?;
    p.exp_string("wrote")?;
    type_line(&mut p, ":sched os")?;
    p.exp_string("os (real threads)")?;
    type_line(&mut p, "print(get q + get q + get q)")?;
    p.exp_string("30")?;
    quit(p)?;
    for file in [&os, &controlled] {
        let text = std::fs::read_to_string(file).expect("the trace was written");
        let events = chrome::events_of(&text, "repl");
        let flows = chrome::validate(&events, &file.display().to_string());
        assert!(flows.iter().any(|f| f == "spawn"), "{flows:?}");
        assert!(text.contains("<repl:2>"), "source positions name the entry");
    }
    let events = |file: &std::path::Path| {
        let text = std::fs::read_to_string(file).expect("the trace was written");
        chrome::events_of(&text, "repl").len()
    };
    assert_eq!(events(&os_again), events(&os));
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(html.contains("<html") && !html.contains("http://") && !html.contains("https://"));
    Ok(())
}

#[test]
fn sched_manual_lets_the_user_choose_every_step() -> R {
    let mut p = start(&temp_history("manual"))?;
    type_line(&mut p, ":sched manual")?;
    p.exp_string("you choose each step")?;
    type_line(&mut p, "let m = lock(); let n = 0; let order = []")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "fn w(k) { lock m { n = n + 1; append(order, k) } }")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "let a = spawn w(\"a\"); let b = spawn w(\"b\")")?;
    p.exp_string("who goes next?")?;
    p.exp_string("main")?;
    p.exp_string("w-1")?;
    // Let main start both threads, then choose b's thread every time.
    loop {
        let (_, seen) = p.exp_regex("step> |w-2 ")?;
        if seen.starts_with("w-2") {
            break;
        }
        p.send("\r")?;
        p.flush()?;
    }
    answer_step(&mut p, ":step w-2")?;
    answer_step(&mut p, ":step 9")?;
    p.exp_string("there is no thread 9")?;
    answer_step(&mut p, ":step w-2")?;
    answer_step(&mut p, ":run")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, "print(n, order)")?;
    // b went first: its thread was the one chosen.
    p.exp_string("2 [\"b\", \"a\"]")?;
    quit(p)
}

#[test]
fn sched_is_refused_while_a_thread_runs() -> R {
    let mut p = start(&temp_history("refused"))?;
    type_line(&mut p, "let e = event(); let t = spawn thread { wait e }")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, ":sched random:1")?;
    p.exp_string("cannot switch: 1 thread is still running")?;
    type_line(&mut p, "e.set(); join t")?;
    p.exp_string("conc> ")?;
    type_line(&mut p, ":sched random:1")?;
    p.exp_string("random:1 (controlled")?;
    type_line(&mut p, ":sched nonsense")?;
    p.exp_string(":sched nonsense: unknown schedule")?;
    quit(p)
}
