//! `--trace FILE.json` writes Chrome Trace Event JSON: every file it writes
//! is checked against the format (required fields, named threads, flow
//! arrows that pair up, slices that nest), for a script of each kind, on
//! both engines (virtual time under `--sched`, real time without).

#[path = "support/chrome.rs"]
mod chrome;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn trace_of(script: &str, schedule: Option<&str>) -> (Vec<Value>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_file = std::env::temp_dir().join(format!(
        "conc-trace-{}-{}.json",
        std::process::id(),
        script.replace('/', "_")
    ));
    let mut conc = Command::new(env!("CARGO_BIN_EXE_conc"));
    if let Some(schedule) = schedule {
        conc.args(["--sched", schedule, "--lanes"]);
    }
    let out = conc
        .arg("--trace")
        .arg(&out_file)
        .arg(root.join(script))
        .output()
        .expect("conc runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).expect("the trace was written");
    let _ = std::fs::remove_file(&out_file);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{script}: {e}"));
    let events = doc["traceEvents"].as_array().cloned().expect("traceEvents");
    (events, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn check(script: &str, want_flows: &[&str]) {
    check_on(script, Some("random:3"), want_flows);
    check_on(script, None, want_flows);
}

fn check_on(script: &str, schedule: Option<&str>, want_flows: &[&str]) {
    let (events, lanes) = trace_of(script, schedule);
    let script = &format!("{script} ({})", schedule.unwrap_or("os"));
    let flow_names = chrome::validate(&events, script);
    for want in want_flows {
        assert!(
            flow_names.iter().any(|n| n == want),
            "{script}: no `{want}` flow in {flow_names:?}"
        );
    }
    if schedule.is_some() {
        assert!(
            lanes.lines().count() > 2,
            "{script}: no lanes drawn:\n{lanes}"
        );
    }
}

#[test]
fn queues_locks_threads_and_conditions_give_valid_traces() {
    check(
        "scripts/15_producer_consumer.conc",
        &["spawn", "end -> join", "put -> get"],
    );
    check(
        "scripts/03_mutex_fix.conc",
        &["spawn", "end -> join", "release -> acquire"],
    );
    check("scripts/01_start_join.conc", &["spawn", "end -> join"]);
    check("scripts/17_condition.conc", &["spawn"]);
}

#[test]
fn lanes_fit_80_columns_for_four_threads() {
    let (_, lanes) = trace_of(
        "tests/fixtures/explore/lost_update_3x1.conc",
        Some("random:1"),
    );
    for line in lanes.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
}

#[test]
fn os_traces_merge_the_processes() {
    six_processes_named(None);
}

#[test]
fn controlled_traces_show_the_simulated_processes() {
    six_processes_named(Some("random:3"));
}

fn six_processes_named(schedule: Option<&str>) {
    let script = "scripts/29_process_producer_consumer.conc";
    check_on(script, schedule, &[]);
    let (events, _) = trace_of(script, schedule);
    let mut processes = Vec::new();
    let mut thread_pids = Vec::new();
    for e in &events {
        match (e["ph"].as_str(), e["name"].as_str()) {
            (Some("M"), Some("process_name")) => processes.push(e["pid"].as_u64()),
            (Some("M"), Some("thread_name")) => thread_pids.push(e["pid"].as_u64()),
            _ => {}
        }
    }
    // The parent, two producers and three consumers, each with its steps.
    assert_eq!(processes.len(), 6, "{processes:?}");
    for pid in &processes {
        assert!(thread_pids.contains(pid), "process {pid:?} has no thread");
    }
    for pid in &thread_pids {
        assert!(processes.contains(pid), "a thread of an unnamed process");
    }
}

#[test]
fn lanes_of_a_run_on_real_threads() {
    let out = Command::new(env!("CARGO_BIN_EXE_conc"))
        .args([
            "--lanes",
            "-c",
            "let q = queue()\nlet t = spawn { put q, 1 } named \"feeder\"\nprint(get q)\njoin t",
        ])
        .output()
        .expect("conc runs");
    assert_eq!(out.status.code(), Some(0));
    let lanes = String::from_utf8_lossy(&out.stderr);
    let header = lanes.lines().next().unwrap_or_default();
    assert!(
        header.contains("main") && header.contains("feeder"),
        "{lanes}"
    );
    assert!(lanes.contains("put L2"), "{lanes}");
    assert!(lanes.contains("get L3"), "{lanes}");
    assert!(lanes.lines().all(|l| l.chars().count() <= 80), "{lanes}");
}

#[test]
fn os_traces_are_on_the_real_clock() {
    // Two sleeps of 20 ms: the trace's span covers them, and each shows
    // as a wait of about that long.
    let (events, _) = trace_of("tests/fixtures/threads/sleep_in_threads_traced.conc", None);
    let waits: Vec<f64> = events
        .iter()
        .filter(|e| e["cat"] == "wait")
        .map(|e| e["dur"].as_f64().expect("dur"))
        .collect();
    assert!(
        waits.iter().filter(|d| **d >= 15_000.0).count() >= 2,
        "waits {waits:?}"
    );
}

/// A child's `put` on its parent's queue and the parent's `get` name one
/// queue in the merged trace (the child names it by the parent's id): the
/// flow crosses from the child's pid to the parent's.
#[test]
fn os_traces_draw_flows_across_processes() {
    let script = "tests/fixtures/processes/process_feeds_parent.conc";
    let (events, _) = trace_of(script, None);
    chrome::validate(&events, script);
    let mut starts = std::collections::HashMap::new();
    for e in &events {
        if e["ph"] == "s" {
            starts.insert(e["id"].as_u64(), (e["name"].clone(), e["pid"].as_u64()));
        }
    }
    let crossing = |name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == "f")
            .filter(|e| {
                starts
                    .get(&e["id"].as_u64())
                    .is_some_and(|(n, pid)| n == name && *pid != e["pid"].as_u64())
            })
            .count()
    };
    assert_eq!(crossing("put -> get"), 3, "every item from the child");
    assert_eq!(crossing("release -> acquire"), 1);
}
