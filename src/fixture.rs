//! Fixtures: `.conc` files whose comments say what running them must do.
//!
//! ```text
//! print(1 + 1)          # expect: 2
//! # expect-unordered: w1 done
//! # expect-unordered: w2 done
//! # expect-error: TypeError
//! # expect-exit: 3
//! # expect-stderr: deadlock
//! # timeout: 5
//! # args: a b c
//! ```
//!
//! Each fixture runs as its own `conc FILE [ARGS]` process (in its own
//! process group, so a timeout can kill everything it spawned). This module
//! only ever talks to the `conc` binary through a subprocess, so it works the
//! same for `conc test`, the cargo test harness and CI.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Time limit of a fixture without a `timeout:` directive.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of the child's stderr shown in a failure report.
const STDERR_REPORT_LINES: usize = 40;
/// Unchanged lines shown around each change in a stdout diff.
const DIFF_CONTEXT: usize = 3;
/// Diff lines shown before the rest is cut, so a runaway print stays readable.
const DIFF_MAX_LINES: usize = 120;
/// Above this many LCS cells the diff falls back to "all removed, all added".
const DIFF_MAX_CELLS: usize = 4_000_000;
/// Output kept per stream; the rest is drained and dropped so a runaway
/// fixture cannot eat the memory of the test run.
const CAPTURE_LIMIT: usize = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Directives
// ---------------------------------------------------------------------------

/// One position in the expected stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdoutBlock {
    /// `expect: TEXT`: exactly this line here.
    Line(String),
    /// A run of `expect-unordered: TEXT`: these lines here, in any order.
    Unordered(Vec<String>),
}

/// The parsed directives of one fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    /// Expected stdout, in order. Empty means stdout is not checked.
    pub stdout: Vec<StdoutBlock>,
    /// `expect-error: KIND`: the run fails and stderr mentions KIND.
    pub expect_error: Option<String>,
    /// `expect-exit: N`.
    pub expect_exit: Option<i32>,
    /// `expect-stderr: TEXT` (may repeat): stderr contains each TEXT.
    pub expect_stderr: Vec<String>,
    /// `timeout: SECONDS`, default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// `args: a b c`: passed after the file name.
    pub args: Vec<String>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            stdout: Vec::new(),
            expect_error: None,
            expect_exit: None,
            expect_stderr: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            args: Vec::new(),
        }
    }
}

impl Fixture {
    /// Stdout is compared only when the fixture states some of it.
    pub fn checks_stdout(&self) -> bool {
        !self.stdout.is_empty()
    }

    /// `expect-exit`, else 1 for `expect-error`, else 0.
    pub fn expected_exit(&self) -> i32 {
        match (self.expect_exit, &self.expect_error) {
            (Some(code), _) => code,
            (None, Some(_)) => 1,
            (None, None) => 0,
        }
    }

    fn push_line(&mut self, text: String) {
        self.stdout.push(StdoutBlock::Line(text));
    }

    /// Joins the previous unordered group unless an `expect:` came between.
    fn push_unordered(&mut self, text: String) {
        match self.stdout.last_mut() {
            Some(StdoutBlock::Unordered(group)) => group.push(text),
            _ => self.stdout.push(StdoutBlock::Unordered(vec![text])),
        }
    }
}

/// Reads every directive in `text`. A malformed directive is an error that
/// names its line, so a typo cannot silently turn a check off.
pub fn parse_directives(text: &str) -> Result<Fixture, String> {
    let mut fixture = Fixture::default();
    for (index, line) in text.lines().enumerate() {
        let Some(comment) = comment_of(line) else {
            continue;
        };
        apply_directive(&mut fixture, comment)
            .map_err(|message| format!("line {}: {message}", index + 1))?;
    }
    Ok(fixture)
}

/// The text after the first `#` that is not inside a `"..."` string.
/// String state is per line so one unterminated quote (say, in a syntax
/// error fixture) cannot hide the directives below it.
fn comment_of(line: &str) -> Option<&str> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '#' {
            return Some(&line[i + 1..]);
        }
    }
    None
}

