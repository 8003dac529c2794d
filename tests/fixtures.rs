//! One named test per `.conc` fixture under `tests/` and `scripts/`, run
//! against the freshly built `conc` binary. Filter like any cargo test:
//! `cargo test --release --test fixtures -- core/arith`.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

/// Folders (relative to the crate root) whose `.conc` files are fixtures.
const FIXTURE_ROOTS: &[&str] = &["tests", "scripts"];

fn main() {
    let args = Arguments::from_args();
    let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let trials = fixture_files(crate_root)
        .into_iter()
        .map(|path| fixture_trial(crate_root, path))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn fixture_files(crate_root: &Path) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = FIXTURE_ROOTS
        .iter()
        .map(|root| crate_root.join(root))
        .filter(|root| root.is_dir())
        .collect();
    conc::fixture::expand_paths(&roots)
}

/// Named by its path relative to the crate root, e.g.
/// `tests/fixtures/core/arith.conc`.
fn fixture_trial(crate_root: &Path, path: PathBuf) -> Trial {
    let relative = path.strip_prefix(crate_root).unwrap_or(&path);
    let name = relative.to_string_lossy().replace('\\', "/");
    Trial::test(name, move || {
        let conc = Path::new(env!("CARGO_BIN_EXE_conc"));
        let outcome = conc::fixture::run_fixture(&path, conc, sweep().as_deref());
        if outcome.passed {
            Ok(())
        } else {
            Err(Failed::from(outcome.report))
        }
    })
}

/// `CONC_TEST_SCHED=random:1..20 cargo test --test fixtures`: every fixture
/// under those schedules (as `conc test --sched`), for a sweep in CI.
fn sweep() -> Option<Vec<String>> {
    let set = std::env::var("CONC_TEST_SCHED").ok()?;
    match conc::fixture::parse_schedules(&set, false) {
        Ok(conc::fixture::Schedules::Listed(list)) => Some(list),
        _ => panic!("CONC_TEST_SCHED={set} is not a schedule set"),
    }
}
