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