/// Applies the directive in one comment, if it holds one.
fn apply_directive(fixture: &mut Fixture, comment: &str) -> Result<(), String> {
    let Some((key, raw_value)) = split_directive(comment) else {
        return Ok(());
    };
    let text = directive_text(raw_value);
    let word = raw_value.trim();
    match key {
        "expect" => fixture.push_line(text),
        "expect-unordered" => fixture.push_unordered(text),
        "expect-error" => set_once(&mut fixture.expect_error, key, non_empty(key, word)?)?,
        "expect-exit" => set_once(&mut fixture.expect_exit, key, parse_exit(word)?)?,
        "expect-stderr" => fixture.expect_stderr.push(non_empty(key, word)?),
        "timeout" => fixture.timeout = parse_timeout(word)?,
        "args" => fixture.args = word.split_whitespace().map(str::to_string).collect(),
        _ => return Err(format!("unknown directive `{key}:`")),
    }
    Ok(())
}

/// Splits `key: value` when the comment starts with a directive-looking key.
/// Ordinary prose comments ("# note: ...") are left alone; any `expect...:`
/// key is treated as a directive so misspellings are reported.
fn split_directive(comment: &str) -> Option<(&str, &str)> {
    let (key, value) = comment.trim_start().split_once(':')?;
    let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    let is_directive = key.starts_with("expect") || key == "timeout" || key == "args";
    (is_key && is_directive).then_some((key, value))
}

/// Expected text: one separating space dropped, trailing whitespace trimmed,
/// so `# expect:   x` can still expect an indented line.
fn directive_text(raw: &str) -> String {
    let without_space = raw
        .strip_prefix(' ')
        .or_else(|| raw.strip_prefix('\t'))
        .unwrap_or(raw);
    without_space.trim_end().to_string()
}

fn non_empty(key: &str, word: &str) -> Result<String, String> {
    if word.is_empty() {
        return Err(format!("`{key}:` needs a value"));
    }
    Ok(word.to_string())
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("`{key}:` given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_exit(word: &str) -> Result<i32, String> {
    word.parse()
        .map_err(|_| format!("`expect-exit: {word}` is not an exit code"))
}

fn parse_timeout(word: &str) -> Result<Duration, String> {
    let bad = || format!("`timeout: {word}` is not a positive number of seconds");
    let seconds: f64 = word.parse().map_err(|_| bad())?;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

// ---------------------------------------------------------------------------
// Running a process
// ---------------------------------------------------------------------------

/// What one finished (or killed) subprocess did.
#[derive(Debug)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    /// The exit status; after a timeout, the status of the killed process.
    pub status: ExitStatus,
    pub timed_out: bool,
    pub duration: Duration,
}

/// Runs `command` with stdin null and stdout/stderr captured, in its own
/// process group. After `timeout` the whole group is killed. Whatever the
/// outcome, the group is killed once the main process has exited (so stray
/// grandchildren cannot hold the pipes open) and the child is reaped.
pub fn run_captured(command: &mut Command, timeout: Duration) -> io::Result<Captured> {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let stdout_reader = spawn_reader(child.stdout.take());
    let stderr_reader = spawn_reader(child.stderr.take());
    let timed_out = !wait_for_exit(&child, start + timeout);
    kill_group(&child);
    let status = child.wait()?;
    Ok(Captured {
        stdout: join_reader(stdout_reader),
        stderr: join_reader(stderr_reader),
        status,
        timed_out,
        duration: start.elapsed(),
    })
}

/// Reads a pipe to its end on a thread; both pipes are drained at once so a
/// child filling one of them cannot deadlock against us.
fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let room = CAPTURE_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
        kept
    })
}

fn join_reader(reader: thread::JoinHandle<Vec<u8>>) -> String {
    let bytes = reader.join().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Polls until the child has exited (true) or the deadline passed (false).
/// Uses `WNOWAIT` so the child stays unreaped: its pid, which is also the
/// process group id, cannot be reused before we kill the group.
fn wait_for_exit(child: &Child, deadline: Instant) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        if has_exited(child) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn has_exited(child: &Child) -> bool {
    // SAFETY: waitid only writes into `info`, which is a plain C struct.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        let rc = libc::waitid(libc::P_PID, child.id(), &mut info, flags);
        // An error (e.g. ECHILD) also ends the wait; `wait()` then reports it.
        rc != 0 || info.si_pid() != 0
    }
}

