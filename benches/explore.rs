//! Exploration, measured: how fast schedules run, and how soon each
//! strategy finds each bug of `benches/bugs/`.
//!
//! `cargo bench --bench explore` (build conc first with `cargo build
//! --release`; `CONC_BIN=path` picks another binary; `OS_RUNS=N` sets the
//! real runs per bug, default 1000). Tables go to stdout and
//! `target/explore-table.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn conc_bin(root: &Path) -> PathBuf {
    std::env::var_os("CONC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/conc"))
}

/// What `conc explore --porcelain` said, one fact per line.
struct Porcelain(String);

impl Porcelain {
    /// Run it on `file` (`all`: do not stop at the first failure).
    fn run(conc: &Path, file: &Path, strategy: &str, schedules: u64, jobs: u32, all: bool) -> Self {
        let mut command = Command::new(conc);
        command.args(["explore", "--porcelain", "--strategy", strategy]);
        command.args([
            "--schedules",
            &schedules.to_string(),
            "--jobs",
            &jobs.to_string(),
        ]);
        if all {
            command.arg("--all");
        }
        let out = command.arg(file).output().expect("conc runs");
        Porcelain(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Schedules run.
    fn runs(&self) -> u64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix("runs ")?.parse().ok())
            .unwrap_or(0)
    }

    /// Whether some outcome is a failure.
    fn failed(&self) -> bool {
        self.0
            .lines()
            .filter_map(|l| l.strip_prefix("outcome "))
            .any(|rest| {
                let label = rest.split_once(' ').map_or("", |(_, l)| l);
                label.ends_with("Error") || label == "Deadlock" || label == "StepLimit"
            })
    }
}

/// (schedules run, a failure found) when exploring `file` until the first failure.
fn explore(conc: &Path, file: &Path, strategy: &str, schedules: u64, jobs: u32) -> (u64, bool) {
    let p = Porcelain::run(conc, file, strategy, schedules, jobs, false);
    (p.runs(), p.failed())
}

/// Real runs of `file` on the OS engine that failed, of `n`.
fn os_failures(conc: &Path, file: &Path, n: u32) -> u32 {
    (0..n)
        .filter(|_| {
            let status = Command::new(conc)
                .arg(file)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("conc runs");
            !status.success()
        })
        .count() as u32
}

fn found(r: (u64, bool)) -> String {
    match r {
        (n, true) => n.to_string(),
        (n, false) => format!("not in {}", n),
    }
}

/// Schedules per second on a script, as `conc explore` runs them.
fn rate(conc: &Path, file: &Path, strategy: &str, schedules: u64, jobs: u32) -> f64 {
    let start = Instant::now();
    let p = Porcelain::run(conc, file, strategy, schedules, jobs, true);
    p.runs() as f64 / start.elapsed().as_secs_f64()
}

/// The best rates of `--jobs 1` and `--jobs 2` over a few rounds, taken in
/// turn: the machine's other load comes and goes within seconds, and
/// alternating lets a busy moment slow both alike.
fn rates(conc: &Path, file: &Path, strategy: &str, schedules: u64) -> (f64, f64) {
    let (mut one, mut two) = (0f64, 0f64);
    for _ in 0..ROUNDS {
        one = one.max(rate(conc, file, strategy, schedules, 1));
        two = two.max(rate(conc, file, strategy, 2 * schedules, 2));
    }
    (one, two)
}

const ROUNDS: u32 = 3;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conc = conc_bin(root);
    let os_runs: u32 = std::env::var("OS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let mut md = String::new();

    let lost = root.join("tests/fixtures/explore/lost_update_2x1.conc");
    let (one, two) = rates(&conc, &lost, "random", 20_000);
    let dpor = rate(
        &conc,
        &root.join("tests/fixtures/explore/readers_8.conc"),
        "dpor",
        1_000_000,
        1,
    );
    md.push_str("| explore speed | measured | target |\n|---|---|---|\n");
    md.push_str(&format!(
        "| lost update (2 x 1), random, --jobs 1 | {:.0} schedules/s | >= 10,000 per core |\n",
        one
    ));
    md.push_str(&format!(
        "| the same, --jobs 2 | {:.0} schedules/s ({:.2}x) | >= 1.7x |\n",
        two,
        two / one
    ));
    md.push_str(&format!(
        "| readers(8), dpor (256 classes) | {:.0} schedules/s | |\n",
        dpor
    ));
    let wide = root.join("benches/lost_update_3x2.conc");
    let (dpor_one, dpor_two) = rates(&conc, &wide, "dpor", 1_000_000);
    md.push_str(&format!(
        "| lost update (3 x 2), dpor (7,134 classes), --jobs 1 | {:.0} schedules/s | |\n",
        dpor_one
    ));
    md.push_str(&format!(
        "| the same, --jobs 2 | {:.0} schedules/s ({:.2}x) | >= 1.7x |\n\n",
        dpor_two,
        dpor_two / dpor_one
    ));

    let mut bugs: Vec<PathBuf> = std::fs::read_dir(root.join("benches/bugs"))
        .expect("benches/bugs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conc"))
        .collect();
    bugs.sort();
    md.push_str(&format!(
        "| bug | dpor | pct:3 | random | pos | auto | OS runs that failed, of {} |\n|---|---|---|---|---|---|---|\n",
        os_runs
    ));
    for bug in &bugs {
        let name = bug
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let row = format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            name,
            found(explore(&conc, bug, "dpor", 1000, 1)),
            found(explore(&conc, bug, "pct:3", 1000, 1)),
            found(explore(&conc, bug, "random", 1000, 1)),
            found(explore(&conc, bug, "pos", 1000, 1)),
            found(explore(&conc, bug, "auto", 10_000, 1)),
            os_failures(&conc, bug, os_runs),
        );
        print!("{}", row);
        md.push_str(&row);
    }
    println!("\n{}", md);
    let _ = std::fs::write(root.join("target/explore-table.md"), &md);
}
