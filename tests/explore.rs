//! Exploration against plain enumeration: on small scripts, DPOR's outcome
//! set must equal the outcome set of enumerating schedules (dfs: every
//! schedule where that is small, else every schedule with at most three
//! preemptions, which reaches every outcome of these scripts), and random
//! sampling must never find an outcome DPOR missed.

use conc::explore::{explore, Coverage, How, Options, Outcome, Script};
use std::collections::BTreeSet;

const SCRIPTS: &[(&str, &str)] = &[
    (
        "lost update",
        "let x = 0\nfn inc() { x += 1 }\nlet a = spawn inc()\nlet b = spawn inc()\njoin a\njoin b\nprint(x)",
    ),
    (
        "locked update",
        "let x = 0\nlet m = lock()\nfn inc() { lock m { x += 1 } }\nlet a = spawn inc()\nlet b = spawn inc()\njoin a\njoin b\nprint(x)",
    ),
    (
        "prints from two threads",
        "fn say(w) { print(w) }\nlet a = spawn say(\"a\")\nlet b = spawn say(\"b\")\njoin a\njoin b",
    ),
    (
        "lock order deadlock",
        "let a = lock()\nlet b = lock()\nfn ab() { lock a { lock b { } } }\nfn ba() { lock b { lock a { } } }\nlet t = spawn ab()\nlet u = spawn ba()\njoin t\njoin u\nprint(\"done\")",
    ),
    (
        "queue hand-off",
        "let q = queue()\nfn producer() { put q, 1; put q, 2 }\nfn consumer() { return (get q) * 10 + (get q) }\nlet p = spawn producer()\nlet c = spawn consumer()\njoin p\nprint(join c)",
    ),
    (
        "event before or after the check",
        "let e = event()\nlet seen = nil\nfn setter() { e.set() }\nfn looker() { seen = e.is_set() }\nlet s = spawn setter()\nlet l = spawn looker()\njoin s\njoin l\nprint(seen)",
    ),
    (
        "shared list appends",
        "fn add(items, v) { items.append(v) }\nlet items = []\nlet a = spawn add(items, 1)\nlet b = spawn add(items, 2)\njoin a\njoin b\nprint(items)",
    ),
    (
        "captured variable",
        "fn main() {\n  let n = 0\n  let inc = fn() { n = n + 1 }\n  let a = spawn inc()\n  let b = spawn inc()\n  join a\n  join b\n  print(n)\n}\nmain()",
    ),
    (
        "check then act",
        "let made = 0\nlet ready = false\nfn init() { if not ready { made += 1; ready = true } }\nlet a = spawn init()\nlet b = spawn init()\njoin a\njoin b\nprint(made)",
    ),
    (
        "semaphore of one",
        "let s = semaphore(1)\nlet inside = 0\nlet most = 0\nfn work() { s.acquire(); inside += 1; if inside > most { most = inside }; inside -= 1; s.release() }\nlet a = spawn work()\nlet b = spawn work()\njoin a\njoin b\nprint(most)",
    ),
    (
        "two writers, one reader",
        "let x = 0\nfn w(v) { x = v }\nfn r() { return x }\nlet a = spawn w(1)\nlet b = spawn w(2)\nlet c = spawn r()\njoin a\njoin b\nprint(join c, x)",
    ),
    (
        "condition notify",
        "let c = condition()\nlet ready = false\nfn waiter() { lock c { while not ready { wait c } }; return \"woke\" }\nfn notifier() { lock c { ready = true; c.notify() } }\nlet w = spawn waiter()\nlet n = spawn notifier()\njoin n\nprint(join w)",
    ),
];

/// Scripts whose every schedule can be run in a test.
const SMALL: &[&str] = &[
    "lost update",
    "shared list appends",
    "captured variable",
    "event before or after the check",
];

fn outcomes(script: &Script, how: How) -> (BTreeSet<Outcome>, bool, u64) {
    let options = Options {
        how,
        all: true,
        show_failure: false,
        ..Options::default()
    };
    let report = explore(script, &options);
    let total = report.outcomes.values().sum();
    (
        report.outcomes.into_keys().collect(),
        report.coverage.exhaustive(),
        total,
    )
}

/// Sessions recurse on the OS stack: run `body` on a thread as big as the
/// CLI's main thread (a failed assertion in it fails the test).
fn on_a_big_stack(body: impl FnOnce() + Send + 'static) {
    let ran = std::thread::Builder::new()
        .stack_size(conc::runtime::threads::THREAD_STACK)
        .spawn(body)
        .expect("a thread for the sessions");
    assert!(ran.join().is_ok());
}