fn kill_group(child: &Child) {
    let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: plain syscall; the group id is our unreaped child's pid.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// "exit code 1" or "killed by signal 9".
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown exit status".to_string(),
    }
}

// ---------------------------------------------------------------------------
// Checking one fixture
// ---------------------------------------------------------------------------

/// The result of running one fixture.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub passed: bool,
    /// Empty when passed; otherwise what went wrong, ready to print.
    pub report: String,
    pub duration: Duration,
}

/// Parses `path`'s directives, runs `conc_exe path args...`, checks it.
pub fn run_fixture(path: &Path, conc_exe: &Path) -> Outcome {
    let start = Instant::now();
    let problems = match load_and_run(path, conc_exe) {
        Ok(problems) => problems,
        Err(message) => message,
    };
    Outcome {
        passed: problems.is_empty(),
        report: problems,
        duration: start.elapsed(),
    }
}

/// Ok(report) where an empty report means pass; Err for a fixture that
/// could not even be run.
fn load_and_run(path: &Path, conc_exe: &Path) -> Result<String, String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("  cannot read {}: {e}\n", path.display()))?;
    let fixture = parse_directives(&source).map_err(|e| format!("  bad directive, {e}\n"))?;
    let mut command = Command::new(conc_exe);
    command.arg(path).args(&fixture.args);
    let run = run_captured(&mut command, fixture.timeout)
        .map_err(|e| format!("  cannot run {}: {e}\n", conc_exe.display()))?;
    Ok(check_run(&fixture, &run))
}

/// Compares a finished run with the fixture; returns the report of
/// everything that failed (empty if it passed).
pub fn check_run(fixture: &Fixture, run: &Captured) -> String {
    let mut failures = Vec::new();
    let actual_lines = stdout_lines(&run.stdout);
    let stdout_ok = !fixture.checks_stdout() || stdout_matches(&fixture.stdout, &actual_lines);
    if run.timed_out {
        failures.push(format!(
            "timed out after {} s",
            fixture.timeout.as_secs_f64()
        ));
    } else {
        failures.extend(exit_failure(fixture, &run.status));
        failures.extend(stderr_failures(fixture, &run.stderr));
    }
    if !stdout_ok {
        failures.push("stdout differs".to_string());
    }
    if failures.is_empty() {
        return String::new();
    }
    render_report(fixture, run, &failures, &actual_lines, stdout_ok)
}

fn exit_failure(fixture: &Fixture, status: &ExitStatus) -> Option<String> {
    let expected = fixture.expected_exit();
    (status.code() != Some(expected)).then(|| {
        format!(
            "expected exit code {expected}, got {}",
            describe_status(status)
        )
    })
}

fn stderr_failures(fixture: &Fixture, stderr: &str) -> Vec<String> {
    let kind = fixture.expect_error.iter().map(|k| ("error kind", k));
    let texts = fixture.expect_stderr.iter().map(|t| ("text", t));
    kind.chain(texts)
        .filter(|(_, wanted)| !stderr.contains(wanted.as_str()))
        .map(|(what, wanted)| format!("expected stderr to contain {what} `{wanted}`"))
        .collect()
}

fn render_report(
    fixture: &Fixture,
    run: &Captured,
    failures: &[String],
    actual_lines: &[String],
    stdout_ok: bool,
) -> String {
    let mut report = String::new();
    for failure in failures {
        let _ = writeln!(report, "  {failure}");
    }
    let _ = writeln!(report, "  process: {}", describe_status(&run.status));
    if fixture.checks_stdout() && !stdout_ok {
        let expected = expected_view(&fixture.stdout, actual_lines);
        let _ = writeln!(report, "  stdout (- expected, + actual):");
        report.push_str(&indent(
            &render_diff(&diff_lines(&expected, actual_lines)),
            "    ",
        ));
    } else if !run.stdout.is_empty() {
        let _ = writeln!(report, "  stdout:");
        report.push_str(&indent(
            &truncate_lines(&run.stdout, DIFF_MAX_LINES),
            "    | ",
        ));
    }
    if !run.stderr.is_empty() {
        let _ = writeln!(report, "  stderr:");
        report.push_str(&indent(
            &truncate_lines(&run.stderr, STDERR_REPORT_LINES),
            "    | ",
        ));
    }
    report
}

