//! The `conc` command as a user runs it: exit codes, rendered errors, usage.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn conc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conc"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("conc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ok_is_zero_and_prints() {
    let out = conc(&["-c", "print(1 + 2)"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "3\n");
}

#[test]
fn runtime_error_is_one_with_a_located_report() {
    let out = conc(&["-c", "let x = 1\nprint(x + nil)"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("TypeError"), "{err}");
    assert!(err.contains("<-c>:2:7"), "file:line:col in {err}");
    assert!(err.contains("print(x + nil)"), "source line in {err}");
}

#[test]
fn syntax_error_is_two_and_never_runs() {
    let out = conc(&["-c", "print(\"ran\")\nlet = 3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr).contains("SyntaxError"));
}

#[test]
fn deadlock_is_three_and_names_the_thread() {
    let out = conc(&["-c", "let q = queue()\nget q"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("Deadlock") && err.contains("thread main"),
        "{err}"
    );
}

#[test]
fn usage_errors_are_two() {
    assert_eq!(conc(&["--no-such-flag"]).status.code(), Some(2));
    let missing = conc(&["/nonexistent/file.conc"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read"));
    // An output that cannot be written is found before the script runs
    // (it would print "ran" first), and no file is left behind.
    for flag in ["--trace", "--timeline"] {
        let out = conc(&[flag, "/nonexistent/dir/out", "-c", "print(\"ran\")"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert_eq!(text(&out.stdout), "", "{flag}");
        assert!(text(&out.stderr).contains("cannot write"), "{flag}");
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/explore/lost_update_2x1.conc"
    );
    let out = conc(&["explore", "--trace", "/nonexistent/dir/out", script]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot write the trace"));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn help_and_version() {
    let help = conc(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("test"));
    let version = conc(&["--version"]);
    assert!(text(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn script_file_gets_its_arguments() {
    let dir = std::env::temp_dir().join(format!("conc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("args.conc");
    std::fs::write(&file, "print(argv())\n").unwrap();
    let out = conc(&[file.to_str().unwrap(), "a", "-b"]);
    assert_eq!(text(&out.stdout), "[\"a\", \"-b\"]\n");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn piped_stdin_runs_as_a_script() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conc"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"print(\"from stdin\")\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "from stdin\n");
}

#[test]
fn conc_test_summarises_fixtures() {
    let dir = std::env::temp_dir().join(format!("conc-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("good.conc"), "print(2) # expect: 2\n").unwrap();
    std::fs::write(dir.join("bad.conc"), "print(3) # expect: 4\n").unwrap();
    let out = conc(&["test", dir.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("- 4") && stdout.contains("+ 3"),
        "diff in {stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn malformed_scripts_never_panic() {
    let cases = [
        "fn f( {",
        "let x = \"unterminated",
        "}",
        "let if = 1",
        "x = = 1",
        "spawn",
        "join",
        "put q",
        "select { case }",
        "xs[",
        "{\"a\" 1}",
        "else { }",
        "1 +",
        "let [a, b = c",
        "while { }",
        "for in x { }",
        "\"\\q\"",
        "f() = 1",
        "99999999999999999999",
        "lock { }",
        "try { } catch",
        "fn (a, a) { }",
        "case x = get q { }",
        "let x",
        "...",
    ];
    for code in cases {
        let out = conc(&["-c", code]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{code:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("SyntaxError") && !err.contains("panicked"),
            "{code:?}: {err}"
        );
    }
}

/// `--seed N` fixes random numbers (and, single-threaded, every id shown):
/// the same seed gives the same output, another seed other numbers.
#[test]
fn a_seed_repeats_a_run() {
    let code = "print(random(), randint(1, 1000000), current().ident, lock())";
    let run = |seed: &str| text(&conc(&["--seed", seed, "-c", code]).stdout);
    let first = run("42");
    assert_eq!(first, run("42"));
    assert_ne!(first, run("43"));
    assert!(first.contains("<lock #"), "{first}");
}

/// A scratch folder for one test, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("conc-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn conc_test_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conc"))
        .arg("test")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("conc runs")
}

/// The report quotes the source around the failing line, directive
/// included: the kind must come from the report's headline instead.
#[test]
fn conc_test_matches_the_reported_kind_not_the_quoted_directive() {
    let dir = Scratch::new("kind");
    let wrong = dir.write(
        "wrong.conc",
        "let xs = [1, 2]\nprint(xs[5])\n# expect-error: KeyError\n",
    );
    let right = dir.write(
        "right.conc",
        "let xs = [1, 2]\nprint(xs[5])\n# expect-error: IndexError\n",
    );
    let out = conc_test_in(&dir.0, &[&wrong, &right]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("FAIL {wrong}")), "{stdout}");
    assert!(
        stdout.contains("expected an error of kind `KeyError`, but stderr has reported IndexError"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("PASS {right}")), "{stdout}");
}

#[test]
fn conc_test_expect_stderr_ignores_the_quoted_directive() {
    let dir = Scratch::new("stderr");
    let file = dir.write(
        "quoted.conc",
        "# expect-exit: 1\nraise \"boom\"  # expect-stderr: no such text\n",
    );
    let out = conc_test_in(&dir.0, &[&file]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("expected stderr to contain `no such text`"),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn conc_test_allows_several_expect_error_lines() {
    let dir = Scratch::new("several");
    // An unjoined thread's error is reported, then the main script's.
    let body = "fn boom() { return 1 // 0 }\nspawn boom()\nsleep(0.3)\nprint([1][5])\n";
    let both = dir.write(
        "both.conc",
        &format!("# expect-error: ZeroDivisionError\n# expect-error: IndexError\n{body}"),
    );
    let one_wrong = dir.write(
        "one_wrong.conc",
        &format!("# expect-error: ZeroDivisionError\n# expect-error: Timeout\n{body}"),
    );
    let out = conc_test_in(&dir.0, &[&both, &one_wrong]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("PASS {both}")), "{stdout}");
    assert!(stdout.contains(&format!("FAIL {one_wrong}")), "{stdout}");
    assert!(stdout.contains("kind `Timeout`"), "{stdout}");
}

#[test]
fn conc_test_skips_files_that_are_not_fixtures() {
    let dir = Scratch::new("skip");
    let notes = dir.write("notes.md", "# expect: never checked\n");
    let good = dir.write("good.conc", "print(1)  # expect: 1\n");
    let out = conc_test_in(&dir.0, &[&notes, &good]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("SKIP {notes} (not a .conc file)")),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    let only_notes = conc_test_in(&dir.0, &[&notes]);
    assert_eq!(only_notes.status.code(), Some(2));
    assert!(text(&only_notes.stderr).contains("no .conc files"));
}

#[test]
fn conc_test_without_paths_finds_the_project_tests_from_a_subfolder() {
    let project = Scratch::new("project");
    project.write("tests/one.conc", "print(1)  # expect: 1\n");
    project.write("src/deep/keep.txt", "");
    let out = conc_test_in(&project.0.join("src/deep"), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("tests/one.conc"), "{stdout}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}

#[test]
fn conc_test_says_how_to_name_paths_that_do_not_exist() {
    let dir = Scratch::new("missing");
    let out = conc_test_in(&dir.0, &["nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("nowhere does not exist"), "{err}");
    assert!(err.contains("conc test FILE.conc"), "{err}");
}

/// The `rust-version` declared in Cargo.toml (and stated in the README) is
/// at least what every locked dependency declares it needs.
#[test]
fn declared_rust_version_covers_the_locked_dependencies() {
    let declared = version(env!("CARGO_PKG_RUST_VERSION"));
    let readme = include_str!("../README.md");
    let stated = format!("{}.{} or newer", declared[0], declared[1]);
    assert!(readme.contains(&stated), "README should say {stated:?}");
    let host = rustc_host();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &host, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    let needed: Vec<Vec<u32>> = json
        .split("\"rust_version\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(version)
        .collect();
    assert!(needed.len() > 10, "no rust_version fields found");
    let highest = needed.into_iter().max().unwrap_or_default();
    assert!(
        highest <= declared,
        "a dependency needs Rust {highest:?}, Cargo.toml declares {declared:?}"
    );
}

fn version(text: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = text.split('.').filter_map(|p| p.parse().ok()).collect();
    parts.resize(3, 0);
    parts
}

fn rustc_host() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host")
}

#[test]
fn explore_exit_codes_and_the_last_line_is_the_coverage() {
    let dir = std::env::temp_dir().join(format!("conc-explore-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write script");
        path.to_string_lossy().into_owned()
    };
    let race = "let x = 0\nfn inc() { x += 1 }\nlet a = spawn inc()\nlet b = spawn inc()\njoin a\njoin b\n";
    let lost = write("lost.conc", &format!("{race}assert x == 2, \"lost\"\n"));
    let fine = write("fine.conc", &format!("{race}print(x)\n"));
    let bad = write("bad.conc", "let = 1\n");

    let out = conc(&["explore", &lost]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAILED: AssertionError"), "{stdout}");
    assert!(stdout.contains("replay: conc --sched replay:"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("NOT exhaustive")),
        "{stdout}"
    );

    let out = conc(&["explore", "--strategy", "dpor", "--all", &fine]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("exhaustive: all 4 classes (dpor)"),
        "{stdout}"
    );

    let out = conc(&[
        "explore",
        "--strategy",
        "dfs",
        "--preemptions",
        "0",
        "--all",
        &fine,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("NOT exhaustive: preemption bound 0"));

    let out = conc(&[
        "explore",
        "--strategy",
        "random",
        "--schedules",
        "50",
        "--all",
        &fine,
    ]);
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("NOT exhaustive: sampled 50 schedules (random) of an estimated")
            && last.ends_with("seen)"),
        "{stdout}"
    );

    let out = conc(&["explore", "--strategy", "nope", &fine]);
    assert_eq!(out.status.code(), Some(2));
    let out = conc(&["explore", "--time", "soon", &fine]);
    assert_eq!(out.status.code(), Some(2));
    let out = conc(&["explore", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("SyntaxError"));
    let _ = std::fs::remove_dir_all(&dir);
}