#[test]
fn dpor_finds_every_outcome_that_plain_enumeration_finds() {
    on_a_big_stack(|| {
        for (name, text) in SCRIPTS {
            let script = Script::new(format!("{name}.conc"), text.to_string(), Vec::new());
            let (dpor, dpor_done, classes) = outcomes(&script, How::Dpor);
            assert!(dpor_done, "{name}: DPOR not exhaustive");
            let bound = if SMALL.contains(name) { None } else { Some(3) };
            let (all, _, schedules) = outcomes(&script, How::Dfs { preemptions: bound });
            let labels = |s: &BTreeSet<Outcome>| s.iter().map(Outcome::label).collect::<Vec<_>>();
            assert_eq!(labels(&dpor), labels(&all), "{name}: DPOR against dfs");
            assert!(
                classes <= schedules,
                "{name}: {classes} classes, {schedules} schedules"
            );
            assert!(
                !dpor.iter().any(|o| o.label().contains("StepLimit")),
                "{name}"
            );
            let options = Options {
                how: How::Random,
                schedules: Some(300),
                all: true,
                show_failure: false,
                ..Options::default()
            };
            let sampled = explore(&script, &options);
            for o in sampled.outcomes.keys() {
                assert!(
                    dpor.contains(o),
                    "{name}: random found {} that DPOR did not",
                    o.label()
                );
            }
        }
    });
}

#[test]
fn a_failure_is_shrunk_to_one_preemption_and_replays() {
    on_a_big_stack(|| {
        let text = "let x = 0\nfn inc() { x += 1 }\nlet a = spawn inc()\nlet b = spawn inc()\njoin a\njoin b\nassert x == 2, \"lost\"";
        let script = Script::new("lost.conc".into(), text.into(), Vec::new());
        for how in [How::Dpor, How::Random, How::Pct { depth: 2 }, How::Pos] {
            let report = explore(
                &script,
                &Options {
                    how: how.clone(),
                    ..Options::default()
                },
            );
            let f = report
                .first_failure
                .unwrap_or_else(|| panic!("{how:?} found nothing"));
            assert_eq!(f.preemptions, 1, "{how:?}");
            assert!(
                f.shared_steps <= 4,
                "{how:?}: {} shared steps",
                f.shared_steps
            );
            assert!(f.schedule.starts_with("replay:"), "{}", f.schedule);
            assert!(
                f.lanes.lines().all(|l| l.chars().count() <= 80),
                "{}",
                f.lanes
            );
        }
    });
}

/// A quick producer and a generous timeout: the timeout fires first only
/// when time may pass while a thread can still run.
const TIMEOUT_RACE: &str = "let q = queue()\nlet t = spawn { sleep(0.01); put q, 1 }\nlet v = get q timeout 1\njoin t\nprint(\"got\", v)";