/// Stdout as compared: lines with trailing whitespace (and `\r`) trimmed;
/// a final newline does not make an extra empty line.
pub fn stdout_lines(raw: &str) -> Vec<String> {
    raw.lines()
        .map(|line| line.trim_end().to_string())
        .collect()
}

/// True when `actual` is exactly the expected lines, each unordered group
/// matching the same number of lines at its position as a multiset.
pub fn stdout_matches(blocks: &[StdoutBlock], actual: &[String]) -> bool {
    let mut position = 0;
    for block in blocks {
        let wanted: &[String] = match block {
            StdoutBlock::Line(line) => std::slice::from_ref(line),
            StdoutBlock::Unordered(group) => group,
        };
        let end = position + wanted.len();
        let Some(window) = actual.get(position..end) else {
            return false;
        };
        if !same_multiset(wanted, window) {
            return false;
        }
        position = end;
    }
    position == actual.len()
}

fn same_multiset(a: &[String], b: &[String]) -> bool {
    let mut counts: HashMap<&str, isize> = HashMap::new();
    for line in a {
        *counts.entry(line).or_default() += 1;
    }
    for line in b {
        *counts.entry(line).or_default() -= 1;
    }
    a.len() == b.len() && counts.values().all(|&n| n == 0)
}

/// The expected lines flattened for the diff. Each unordered group is laid
/// out in the order its lines appear in the matching stretch of actual
/// output, so a correct group in another order shows no difference.
pub fn expected_view(blocks: &[StdoutBlock], actual: &[String]) -> Vec<String> {
    let mut view = Vec::new();
    let mut position = 0;
    for block in blocks {
        match block {
            StdoutBlock::Line(line) => view.push(line.clone()),
            StdoutBlock::Unordered(group) => {
                let end = (position + group.len()).min(actual.len());
                let window = actual.get(position..end).unwrap_or(&[]);
                view.extend(order_like(group, window));
            }
        }
        position += match block {
            StdoutBlock::Line(_) => 1,
            StdoutBlock::Unordered(group) => group.len(),
        };
    }
    view
}

/// `group` reordered to follow `window`; lines not found go last.
fn order_like(group: &[String], window: &[String]) -> Vec<String> {
    let mut remaining: Vec<&String> = group.iter().collect();
    let mut ordered = Vec::with_capacity(group.len());
    for line in window {
        if let Some(at) = remaining.iter().position(|r| *r == line) {
            ordered.push(remaining.remove(at).clone());
        }
    }
    ordered.extend(remaining.into_iter().cloned());
    ordered
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

fn truncate_lines(text: &str, limit: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut shown = lines[..lines.len().min(limit)].join("\n");
    if lines.len() > limit {
        let _ = write!(shown, "\n... ({} more lines)", lines.len() - limit);
    }
    shown
}

// ---------------------------------------------------------------------------
// Line diff
// ---------------------------------------------------------------------------

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    Same(String),
    /// Expected but missing.
    Removed(String),
    /// Printed but not expected.
    Added(String),
}

/// A longest-common-subsequence line diff of `expected` against `actual`.
pub fn diff_lines(expected: &[String], actual: &[String]) -> Vec<DiffLine> {
    let prefix = common_prefix(expected, actual);
    let (expected_rest, actual_rest) = (&expected[prefix..], &actual[prefix..]);
    let suffix = common_suffix(expected_rest, actual_rest);
    let expected_mid = &expected_rest[..expected_rest.len() - suffix];
    let actual_mid = &actual_rest[..actual_rest.len() - suffix];

    let mut diff: Vec<DiffLine> = expected[..prefix]
        .iter()
        .cloned()
        .map(DiffLine::Same)
        .collect();
    diff.extend(diff_middle(expected_mid, actual_mid));
    let tail = &expected_rest[expected_rest.len() - suffix..];
    diff.extend(tail.iter().cloned().map(DiffLine::Same));
    diff
}

