//! conc next to Python and raw Rust on the same work.
//!
//! `cargo bench --bench compare [-- NAME...]` (build conc first with
//! `cargo build --release`; `CONC_BIN=path` picks another binary, and
//! `CONC_OLD=path` adds an `old` column: another conc binary on the same
//! scripts, with the ratio `new/old`).
//!
//! Each benchmark NAME is a pair `benches/NAME.conc` / `benches/NAME.py`
//! that prints one line `elapsed <seconds>`, timed inside the script around
//! the work only, so interpreter start-up is left out. Each benchmark runs
//! in 5 rounds of conc, old conc, its `versus` script, python and rust in
//! turn, and the best time of each counts, so load that comes and goes
//! hits all of them alike. The table goes to stdout and
//! `target/bench-table.md`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use conc::fixture::{describe_status, run_captured};

/// One row of the table. Add rows here (threads, queues, locks, processes)
/// together with their `benches/NAME.conc` and `benches/NAME.py`.
struct Benchmark {
    name: &'static str,
    description: &'static str,
    /// What conc should reach, as shown in the table.
    target: &'static str,
    /// The same work in plain Rust, timed in-process; `None` shows `-`.
    rust: Option<fn() -> u64>,
    /// Another conc script (`benches/NAME.conc`) doing the same work another
    /// way; the `vs` column shows this row's conc time over its time.
    versus: Option<&'static str>,
    /// Run conc with `--sched THIS`. Such a row times whole processes (under
    /// control `time()` is virtual), python's too, and its `vs` column is
    /// the same script on the OS engine; the old binary is not run.
    sched: Option<&'static str>,
    /// Run conc with `--trace` (the script is NAME without `_traced`); its
    /// `vs` column is the same script untraced.
    trace: bool,
}

const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "fib",
        description: "recursive fib(30) inside a function",
        target: "<= 0.6x python (aim 0.5x)",
        rust: Some(rust_fib),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "loop_sum",
        description: "a function summing `for i in range(5000000)` into a local",
        target: "<= 0.25x python",
        rust: Some(rust_loop_sum),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "select_loop",
        description: "the loop of loop_sum inside a `select` case body (vs: loop_sum, the same loop in a function body)",
        target: "<= 1.2x loop_sum",
        rust: None,
        versus: Some("loop_sum"),
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "cpu_seq",
        description: "CPU-bound loop run twice, sequentially (baseline for cpu_threads)",
        target: "-",
        rust: None,
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "cpu_threads",
        description: "the same two loops on 2 threads",
        target: ">= 1.8x faster than cpu_seq",
        rust: None,
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "sleepers_10k",
        description: "10,000 threads each sleeping 0.5 s",
        target: "<= 1.2x rust",
        rust: Some(rust_sleepers_10k),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "spawn_join_10k",
        description: "spawn + join 10,000 no-op threads",
        target: "<= 2x rust",
        rust: Some(rust_spawn_join_10k),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "queue_1m",
        description: "1,000,000 ints through a queue between two threads",
        target: "<= 0.1x python",
        rust: Some(rust_queue_1m),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "lock_4x250k",
        description: "4 threads x 250,000 lock/increment/unlock",
        target: "<= 0.2x python",
        rust: Some(rust_lock_4x250k),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "proc_spawn_200",
        description: "spawn + join 200 no-op processes (python: multiprocessing, fork; rust: re-exec of `conc --version`)",
        target: "<= 1.5x rust, < python",
        rust: Some(rust_reexec_200),
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "proc_queue_100k",
        description: "100,000 ints parent -> child through a shared queue (python: multiprocessing.Queue)",
        target: "<= 0.1x python",
        rust: None,
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "proc_pipe_10k",
        description: "10,000 ping-pong round trips over a pipe between processes (python: multiprocessing.Pipe)",
        target: "<= 0.5x python",
        rust: None,
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "proc_lock_2x50k",
        description: "2 processes x 50,000 lock/increment/unlock on a shared lock (python: multiprocessing.Lock)",
        target: "<= 1.0x python",
        rust: None,
        versus: None,
        sched: None,
        trace: false,
    },
    Benchmark {
        name: "sched_pingpong",
        description: "100,000 round trips of a token between two threads through two queues under `--sched random:1`, at least 200,000 hand-overs of the turn (whole process; vs: the OS engine)",
        target: "<= 2 s (10 us a hand-over; aim 0.6 s)",
        rust: None,
        versus: Some("sched_pingpong"),
        sched: Some("random:1"),
        trace: false,
    },
    Benchmark {
        name: "sched_proc_spawn_200",
        description: "proc_spawn_200 under `--sched random:1`: 200 simulated processes spawned and joined (whole process; vs: the OS engine, real processes)",
        target: "<= 0.05x vs",
        rust: None,
        versus: Some("sched_proc_spawn_200"),
        sched: Some("random:1"),
        trace: false,
    },
    Benchmark {
        name: "sched_startup",
        description: "scripts/01_start_join.conc under `--sched random:1` (whole process; vs: the OS engine)",
        target: "<= 1.2x vs",
        rust: None,
        versus: Some("sched_startup"),
        sched: Some("random:1"),
        trace: false,
    },
    Benchmark {
        name: "queue_1m_traced",
        description: "queue_1m with `--trace` on the OS engine (vs: untraced)",
        target: "<= 1.5x vs",
        rust: None,
        versus: Some("queue_1m"),
        sched: None,
        trace: true,
    },
    Benchmark {
        name: "lock_4x250k_traced",
        description: "lock_4x250k with `--trace` on the OS engine (vs: untraced)",
        target: "<= 1.5x vs",
        rust: None,
        versus: Some("lock_4x250k"),
        sched: None,
        trace: true,
    },
];

