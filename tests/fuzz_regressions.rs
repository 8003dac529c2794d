//! The fuzz targets without libFuzzer (plain `cargo test`, no nightly): the
//! committed corpus of each target (`fuzz/corpus/TARGET`, minimised), every
//! input that once crashed or hung (`fuzz/crashes/TARGET`), and the seed
//! sources (`tests/**/*.conc`, `scripts/*.conc` for the parser) go through
//! the same functions the fuzzers call. Each input runs under a watchdog,
//! so a hang fails the test with the input's name instead of stalling CI.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod conc_fuzz;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Far above what any input needs (the pipeline's own limit is 3 s).
const PER_INPUT: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path
            .file_name()
            .is_some_and(|n| n != ".gitkeep" && n != "README")
        {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Run `target` on each input, one at a time, each within `PER_INPUT`.
fn feed(target: fn(&[u8]), inputs: Vec<PathBuf>) -> usize {
    let count = inputs.len();
    for path in inputs {
        let data = std::fs::read(&path).unwrap_or_default();
        let (tx, rx) = mpsc::channel();
        let shown = path.display().to_string();
        let runner = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                target(&data);
                let _ = tx.send(());
            })
            .expect("a thread for the input");
        match rx.recv_timeout(PER_INPUT) {
            Ok(()) => runner.join().expect("the target returned"),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{shown} hangs"),
            // The sender was dropped without sending: the target panicked.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = runner.join();
                panic!("{shown} crashes the target (its panic is printed above)")
            }
        }
    }
    count
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let fuzz = root().join("fuzz");
    let mut inputs = files(&fuzz.join("corpus").join(target));
    inputs.extend(files(&fuzz.join("crashes").join(target)));
    inputs
}

fn conc_sources() -> Vec<PathBuf> {
    let mut inputs = files(&root().join("tests"));
    inputs.extend(files(&root().join("scripts")));
    inputs.retain(|p| p.to_string_lossy().contains(".conc"));
    inputs
}

#[test]
fn parse_corpus_and_sources() {
    let mut inputs = corpus("parse");
    inputs.extend(conc_sources());
    assert!(
        feed(conc_fuzz::parse, inputs) > 100,
        "the parse corpus is there"
    );
}

#[test]
fn pipeline_corpus() {
    assert!(
        feed(conc_fuzz::pipeline, corpus("pipeline")) > 10,
        "the pipeline corpus is there"
    );
}

#[test]
fn wire_corpus_and_seeds() {
    for seed in conc_fuzz::wire_seeds() {
        conc_fuzz::wire(&seed);
    }
    assert!(
        feed(conc_fuzz::wire, corpus("wire")) > 10,
        "the wire corpus is there"
    );
}

/// The generator's programs are well formed: the fuzzer reaches the
/// evaluator and the runtime, not only the parser.
#[test]
fn generated_programs_parse() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..300 {
        let bytes: Vec<u8> = (0..i * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let text = conc_fuzz::gen::program(&mut arbitrary::Unstructured::new(&bytes));
        let mut session = conc::session::Session::new(Default::default());
        if let Err(e) = session.load("gen.conc", &text) {
            panic!(
                "a generated program does not parse:\n{text}\n{}",
                session.render(&e)
            );
        }
    }
}

/// Writes the wire target's seeds (encoded messages of every kind) into
/// fuzz/corpus/wire; run once by hand when the message types change:
/// `cargo test --release --test fuzz_regressions -- --ignored write_wire_seeds`.
#[test]
#[ignore]
fn write_wire_seeds() {
    let dir = root().join("fuzz/corpus/wire");
    std::fs::create_dir_all(&dir).expect("the corpus folder");
    for (i, seed) in conc_fuzz::wire_seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("a seed file");
    }
}

/// Prints what a `pipeline` input runs (the engine, and the generated
/// program or the script), to look at an input the fuzzer saved:
/// `FUZZ_INPUT=path cargo test --release --test fuzz_regressions --
/// --ignored --nocapture show_pipeline_input`.
#[test]
#[ignore]
fn show_pipeline_input() {
    let Some(path) = std::env::var_os("FUZZ_INPUT") else {
        return;
    };
    let data = std::fs::read(&path).expect("the input");
    println!("{}", conc_fuzz::describe_pipeline_input(&data));
}