fn common_prefix(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[String], b: &[String]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// LCS over what differs; huge inputs skip the quadratic table.
fn diff_middle(a: &[String], b: &[String]) -> Vec<DiffLine> {
    if a.len().saturating_mul(b.len()) > DIFF_MAX_CELLS {
        let removed = a.iter().cloned().map(DiffLine::Removed);
        return removed
            .chain(b.iter().cloned().map(DiffLine::Added))
            .collect();
    }
    let width = b.len() + 1;
    // lcs[i * width + j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut diff = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            diff.push(DiffLine::Same(a[i].clone()));
            (i, j) = (i + 1, j + 1);
        } else if j == b.len()
            || (i < a.len() && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
        {
            diff.push(DiffLine::Removed(a[i].clone()));
            i += 1;
        } else {
            diff.push(DiffLine::Added(b[j].clone()));
            j += 1;
        }
    }
    diff
}

/// `- ` expected, `+ ` actual, `  ` both; unchanged stretches far from any
/// change are folded to `...`.
pub fn render_diff(diff: &[DiffLine]) -> String {
    let changed: Vec<usize> = (0..diff.len())
        .filter(|&i| !matches!(diff[i], DiffLine::Same(_)))
        .collect();
    let near_change = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= DIFF_CONTEXT);
    let mut out = String::new();
    let mut shown = 0;
    let mut folded = false;
    for (i, line) in diff.iter().enumerate() {
        if !near_change(i) {
            if !folded {
                out.push_str("  ...\n");
                folded = true;
            }
            continue;
        }
        folded = false;
        if shown == DIFF_MAX_LINES {
            let _ = writeln!(out, "  ... (diff cut after {DIFF_MAX_LINES} lines)");
            break;
        }
        shown += 1;
        let (mark, text) = match line {
            DiffLine::Same(t) => (' ', t),
            DiffLine::Removed(t) => ('-', t),
            DiffLine::Added(t) => ('+', t),
        };
        let _ = writeln!(out, "{mark} {text}");
    }
    if diff.is_empty() {
        out.push_str("  (no output)\n");
    }
    out
}

// ---------------------------------------------------------------------------
// Running many fixtures
// ---------------------------------------------------------------------------

/// Expands folders (recursively) to their `.conc` files, sorted; plain file
/// paths are kept as given, in order.
pub fn expand_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_conc_files(path, &mut found);
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
}

fn collect_conc_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_conc_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "conc") {
            found.push(path);
        }
    }
}

/// Runs every fixture under `paths` on a few worker threads, prints
/// `PASS name (0.12s)` or `FAIL name` and its report for each in a stable
/// order, then `N passed, N failed`. Returns (passed, failed).
pub fn run_all(paths: &[PathBuf], conc_exe: &Path, out: &mut dyn Write) -> (usize, usize) {
    let files = expand_paths(paths);
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let (mut passed, mut failed) = (0, 0);
    thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (files, next) = (&files, &next);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(index) else {
                    break;
                };
                if sender.send((index, run_fixture(path, conc_exe))).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        let mut printer = OrderedPrinter::new(&files, out);
        for (index, outcome) in receiver {
            if outcome.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            printer.add(index, outcome);
        }
    });
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    (passed, failed)
}

/// Prints outcomes in file order as soon as all earlier ones are in.
struct OrderedPrinter<'a> {
    files: &'a [PathBuf],
    out: &'a mut dyn Write,
    pending: HashMap<usize, Outcome>,
    next: usize,
}

impl<'a> OrderedPrinter<'a> {
    fn new(files: &'a [PathBuf], out: &'a mut dyn Write) -> Self {
        OrderedPrinter {
            files,
            out,
            pending: HashMap::new(),
            next: 0,
        }
    }

    fn add(&mut self, index: usize, outcome: Outcome) {
        self.pending.insert(index, outcome);
        while let Some(outcome) = self.pending.remove(&self.next) {
            print_outcome(self.out, &self.files[self.next], &outcome);
            self.next += 1;
        }
    }
}