/// The conc binary, for the raw re-exec baseline.
static CONC: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// What `spawn process` costs at the least: starting the binary and waiting.
fn rust_reexec_200() -> u64 {
    let Some(conc) = CONC.get() else { return 0 };
    let mut ok = 0;
    for _ in 0..200 {
        let status = Command::new(conc)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status();
        ok += u64::from(status.is_ok_and(|s| s.success()));
    }
    ok
}

/// Rounds per benchmark; each round runs conc, python and rust once, so a
/// load that comes and goes on the machine hits all three alike.
const RUNS: usize = 5;
/// A single script run longer than this is treated as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn rust_sleepers_10k() -> u64 {
    let threads: Vec<_> = (0..10_000)
        .map(|_| std::thread::spawn(|| std::thread::sleep(Duration::from_millis(500))))
        .collect();
    threads.into_iter().filter_map(|t| t.join().ok()).count() as u64
}

fn rust_spawn_join_10k() -> u64 {
    let threads: Vec<_> = (0..10_000)
        .map(|i| std::thread::spawn(move || black_box(i)))
        .collect();
    threads.into_iter().filter_map(|t| t.join().ok()).sum()
}

fn rust_queue_1m() -> u64 {
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    let producer = std::thread::spawn(move || {
        for i in 0..1_000_000u64 {
            let _ = tx.send(i);
        }
    });
    let total = rx.iter().take(1_000_000).sum();
    let _ = producer.join();
    total
}

