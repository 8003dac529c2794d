//! Child processes never outlive a run: not after an error, not when the
//! parent is killed, not after Ctrl-C. Each script prints its children's
//! pids; the test checks that every one of them is gone afterwards.

use std::io::{BufRead, BufReader, Lines};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Two ordinary children and a daemon, all sleeping; their pids, one per line.
const SPAWN_SLEEPERS: &str = "fn nap() { sleep(60) }
let ps = [spawn process nap(), spawn process nap(), spawn daemon process nap()]
for p in ps { print(p.pid) }
print(\"ready\")
";

fn start(script: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_conc"))
        .args(["-c", script])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, as a shell gives a foreground job.
        .process_group(0)
        .spawn()
        .expect("conc starts")
}

/// Read pid lines until "ready", then keep reading what follows: a reader
/// that went away would end the run by SIGPIPE at its next `print`.
fn child_pids(child: &mut Child) -> Vec<i32> {
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    let mut pids = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("utf-8 output");
        if line == "ready" {
            break;
        }
        pids.push(line.trim().parse().expect("a pid"));
    }
    assert_eq!(pids.len(), 3, "three children started");
    std::thread::spawn(move || lines.for_each(drop));
    pids
}

/// Alive and not a zombie (a zombie's /proc stat has state Z).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Generous bound: children notice a dead parent at once, but CI is slow.
fn assert_all_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().any(|p| running(*p)) {
        assert!(
            Instant::now() < deadline,
            "children still running: {:?}",
            pids.iter().filter(|p| running(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every process `pid` has started and not yet reaped: its children, the
/// spawner they are cloned from among them.
fn children_of(pid: u32) -> Vec<i32> {
    let mut all = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
    {
        let Ok(task) = task else { continue };
        let listed = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        all.extend(
            listed
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    all
}

fn signal_group(child: &Child, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(-(child.id() as i32), signal);
    }
}

#[test]
fn children_are_stopped_when_the_script_fails() {
    let mut child = start(&format!(
        "{}raise error(\"ValueError\", \"boom\")\n",
        SPAWN_SLEEPERS
    ));
    let pids = child_pids(&mut child);
    let status = child.wait().expect("conc exits");
    assert_eq!(status.code(), Some(1));
    // Stopped and reaped before the parent exited: gone right away.
    assert!(pids.iter().all(|p| !running(*p)), "{:?}", pids);
}

#[test]
fn children_die_with_a_killed_parent() {
    let mut child = start(&format!("{}sleep(60)\n", SPAWN_SLEEPERS));
    let pids = child_pids(&mut child);
    assert!(pids.iter().all(|p| running(*p)));
    let started = children_of(child.id());
    assert!(started.len() > pids.len(), "the spawner too: {started:?}");
    // SIGKILL to the parent alone: it cannot clean up, its children (and
    // the spawner) must notice.
    child.kill().expect("kill");
    let _ = child.wait();
    assert_all_gone(&started);
}

#[test]
fn ctrl_c_ends_parent_and_children() {
    let mut child = start(&format!("{}sleep(60)\n", SPAWN_SLEEPERS));
    child_pids(&mut child);
    let started = children_of(child.id());
    // What a terminal does on Ctrl-C: SIGINT to the foreground process group.
    signal_group(&child, libc::SIGINT);
    let status = child.wait().expect("conc exits");
    assert!(!status.success());
    assert_all_gone(&started);
}

#[test]
fn daemon_children_are_stopped_at_the_end() {
    let mut child = start(&format!(
        "{}ps[0].terminate(); ps[1].terminate()\nprint(\"end\")\n",
        SPAWN_SLEEPERS
    ));
    let pids = child_pids(&mut child);
    let status = child.wait().expect("conc exits");
    assert_eq!(status.code(), Some(0));
    assert!(pids.iter().all(|p| !running(*p)), "{:?}", pids);
}

/// A pool worker's process killed during a job: that job fails with a
/// ProcessError at once (no polling), the worker gets a new process, and
/// the next job runs there.
#[test]
fn pool_worker_killed_during_a_job_is_replaced() {
    let mut child = start(
        "fn stuck() { print(getpid()); sleep(60) }
fn fine() { return getpid() }
let p = process_pool(1)
let f = p.submit(stuck)
try { join f } catch e { print(e.kind, e.message) }
print(\"next\", join p.submit(fine))
",
    );
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut next_line = || lines.next().expect("a line").expect("utf-8 output");
    let pid: i32 = next_line().trim().parse().expect("a pid");
    let started = Instant::now();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let failed = next_line();
    assert!(
        failed.starts_with("ProcessError") && failed.contains("died during this job"),
        "{failed}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the job's failure took {:?}",
        started.elapsed()
    );
    let next = next_line();
    let new_pid: i32 = next
        .strip_prefix("next ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{next}"));
    assert_ne!(new_pid, pid);
    assert_eq!(child.wait().expect("conc exits").code(), Some(0));
}

/// A child is cloned from the spawner, or started by exec when CONC_EXE
/// names the binary: the script sees the same either way (its child's
/// parent is the script's process), and at the end nothing is left, the
/// spawner included.
#[test]
fn children_from_the_spawner_and_from_exec_are_the_same() {
    for exec in [false, true] {
        let go =
            std::env::temp_dir().join(format!("conc-spawner-go-{}-{exec}", std::process::id()));
        let _ = std::fs::remove_file(&go);
        // The child waits for the file the test writes once it has looked.
        let script = format!(
            "{}let p = spawn process wait_go()\n\
             print(\"ready\")\n\
             print(join p == getpid(), p.exitcode)\n",
            wait_go(&go)
        );
        let (mut conc, mut lines) = run_c(&script, exec);
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        let started = children_of(conc.id());
        // The child, and with no CONC_EXE the spawner; each the run's own.
        assert_eq!(started.len(), if exec { 1 } else { 2 }, "{started:?}");
        std::fs::write(&go, "go").expect("the go file");
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = conc.wait().expect("conc ends");
        let _ = std::fs::remove_file(&go);
        assert_eq!(rest, ["true 0"], "exec: {exec}");
        assert_eq!(status.code(), Some(0));
        assert!(
            started.iter().all(|p| !running(*p)),
            "left behind: {started:?}"
        );
    }
}

/// `conc -c script`, its output read line by line; `exec`: with CONC_EXE
/// set, so every child is started by exec (no spawner).
fn run_c(script: &str, exec: bool) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conc"));
    cmd.args(["-c", script])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if exec {
        cmd.env("CONC_EXE", env!("CARGO_BIN_EXE_conc"));
    }
    let mut conc = cmd.spawn().expect("conc starts");
    let lines = BufReader::new(conc.stdout.take().expect("stdout")).lines();
    (conc, lines)
}

/// `wait_go()`: waits for the file `go` (the test writes it once it has
/// looked at the processes), then gives its parent's pid.
fn wait_go(go: &std::path::Path) -> String {
    format!(
        "fn wait_go() {{ while true {{ try {{ read_file({go:?}); return getppid() }} \
         catch {{ sleep(0.01) }} }} }}\n"
    )
}

/// A child that starts processes makes a spawner of its own: its children
/// are its own (their parent is the child), and at the end nothing of the
/// tree is left, the spawners included. With CONC_EXE set there is no
/// spawner at any level.
#[test]
fn a_child_clones_its_children_from_a_spawner_of_its_own() {
    for exec in [false, true] {
        let go =
            std::env::temp_dir().join(format!("conc-spawner-tree-{}-{exec}", std::process::id()));
        let _ = std::fs::remove_file(&go);
        let script = format!(
            "{}fn mid() {{ let p = spawn process wait_go(); print(\"mid\", getpid()); \
             return [join p == getpid(), getppid()] }}\n\
             let m = spawn process mid()\n\
             let r = join m\n\
             print(r[0], r[1] == getpid())\n",
            wait_go(&go)
        );
        let (mut conc, mut lines) = run_c(&script, exec);
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let mid: u32 = first
            .strip_prefix("mid ")
            .and_then(|p| p.parse().ok())
            .expect("the middle child's pid");
        let top = children_of(conc.id());
        let below = children_of(mid);
        // Each level: the child it started, and (without CONC_EXE) the
        // spawner it was cloned from.
        let each = if exec { 1 } else { 2 };
        assert_eq!((top.len(), below.len()), (each, each), "{top:?} {below:?}");
        std::fs::write(&go, "go").expect("the go file");
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = conc.wait().expect("conc ends");
        let _ = std::fs::remove_file(&go);
        assert_eq!(rest, ["true true"], "exec: {exec}");
        assert_eq!(status.code(), Some(0));
        let all: Vec<i32> = top.iter().chain(&below).copied().collect();
        assert!(all.iter().all(|p| !running(*p)), "left behind: {all:?}");
    }
}