fn print_outcome(out: &mut dyn Write, path: &Path, outcome: &Outcome) {
    let name = path.display();
    let _ = if outcome.passed {
        writeln!(out, "PASS {name} ({:.2}s)", outcome.duration.as_secs_f64())
    } else {
        writeln!(out, "FAIL {name}\n{}", outcome.report.trim_end())
    };
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_whole_line_and_trailing_directives() {
        let fixture = parse_directives("# expect: 1\nprint(2)  # expect: 2  \n").unwrap();
        assert_eq!(
            fixture.stdout,
            vec![StdoutBlock::Line("1".into()), StdoutBlock::Line("2".into())]
        );
    }

    #[test]
    fn ignores_hash_inside_strings() {
        let source = r##"print("# expect: no", "a\"#b")  # expect: # yes"##;
        let fixture = parse_directives(source).unwrap();
        assert_eq!(fixture.stdout, vec![StdoutBlock::Line("# yes".into())]);
    }

    #[test]
    fn keeps_indent_after_one_space_and_allows_empty_line() {
        let fixture = parse_directives("#expect:   x\n# expect:\n").unwrap();
        assert_eq!(
            fixture.stdout,
            vec![
                StdoutBlock::Line("  x".into()),
                StdoutBlock::Line("".into())
            ]
        );
    }

    #[test]
    fn groups_consecutive_unordered_lines() {
        let source = "# expect-unordered: a\nx()\n# expect-unordered: b\n# expect: c\n\
                      # expect-unordered: d\n";
        let fixture = parse_directives(source).unwrap();
        assert_eq!(
            fixture.stdout,
            vec![
                StdoutBlock::Unordered(lines(&["a", "b"])),
                StdoutBlock::Line("c".into()),
                StdoutBlock::Unordered(lines(&["d"])),
            ]
        );
    }

    #[test]
    fn reads_error_exit_stderr_timeout_args() {
        let source = "# expect-error: TypeError\n# expect-exit: 3\n# expect-stderr: a b\n\
                      # expect-stderr: c\n# timeout: 0.5\n# args: x  y\n";
        let fixture = parse_directives(source).unwrap();
        assert_eq!(fixture.expect_error.as_deref(), Some("TypeError"));
        assert_eq!(fixture.expected_exit(), 3);
        assert_eq!(fixture.expect_stderr, lines(&["a b", "c"]));
        assert_eq!(fixture.timeout, Duration::from_millis(500));
        assert_eq!(fixture.args, lines(&["x", "y"]));
        assert!(!fixture.checks_stdout());
    }

    #[test]
    fn expected_exit_defaults() {
        assert_eq!(parse_directives("").unwrap().expected_exit(), 0);
        let error = parse_directives("# expect-error: Timeout").unwrap();
        assert_eq!(error.expected_exit(), 1);
    }

    #[test]
    fn bad_directives_name_their_line() {
        let error = parse_directives("print(1)\n# expect-exit: abc\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(parse_directives("# expect-eror: X").is_err());
        assert!(parse_directives("# timeout: -1").is_err());
        assert!(parse_directives("# expect-exit: 1\n# expect-exit: 2").is_err());
    }

    #[test]
    fn prose_comments_are_not_directives() {
        let fixture = parse_directives("# note: this is fine\n# Expect nothing: ok\n").unwrap();
        assert_eq!(fixture, Fixture::default());
    }

    #[test]
    fn stdout_lines_trim_and_drop_final_newline() {
        assert_eq!(stdout_lines("a \r\nb\n\n"), lines(&["a", "b", ""]));
        assert_eq!(stdout_lines(""), Vec::<String>::new());
    }

    #[test]
    fn unordered_groups_match_in_any_order_at_their_place() {
        let blocks = vec![
            StdoutBlock::Line("start".into()),
            StdoutBlock::Unordered(lines(&["a", "b", "a"])),
            StdoutBlock::Line("end".into()),
        ];
        assert!(stdout_matches(
            &blocks,
            &lines(&["start", "a", "a", "b", "end"])
        ));
        assert!(!stdout_matches(
            &blocks,
            &lines(&["start", "a", "b", "b", "end"])
        ));
        assert!(!stdout_matches(
            &blocks,
            &lines(&["a", "start", "a", "b", "end"])
        ));
        assert!(!stdout_matches(
            &blocks,
            &lines(&["start", "a", "a", "b", "end", "x"])
        ));
    }

    #[test]
    fn expected_view_follows_actual_order() {
        let blocks = vec![StdoutBlock::Unordered(lines(&["a", "b", "c"]))];
        let view = expected_view(&blocks, &lines(&["c", "x", "a"]));
        assert_eq!(view, lines(&["c", "a", "b"]));
    }

    #[test]
    fn diff_marks_removed_and_added_lines() {
        let diff = diff_lines(&lines(&["1", "2", "3", "4"]), &lines(&["1", "3", "4", "5"]));
        assert_eq!(
            diff,
            vec![
                DiffLine::Same("1".into()),
                DiffLine::Removed("2".into()),
                DiffLine::Same("3".into()),
                DiffLine::Same("4".into()),
                DiffLine::Added("5".into()),
            ]
        );
    }

    #[test]
    fn diff_folds_far_context() {
        let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let mut actual = expected.clone();
        actual[10] = "ten".into();
        let text = render_diff(&diff_lines(&expected, &actual));
        assert_eq!(
            text,
            "  ...\n  7\n  8\n  9\n- 10\n+ ten\n  11\n  12\n  13\n  ...\n"
        );
    }

    #[test]
    fn huge_diffs_skip_the_table() {
        let a: Vec<String> = (0..3000).map(|i| format!("a{i}")).collect();
        let b: Vec<String> = (0..3000).map(|i| format!("b{i}")).collect();
        assert_eq!(diff_lines(&a, &b).len(), 6000);
    }

    /// Runs `script` as a fixture with `/bin/sh` standing in for `conc`
    /// (directives are `#` comments in sh too). Nothing is written and then
    /// executed, which avoids ETXTBSY races with tests forking in parallel.
    fn run_as_shell_fixture(script: &str) -> Outcome {
        static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("conc-fixture-test-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("case.conc");
        std::fs::write(&file, script).unwrap();
        let outcome = run_fixture(&file, Path::new("/bin/sh"));
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }

    #[test]
    fn passing_run() {
        let outcome = run_as_shell_fixture(
            "# expect: start\n# expect-unordered: a\n# expect-unordered: b\n\
             # expect-exit: 3\n# expect-stderr: hello\n# args: hello\n\
             echo start; echo b; echo a; echo \"$1\" >&2; exit 3\n",
        );
        assert!(outcome.passed, "{}", outcome.report);
    }

    #[test]
    fn failing_run_reports_diff_exit_and_stderr() {
        let outcome = run_as_shell_fixture(
            "# expect: 1\n# expect: 2\n# expect-error: TypeError\n\
             echo 1; echo 3; echo TypeErr >&2; exit 1\n",
        );
        assert!(!outcome.passed);
        let report = &outcome.report;
        assert!(report.contains("- 2\n    + 3"), "{report}");
        assert!(report.contains("error kind `TypeError`"), "{report}");
        assert!(report.contains("| TypeErr"), "{report}");
        assert!(!report.contains("expected exit code"), "{report}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let outcome = run_as_shell_fixture("# timeout: 0.3\nsleep 30 & sleep 30; echo late\n");
        assert!(!outcome.passed);
        assert!(
            outcome.report.contains("timed out after 0.3 s"),
            "{}",
            outcome.report
        );
        assert!(outcome.duration < Duration::from_secs(5));
    }

    #[test]
    fn run_all_prints_in_order_and_counts() {
        let dir = std::env::temp_dir().join(format!("conc-run-all-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.conc"), "# expect: no\n").unwrap();
        std::fs::write(dir.join("sub/a.conc"), "").unwrap();
        std::fs::write(dir.join("a.conc"), "").unwrap();
        std::fs::write(dir.join("skip.txt"), "").unwrap();
        let mut out = Vec::new();
        let counts = run_all(std::slice::from_ref(&dir), Path::new("/bin/true"), &mut out);
        let text = String::from_utf8(out).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(counts, (2, 1));
        let heads: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
            .collect();
        let root = dir.display();
        assert!(
            heads[0].starts_with(&format!("PASS {root}/a.conc (")),
            "{text}"
        );
        assert_eq!(heads[1], format!("FAIL {root}/b.conc"));
        assert!(
            heads[2].starts_with(&format!("PASS {root}/sub/a.conc (")),
            "{text}"
        );
        assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");
    }
}
