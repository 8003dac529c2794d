//! Sessions in one process are independent: ids, random numbers and the
//! controlled engine's runs never leak from one session into the next (an
//! explorer re-runs a script many times in one process; the REPL's `:reset`
//! makes a new session).

use conc::runtime::engine::controlled::schedule::Schedule;
use conc::runtime::output::Output;
use conc::session::{Session, SessionOptions};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Output for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
    fn report(&self, text: &str) {
        self.0.lock().unwrap().push(format!("report: {text}"));
    }
}

/// Runs `source` in a fresh session and gives what it printed.
fn run(source: &str, options: SessionOptions) -> Vec<String> {
    let out = Arc::new(Lines::default());
    let mut session = Session::new(SessionOptions {
        out: out.clone(),
        ..options
    });
    let result = session.run("t.conc", source);
    let finished = session.finish();
    assert!(result.is_ok() && finished.is_ok(), "{source}");
    let lines = out.0.lock().unwrap().clone();
    lines
}

const OBJECTS: &str = "
let a = lock()
let q = queue()
let t = spawn { put q, 1 }
join t
print(a, q, get q, t.ident)
";

#[test]
fn object_and_thread_ids_start_over_in_every_session() {
    let first = run(OBJECTS, SessionOptions::default());
    let second = run(OBJECTS, SessionOptions::default());
    assert_eq!(first, second);
    assert!(first[0].starts_with("<lock #1 "), "{first:?}");
}

#[test]
fn a_seed_repeats_random_numbers_across_sessions() {
    let source = "print(random(), randint(1, 1000000))";
    let seeded = || SessionOptions {
        seed: Some(7),
        ..SessionOptions::default()
    };
    assert_eq!(run(source, seeded()), run(source, seeded()));
    let other = SessionOptions {
        seed: Some(8),
        ..SessionOptions::default()
    };
    assert_ne!(run(source, seeded()), run(source, other));
}

#[test]
fn controlled_runs_in_one_process_repeat_exactly() {
    let source = "
let n = 0
fn bump() { for i in range(200) { n = n + 1 } }
let ts = [spawn bump(), spawn bump(), spawn bump()]
for t in ts { join t }
print(n, lock(), time(), random())
";
    let controlled = || SessionOptions {
        schedule: Some(Schedule::parse("random:5", || 0).expect("a schedule")),
        ..SessionOptions::default()
    };
    let first = run(source, controlled());
    for _ in 0..20 {
        assert_eq!(run(source, controlled()), first);
    }
}