fn rust_lock_4x250k() -> u64 {
    let n = std::sync::Arc::new(std::sync::Mutex::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let n = n.clone();
            std::thread::spawn(move || {
                for _ in 0..250_000 {
                    if let Ok(mut g) = n.lock() {
                        *g += 1;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let total = n.lock().map(|g| *g).unwrap_or(0);
    total
}

fn rust_fib() -> u64 {
    fn fib(n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        fib(n - 1) + fib(n - 2)
    }
    fib(black_box(30))
}

fn rust_loop_sum() -> u64 {
    let mut total: u64 = 0;
    for i in 0..black_box(5_000_000u64) {
        // black_box keeps the loop a loop instead of a closed formula, and
        // checked_add mirrors conc's overflow check.
        total = total
            .checked_add(black_box(i))
            .expect("loop_sum overflowed");
    }
    total
}

/// A measured time or why there is none.
type Timing = Result<f64, String>;

struct Row {
    bench: &'static Benchmark,
    conc: Timing,
    /// The `CONC_OLD` binary, when there is one.
    old: Option<Timing>,
    versus: Option<Timing>,
    python: Timing,
    rust: Option<f64>,
}

/// The interpreters a row runs.
struct Runners {
    conc: PathBuf,
    old: Option<PathBuf>,
    python: PathBuf,
}

fn main() {
    let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let selected = match select_benchmarks() {
        Ok(selected) => selected,
        Err(message) => exit_with(&message),
    };
    let conc = find_conc(crate_root).unwrap_or_else(|message| exit_with(&message));
    let _ = CONC.set(conc.clone());
    let runners = Runners {
        conc,
        old: find_old(),
        python: find_python(),
    };
    let rows: Vec<Row> = selected
        .into_iter()
        .map(|bench| measure(bench, crate_root, &runners))
        .collect();
    let table = render_table(&rows);
    println!("\n{table}");
    write_table(crate_root, &table);
}

fn exit_with(message: &str) -> ! {
    eprintln!("compare: {message}");
    std::process::exit(1);
}

/// Names given after `--` select benchmarks; flags (cargo passes `--bench`)
/// are ignored. No names means all.
fn select_benchmarks() -> Result<Vec<&'static Benchmark>, String> {
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if names.is_empty() {
        return Ok(BENCHMARKS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            BENCHMARKS.iter().find(|b| b.name == name).ok_or_else(|| {
                let known: Vec<&str> = BENCHMARKS.iter().map(|b| b.name).collect();
                format!("no benchmark `{name}` (known: {})", known.join(", "))
            })
        })
        .collect()
}

/// `$CONC_BIN`, else the binary cargo built for this bench target, else
/// `target/release/conc` under the crate root.
fn find_conc(crate_root: &Path) -> Result<PathBuf, String> {
    let candidates = std::env::var_os("CONC_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(option_env!("CARGO_BIN_EXE_conc").map(PathBuf::from))
        .chain([crate_root.join("target/release/conc")]);
    let mut tried = Vec::new();
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(format!(
        "no conc binary (tried {}); run `cargo build --release` first or set CONC_BIN",
        tried.join(", ")
    ))
}

/// `$CONC_OLD`: a conc binary to compare this one with.
fn find_old() -> Option<PathBuf> {
    let old = PathBuf::from(std::env::var_os("CONC_OLD")?);
    if !old.is_file() {
        exit_with(&format!("CONC_OLD={} is not a file", old.display()));
    }
    Some(old)
}

fn find_python() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    if system.is_file() {
        system.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

fn measure(bench: &'static Benchmark, crate_root: &Path, runners: &Runners) -> Row {
    eprintln!("running {} ...", bench.name);
    let script = |name: &str, ext: &str| crate_root.join("benches").join(format!("{name}.{ext}"));
    let unmeasured = || Ok(f64::INFINITY);
    let mut row = Row {
        bench,
        conc: unmeasured(),
        old: runners.old.as_ref().map(|_| unmeasured()),
        versus: bench.versus.map(|_| unmeasured()),
        python: unmeasured(),
        rust: bench.rust.map(|_| f64::INFINITY),
    };
    let base = match bench.trace {
        true => bench.name.strip_suffix("_traced").unwrap_or(bench.name),
        false => bench.name,
    };
    let conc_script = script(base, "conc");
    let trace_file = std::env::temp_dir().join(format!("conc-bench-{}.json", std::process::id()));
    let trace_file = trace_file.to_string_lossy().into_owned();
    let sched: Vec<&str> = match (bench.sched, bench.trace) {
        (Some(s), _) => vec!["--sched", s],
        (None, true) => vec!["--trace", &trace_file],
        (None, false) => Vec::new(),
    };
    let wall = bench.sched.is_some();
    if wall || bench.trace {
        row.old = None;
    }
    for _ in 0..RUNS {
        keep_best(&mut row.conc, || {
            script_time(&runners.conc, &sched, &conc_script, crate_root, wall)
        });
        if let (Some(old), Some(best)) = (&runners.old, row.old.as_mut()) {
            keep_best(best, || {
                script_time(old, &[], &conc_script, crate_root, false)
            });
        }
        if let (Some(other), Some(best)) = (bench.versus, row.versus.as_mut()) {
            keep_best(best, || {
                script_time(&runners.conc, &[], &script(other, "conc"), crate_root, wall)
            });
        }
        keep_best(&mut row.python, || {
            script_time(&runners.python, &[], &script(base, "py"), crate_root, wall)
        });
        if let (Some(work), Some(best)) = (bench.rust, row.rust.as_mut()) {
            *best = best.min(rust_time(work));
        }
    }
    let _ = std::fs::remove_file(&trace_file);
    let timings = [
        ("conc", Some(&row.conc)),
        ("old conc", row.old.as_ref()),
        ("versus", row.versus.as_ref()),
        ("python", Some(&row.python)),
    ];
    for (who, timing) in timings {
        if let Some(Err(message)) = timing {
            eprintln!("  {who} failed: {message}");
        }
    }
    row
}

/// The best time so far; after a failure, no more runs of that one.
fn keep_best(best: &mut Timing, run: impl FnOnce() -> Timing) {
    if let Ok(so_far) = best {
        *best = run().map(|t| so_far.min(t));
    }
}

/// Runs `interpreter flags script` once and reads its `elapsed <seconds>`
/// line, or with `wall` takes the time the whole process took.
fn script_time(
    interpreter: &Path,
    flags: &[&str],
    script: &Path,
    crate_root: &Path,
    wall: bool,
) -> Timing {
    let mut command = Command::new(interpreter);
    command.args(flags).arg(script).current_dir(crate_root);
    let run = run_captured(&mut command, RUN_TIMEOUT)
        .map_err(|e| format!("cannot run {}: {e}", interpreter.display()))?;
    if run.timed_out {
        return Err(format!("timed out after {} s", RUN_TIMEOUT.as_secs()));
    }
    if !run.status.success() {
        let first_lines: Vec<&str> = run.stderr.lines().take(5).collect();
        let status = describe_status(&run.status);
        return Err(format!("{status}\n    {}", first_lines.join("\n    ")));
    }
    if wall {
        return Ok(run.duration.as_secs_f64());
    }
    parse_elapsed(&run.stdout)
}

fn parse_elapsed(stdout: &str) -> Timing {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("elapsed "))
        .and_then(|seconds| seconds.trim().parse().ok())
        .ok_or_else(|| format!("no `elapsed <seconds>` line in output: {stdout:?}"))
}

fn rust_time(work: fn() -> u64) -> f64 {
    let start = Instant::now();
    black_box(work());
    start.elapsed().as_secs_f64()
}

fn render_table(rows: &[Row]) -> String {
    let with_old = rows.iter().any(|r| r.old.is_some());
    let (old_head, old_rule) = if with_old {
        (" old | new/old |", "---:|---:|")
    } else {
        ("", "")
    };
    let mut table = format!(
        "| benchmark | conc |{old_head} python | rust | conc/python | conc/rust | vs | target |\n\
         |---|---:|{old_rule}---:|---:|---:|---:|---:|---|\n"
    );
    for row in rows {
        let conc = row.conc.as_ref().ok().copied();
        let python = row.python.as_ref().ok().copied();
        let old = match &row.old {
            Some(old) => format!(
                " {} | {} |",
                timing_cell(old),
                ratio_cell(conc, old.as_ref().ok().copied())
            ),
            None if with_old => " - | - |".to_string(),
            None => String::new(),
        };
        let versus = match (&row.versus, row.bench.versus) {
            (Some(t), Some(name)) => match ratio_cell(conc, t.as_ref().ok().copied()).as_str() {
                "-" => "-".to_string(),
                ratio => format!("{ratio} {name}"),
            },
            _ => "-".to_string(),
        };
        table.push_str(&format!(
            "| {} | {} |{} {} | {} | {} | {} | {} | {} |\n",
            row.bench.name,
            timing_cell(&row.conc),
            old,
            timing_cell(&row.python),
            row.rust.map_or("-".to_string(), seconds_cell),
            ratio_cell(conc, python),
            ratio_cell(conc, row.rust),
            versus,
            row.bench.target,
        ));
    }
    table.push('\n');
    for row in rows {
        table.push_str(&format!(
            "- `{}`: {}\n",
            row.bench.name, row.bench.description
        ));
    }
    table
}

fn timing_cell(timing: &Timing) -> String {
    match timing {
        Ok(seconds) => seconds_cell(*seconds),
        Err(_) => "error".to_string(),
    }
}

fn seconds_cell(seconds: f64) -> String {
    if seconds < 0.01 {
        format!("{:.2} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.3} s")
    }
}

fn ratio_cell(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}x", n / d),
        _ => "-".to_string(),
    }
}

/// Also saved for READMEs and issue comments; a failure here only warns.
fn write_table(crate_root: &Path, table: &str) {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_root.join("target"));
    let path = target_dir.join("bench-table.md");
    match std::fs::write(&path, table) {
        Ok(()) => eprintln!("table written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