#[test]
fn adversarial_time_finds_the_timeout_that_fires_before_the_put() {
    on_a_big_stack(|| {
        let script = Script::new("race.conc".into(), TIMEOUT_RACE.into(), Vec::new());
        // Quiescent time (the default): the clock jumps only when nobody
        // can run, so every class gets the item.
        let (quiet, exhaustive, _) = outcomes(&script, How::Dpor);
        assert!(exhaustive);
        assert_eq!(quiet.len(), 1, "{quiet:?}");
        for how in [
            How::Auto,
            How::Dpor,
            How::Dfs { preemptions: None },
            How::Random,
            How::Pct { depth: 2 },
            How::Pos,
        ] {
            let report = explore(
                &script,
                &Options {
                    how: how.clone(),
                    adversarial: true,
                    ..Options::default()
                },
            );
            let f = report
                .first_failure
                .unwrap_or_else(|| panic!("{how:?} found no timeout"));
            assert!(f.report.contains("Timeout"), "{how:?}: {}", f.report);
            // The replay line says its time was adversarial, and replays.
            let token = f.schedule.strip_prefix("replay:").expect("a token");
            assert!(token.contains("-adv."), "{token}");
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_conc"))
                .args(["--sched", &f.schedule, "-c", TIMEOUT_RACE])
                .output()
                .expect("conc runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("Timeout"), "{err}");
        }
    });
}

#[test]
fn adversarial_time_is_exhausted_by_dpor_as_by_plain_enumeration() {
    on_a_big_stack(|| {
        let script = Script::new("race.conc".into(), TIMEOUT_RACE.into(), Vec::new());
        let all = |how: How, jobs: usize| {
            let report = explore(
                &script,
                &Options {
                    how,
                    adversarial: true,
                    all: true,
                    jobs,
                    show_failure: false,
                    ..Options::default()
                },
            );
            let labels: Vec<String> = report.outcomes.keys().map(Outcome::label).collect();
            (labels, report.coverage.exhaustive())
        };
        let (dpor, done) = all(How::Dpor, 1);
        assert!(done, "dpor with adversarial time is exhaustive");
        assert_eq!(dpor.len(), 2, "the item, or the timeout: {dpor:?}");
        assert_eq!(all(How::Dfs { preemptions: None }, 1), (dpor.clone(), true));
        assert_eq!(all(How::Dpor, 2), (dpor, true));
    });
}

/// Outcomes with their counts, the classes, and whether it was exhaustive.
fn counted(script: &Script, how: How, jobs: usize) -> (Vec<(String, u64)>, String) {
    let options = Options {
        how,
        all: true,
        jobs,
        show_failure: false,
        ..Options::default()
    };
    let report = explore(script, &options);
    let counts = report
        .outcomes
        .iter()
        .map(|(o, n)| (o.label(), *n))
        .collect();
    (counts, report.coverage.line(&options.how))
}

#[test]
fn two_jobs_find_the_same_classes_as_one() {
    on_a_big_stack(|| {
        for (name, text) in SCRIPTS {
            let script = Script::new(format!("{name}.conc"), text.to_string(), Vec::new());
            let one = counted(&script, How::Dpor, 1);
            for _ in 0..3 {
                let two = counted(&script, How::Dpor, 2);
                // The classes and each outcome's count are the same; only
                // the runs cut short by sleep sets may differ.
                let strip = |l: &str| l.split(", ").next().unwrap_or_default().to_string();
                assert_eq!(one.0, two.0, "{name}: outcomes");
                assert_eq!(strip(&one.1), strip(&two.1), "{name}: coverage");
            }
            let bounded = How::Dfs {
                preemptions: Some(2),
            };
            assert_eq!(
                counted(&script, bounded.clone(), 1),
                counted(&script, bounded, 2),
                "{name}: dfs with a bound"
            );
        }
    });
}

#[test]
fn options_may_follow_the_file_and_script_arguments_follow_a_double_dash() {
    let file = std::env::temp_dir().join(format!("conc-argv-{}.conc", std::process::id()));
    std::fs::write(&file, "print(argv())\n").expect("a temp file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_conc"))
        .arg("explore")
        .arg(&file)
        .args(["a", "--strategy", "dfs", "--jobs", "2", "--", "--b"])
        .output()
        .expect("conc runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(r#""[\"a\", \"--b\"]" x1"#), "{text}");
    assert!(text.trim_end().ends_with("(dfs)"), "{text}");
    let _ = std::fs::remove_file(&file);
}

/// Scripts whose threads block on each other (or fail): DPOR's classes
/// count when a blocked try happened.
const BLOCKING: &[&str] = &[
    "locked update",
    "lock order deadlock",
    "queue hand-off",
    "semaphore of one",
    "condition notify",
];

/// Sampling names the class of each run it samples (`classes.rs`): it can
/// never see more classes than DPOR runs, and with enough samples of these
/// small scripts it sees every one of them where no thread blocks.
#[test]
fn sampling_counts_the_classes_dpor_runs() {
    on_a_big_stack(|| {
        for (name, text) in SCRIPTS {
            let script = Script::new(format!("{name}.conc"), text.to_string(), Vec::new());
            let options = |how| Options {
                how,
                schedules: Some(3000),
                all: true,
                show_failure: false,
                ..Options::default()
            };
            let classes = match explore(&script, &options(How::Dpor)).coverage {
                Coverage::Exhaustive { classes, .. } => classes,
                c => panic!("{name}: DPOR not exhaustive: {c:?}"),
            };
            let (seen, estimate) = match explore(&script, &options(How::Pos)).coverage {
                Coverage::Sampled { seen, estimate, .. } => (seen, estimate),
                c => panic!("{name}: not sampled: {c:?}"),
            };
            assert!(seen <= classes, "{name}: {seen} seen, DPOR ran {classes}");
            assert!(estimate >= seen as f64, "{name}: {estimate} < {seen}");
            // DPOR also tells apart runs where a thread tried a lock or a
            // get and blocked earlier or later; a class does not (the
            // blocked try did nothing), and a failed run counts once.
            if !BLOCKING.contains(name) {
                assert_eq!(seen, classes, "{name}");
            }
        }
    });
}
