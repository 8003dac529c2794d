//! Child processes never outlive a run: not after an error, not when the
//! parent is killed, not after Ctrl-C. Each script prints its children's
//! pids; the test checks that every one of them is gone afterwards.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
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
    // SIGKILL to the parent alone: it cannot clean up, its children must notice.
    child.kill().expect("kill");
    let _ = child.wait();
    assert_all_gone(&pids);
}

#[test]
fn ctrl_c_ends_parent_and_children() {
    let mut child = start(&format!("{}sleep(60)\n", SPAWN_SLEEPERS));
    let pids = child_pids(&mut child);
    // What a terminal does on Ctrl-C: SIGINT to the foreground process group.
    signal_group(&child, libc::SIGINT);
    let status = child.wait().expect("conc exits");
    assert!(!status.success());
    assert_all_gone(&pids);
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
